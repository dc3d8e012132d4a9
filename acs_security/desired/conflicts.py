"""Conflicts between assignments, found when one is created or enabled (pure).

Two enabled assignments conflict when they set the same setting to different values on a
device both select, and their priorities do not order them (equal priority): which value
would the phone end with? Such an assignment is refused (issue 14) with every conflict at
once, each naming the setting, both assignments, both values and an example device.

The check works on the registered devices: for each device both selectors match, both
policies are planned for its model and firmware (memoised) and compared path by path, so a
setting that one model lacks, or that two spellings put at the same value, is no conflict.
When no registered device is selected by both but one selector is ``all``, the overlap is
certain for every device the other selects; the conflict is then judged on the policies'
values and reported without an example device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from acs_security.desired.compiled import AssignmentSet, Compiled, same_value
from acs_security.store.jobrecords import TargetDevice

__all__ = ["Conflict", "find_conflicts"]


@dataclass(frozen=True, slots=True)
class Conflict:
    setting: str
    path: str | None
    assignment: str  # the one being created or enabled
    other: str
    value: str  # masked when secret
    other_value: str
    priority: int
    device: TargetDevice | None = None  # an example; None: certain by selectors, none registered yet

    def line(self) -> str:
        where = (f"e.g. on {self.device.serial_number} ({self.device.product_class})" if self.device is not None
                 else "on every device both select (none registered yet)")
        return (f"{self.setting}: assignment {self.assignment!r} sets {self.value!r} and {self.other!r} sets "
                f"{self.other_value!r} at the same priority {self.priority}, {where}")

    def to_json(self) -> dict[str, Any]:
        d = self.device
        return {"setting": self.setting, "path": self.path, "assignment": self.assignment, "other": self.other,
                "value": self.value, "other_value": self.other_value, "priority": self.priority,
                "device": None if d is None else {"device_id": d.device_id, "serial_number": d.serial_number,
                                                  "product_class": d.product_class,
                                                  "software_version": d.software_version}}


def _matches(a: Compiled, d: TargetDevice) -> bool:
    return a.selector.matches(product_class=d.product_class, firmware=d.software_version, serial=d.serial_number,
                              tags=d.tags, device_id=d.device_id)


def find_conflicts(candidate: Compiled, others: Sequence[Compiled], devices: Iterable[TargetDevice], *,
                   plans: AssignmentSet, mask: Callable[[str, str], str] = lambda key, value: value,
                   setting_of: Callable[[str, str, str | None], str] = lambda path, pc, fw: path,
                   max_extensions: int = 16) -> list[Conflict]:
    """Every conflict of ``candidate`` with the enabled ``others`` (one per setting and
    other assignment, with the first example device found). ``plans`` plans policies per
    model (its memo is reused); ``mask(key, value)`` hides secret values; ``setting_of(path,
    model, firmware)`` names a path as the operator knows it."""
    rivals = [o for o in others if o.id != candidate.id and o.enabled and o.priority == candidate.priority
              and _could_differ(candidate, o, max_extensions)]
    if not rivals:
        return []
    found: dict[tuple[int, str], Conflict] = {}
    seen_models: set[tuple[int, str, str | None]] = set()
    overlap = {o.id: False for o in rivals}
    for device in devices:
        if not _matches(candidate, device):
            continue
        for other in rivals:
            if not _matches(other, device):
                continue
            overlap[other.id] = True
            model = (other.id, device.product_class, device.software_version)
            if model in seen_models:
                continue
            seen_models.add(model)
            mine = plans.plan(candidate, device.product_class, device.software_version)
            theirs = plans.plan(other, device.product_class, device.software_version)
            if mine.error or theirs.error:
                continue
            by_path = {p.path: p for p in theirs.params}
            for p in mine.params:
                q = by_path.get(p.path)
                if q is None or same_value(p.xsi_type, q.value, p.value):
                    continue
                name = setting_of(p.path, device.product_class, device.software_version)
                if (other.id, name) not in found:
                    found[(other.id, name)] = Conflict(
                        name, p.path, candidate.name, other.name, mask(p.path, p.value), mask(p.path, q.value),
                        candidate.priority, device)
    for other in rivals:
        if overlap[other.id] or not (candidate.selector.everything or other.selector.everything):
            continue
        # Certain overlap for devices yet to come: compare the policies' values.
        mine_values = candidate.policy.sample_values(max_extensions)
        theirs_values = other.policy.sample_values(max_extensions)
        for key, value in sorted(mine_values.items()):
            other_value = theirs_values.get(key)
            if other_value is not None and other_value != value and (other.id, key) not in found:
                found[(other.id, key)] = Conflict(key, None, candidate.name, other.name, mask(key, value),
                                                  mask(key, other_value), candidate.priority, None)
    return sorted(found.values(), key=lambda c: (c.other, c.setting))


def _could_differ(a: Compiled, b: Compiled, max_extensions: int) -> bool:
    """Cheap first test: the policies share a setting with different text (a shared setting
    with the same text is the same value on every model)."""
    mine = a.policy.sample_values(max_extensions)
    theirs = b.policy.sample_values(max_extensions)
    return any(key in theirs and theirs[key] != value for key, value in mine.items())
