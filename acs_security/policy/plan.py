"""Planning: what one device needs so that it matches a policy.

Pure: the policy, the device's model and firmware, and the values the ACS knows for it
come in; the SetParameterValues list, what is skipped (settings the model or firmware
lacks) and what is already right come out. The data model decides paths, types and
whether the phone would accept each value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acs_security.mapping import (
    Catalogue,
    InvalidValues,
    Tr069Param,
    UnknownModelError,
    cfgxml_to_tr069,
    load_catalogue,
)
from acs_security.mapping.records import PER_EXT_ELEMENT_SUFFIX
from acs_security.policy.document import Policy

__all__ = ["DevicePlan", "plan_device"]


@dataclass(frozen=True, slots=True)
class DevicePlan:
    params: tuple[Tr069Param, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (setting key, reason)
    unchanged: tuple[str, ...] = ()  # TR-069 paths already at the desired value
    error: str | None = None  # the whole device cannot take the policy (unknown model ...)
    changes: tuple[tuple[str, str | None, str], ...] = field(default=())  # (path, known, new)

    @property
    def nothing_to_do(self) -> bool:
        return not self.params and self.error is None


def plan_device(
    policy: Policy,
    *,
    product_class: str,
    software_version: str | None,
    known: Mapping[str, str] | None = None,
    force_all: bool = False,
    catalogue: Catalogue | None = None,
) -> DevicePlan:
    """The SetParameterValues this device needs. Never raises for device facts: an unknown
    model or a value this firmware refuses becomes ``DevicePlan.error``."""
    cat = catalogue or load_catalogue()
    try:
        view = cat.view(product_class, software_version)
        model = cat.model(product_class)
    except UnknownModelError as exc:
        return DevicePlan(params=(), error=str(exc))
    skipped: list[tuple[str, str]] = []
    desired: dict[str, str] = {}
    for key, value in policy.settings.items():
        setting, _ = cat.resolve(key)
        reason = view.missing_reason(setting)
        if reason:
            skipped.append((key, reason))
        else:
            desired[key] = value
    if policy.extension_settings:
        wanted = (
            range(1, model.extension_count + 1)
            if isinstance(policy.extensions, str)  # "all", the only text a policy's extensions hold
            else [n for n in policy.extensions]
        )
        for template, value in policy.extension_settings.items():
            setting = cat.setting(template)
            reason = view.missing_reason(setting)
            base = template[: -len(PER_EXT_ELEMENT_SUFFIX)]
            for n in wanted:
                concrete = f"{base}_{n}_"
                if reason:
                    skipped.append((concrete, reason))
                elif n > model.extension_count:
                    skipped.append((concrete, f"{model.product_class} has {model.extension_count} extension(s)"))
                else:
                    desired[concrete] = value
    try:
        params = cfgxml_to_tr069(desired, model=model.product_class,
                                 software_version=software_version, catalogue=cat)
    except InvalidValues as exc:
        return DevicePlan(params=(), skipped=tuple(skipped), error=str(exc))
    known = known or {}
    send: list[Tr069Param] = []
    unchanged: list[str] = []
    changes: list[tuple[str, str | None, str]] = []
    for p in params:
        current = known.get(p.path)
        if current == p.value and not force_all:
            unchanged.append(p.path)
        else:
            send.append(p)
            changes.append((p.path, current, p.value))
    return DevicePlan(params=tuple(send), skipped=tuple(skipped), unchanged=tuple(unchanged),
                      changes=tuple(changes))
