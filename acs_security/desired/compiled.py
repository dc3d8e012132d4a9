"""The enabled assignments, compiled for sessions: who selects a device, and what it should
hold on its model and firmware (pure: no I/O, no clock).

A session asks two things per Inform: which assignments select this device (their selectors
evaluated on the Inform's facts, a few microseconds), and what the device's desired values
are on its model and firmware. The second is the expensive part (each policy translated to
TR-069 and validated the way the phone would, ``acs_security.policy.plan.plan_device``,
about 1.5 ms each), and a fleet has a handful of models and firmware, so it is memoised per
(model, firmware, the selecting assignments and their revisions).

Merging: assignments are ordered by priority (highest first), then id (oldest first). A
path set by several takes the first one's value; the others' differing values are
*shadowed* on that device. Equal priorities with different values were refused at creation
(acs_security.desired.conflicts) for the devices registered then; a device that appears
later and is selected by both is settled the same way (oldest wins) and the tie is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acs_security.cwmp.values import parse_value
from acs_security.desired.keys import assignment_key
from acs_security.fleet.selector import Selector, parse_selector
from acs_security.mapping import Catalogue, Tr069Param, load_catalogue
from acs_security.policy.document import Policy
from acs_security.policy.plan import DevicePlan, plan_device

__all__ = ["Compiled", "Part", "Desired", "AssignmentSet", "compile_assignment", "same_value", "text_key"]

#: Desired states memoised per set (model x firmware x selection combinations).
MAX_MEMO = 4096


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """One assignment as sessions use it."""

    id: int
    name: str
    priority: int
    mode: str
    revision: int
    policy: Policy
    selector: Selector
    enabled: bool = True

    @property
    def key(self) -> str:
        """The ParameterKey of this revision's SetParameterValues."""
        return assignment_key(self.id, self.revision)

    @property
    def enforce(self) -> bool:
        return self.mode == "enforce"

    @property
    def uses_tags(self) -> bool:
        return any(term.key == "tag" for term in self.selector.terms)


def compile_assignment(record: Any) -> Compiled:
    """A store AssignmentRecord as a Compiled. Raises ValueError (SelectorError, KeyError
    wrapped) when the stored policy or selector cannot be read."""
    try:
        policy = Policy.from_json(record.policy)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"assignment {record.name!r}: stored policy unreadable ({exc})") from None
    return Compiled(id=record.id, name=record.name, priority=record.priority, mode=record.mode,
                    revision=record.revision, policy=policy, selector=parse_selector(record.selector),
                    enabled=record.enabled)


def text_key(xsi_type: str, text: str) -> Any:
    """A value in a form where equal values compare equal: "1", "true" and "True" are one
    boolean, "007" and "7" one integer (TR-069 A.2.1 types); text that does not parse is
    compared as it is."""
    try:
        return parse_value(xsi_type, text)
    except (ValueError, TypeError):
        return text


def same_value(xsi_type: str, known: str | None, desired: str) -> bool:
    """Whether a known value (None: unknown) is the desired one."""
    if known is None:
        return False
    if known == desired:
        return True
    return bool(text_key(xsi_type, known) == text_key(xsi_type, desired))


@dataclass(frozen=True, slots=True, eq=False)
class Part:
    """One assignment's share of a device's desired state on one model and firmware."""

    assignment: Compiled
    params: tuple[Tr069Param, ...]  # the paths it owns on this device (after merging)
    every: tuple[Tr069Param, ...]  # every path its policy sets on this model and firmware
    skipped: tuple[tuple[str, str], ...] = ()  # (setting, reason): absent on this model/firmware
    shadowed: tuple[tuple[str, int], ...] = ()  # (path, id of the assignment whose value wins)
    ties: tuple[tuple[str, int], ...] = ()  # shadowed by an assignment of the same priority
    error: str | None = None  # the policy cannot be applied on this model (unknown model ...)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.params)


@dataclass(frozen=True, slots=True, eq=False)
class Desired:
    """What a device should hold: merged values, and each selecting assignment's part.
    ``stamp`` identifies it within the process (same model, firmware, assignments and
    revisions: same stamp)."""

    stamp: int
    parts: tuple[Part, ...]
    values: Mapping[str, Tr069Param] = field(default_factory=dict)
    owner: Mapping[str, int] = field(default_factory=dict)

    def part(self, assignment_id: int) -> Part | None:
        for part in self.parts:
            if part.assignment.id == assignment_id:
                return part
        return None


PlanFunction = Callable[[Policy, str, "str | None"], DevicePlan]


class AssignmentSet:
    """The enabled assignments of one moment (rebuilt when they change; never mutated)."""

    def __init__(self, assignments: Iterable[Compiled], *, catalogue: Catalogue | None = None,
                 plan: PlanFunction | None = None, generation: Any = None) -> None:
        self._catalogue = catalogue or load_catalogue()
        self.assignments: tuple[Compiled, ...] = tuple(sorted(
            (a for a in assignments if a.enabled), key=lambda a: (-a.priority, a.id)))
        self.by_id: dict[int, Compiled] = {a.id: a for a in self.assignments}
        self.uses_tags = any(a.uses_tags for a in self.assignments)
        self.generation = generation
        cat = self._catalogue
        self._plan_fn: PlanFunction = plan or (
            lambda policy, pc, fw: plan_device(policy, product_class=pc, software_version=fw, known=None,
                                               force_all=True, catalogue=cat))
        self._plans: dict[tuple[int, int, str, str | None], DevicePlan] = {}
        self._memo: dict[tuple[str, str | None, tuple[int, ...]], Desired] = {}

    def __len__(self) -> int:
        return len(self.assignments)

    def select(self, *, product_class: str, firmware: str | None, serial: str,
               tags: Sequence[str] = (), device_id: str = "") -> tuple[Compiled, ...]:
        """The enabled assignments whose selector matches, in merge order."""
        return tuple(a for a in self.assignments if a.selector.matches(
            product_class=product_class, firmware=firmware, serial=serial, tags=tags, device_id=device_id))

    def plan(self, assignment: Compiled, product_class: str, firmware: str | None) -> DevicePlan:
        """Every path the assignment's policy sets on this model and firmware (memoised)."""
        key = (assignment.id, assignment.revision, product_class, firmware)
        found = self._plans.get(key)
        if found is None:
            found = self._plan_fn(assignment.policy, product_class, firmware)
            if len(self._plans) < MAX_MEMO:
                self._plans[key] = found
        return found

    def desired(self, product_class: str, firmware: str | None, selection: Sequence[Compiled]) -> Desired:
        """The merged desired state of a device of this model and firmware that these
        assignments select (memoised)."""
        ids = tuple(a.id for a in selection)
        memo_key = (product_class, firmware, ids)
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        values: dict[str, Tr069Param] = {}
        owner: dict[str, int] = {}
        by_id = {a.id: a for a in selection}
        parts: list[Part] = []
        for a in sorted(selection, key=lambda a: (-a.priority, a.id)):
            plan = self.plan(a, product_class, firmware)
            if plan.error is not None:
                parts.append(Part(a, (), (), tuple(plan.skipped), error=plan.error))
                continue
            owned: list[Tr069Param] = []
            shadowed: list[tuple[str, int]] = []
            ties: list[tuple[str, int]] = []
            for p in plan.params:
                winner = owner.get(p.path)
                if winner is None:
                    values[p.path] = p
                    owner[p.path] = a.id
                    owned.append(p)
                elif not same_value(p.xsi_type, values[p.path].value, p.value):
                    shadowed.append((p.path, winner))
                    if by_id[winner].priority == a.priority:
                        ties.append((p.path, winner))
                # the same value as the winner's: the winner sends it, nothing to record
            parts.append(Part(a, tuple(owned), tuple(plan.params), tuple(plan.skipped), tuple(shadowed),
                              tuple(ties)))
        stamp = hash((product_class, firmware, tuple((a.id, a.revision, a.mode) for a in selection)))
        desired = Desired(stamp, tuple(parts), values, owner)
        if len(self._memo) < MAX_MEMO:
            self._memo[memo_key] = desired
        return desired
