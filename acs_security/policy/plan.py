"""Planning: what one device needs so that it matches a policy.

Pure: the policy, the device's model and firmware, and the values the ACS knows for it
come in; the SetParameterValues list, the settings that go in a cfg.xml Download, what is
skipped (settings the model or firmware lacks) and what is already right come out. The
data model decides paths, types and whether the phone would accept each value.

How each setting travels (``method``, docs/files.md):
- ``auto``: SetParameterValues where the phone has the TR-069 parameter, a cfg.xml
  Download for the settings its model and firmware take only from cfg.xml (an override's
  ``cfgxml_only``);
- ``download``: every setting that has a cfg.xml element goes in the file (settings
  without one, such as FIPS Mode, still go by SetParameterValues: there is no other way);
- ``spv``: SetParameterValues only; cfg.xml-only settings are skipped with the reason.
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

__all__ = ["DevicePlan", "FileSetting", "METHODS", "plan_device"]

#: How a push sends its settings (see the module doc).
METHODS = ("auto", "spv", "download")


@dataclass(frozen=True, slots=True)
class FileSetting:
    """One setting that goes in the device's cfg.xml: its concrete element and cfg.xml
    value, and the same value as the ACS records it (path, TR-069 text, type)."""

    element: str
    value: str
    param: Tr069Param


@dataclass(frozen=True, slots=True)
class DevicePlan:
    params: tuple[Tr069Param, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (setting key, reason)
    unchanged: tuple[str, ...] = ()  # TR-069 paths already at the desired value
    error: str | None = None  # the whole device cannot take the policy (unknown model ...)
    changes: tuple[tuple[str, str | None, str], ...] = field(default=())  # (path, known, new)
    download: tuple[FileSetting, ...] = ()  # settings for the cfg.xml Download

    @property
    def nothing_to_do(self) -> bool:
        return not self.params and not self.download and self.error is None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the plan sends, by SetParameterValues or in the file."""
        return tuple(p.path for p in self.params) + tuple(f.param.path for f in self.download)

    @property
    def download_paths(self) -> frozenset[str]:
        return frozenset(f.param.path for f in self.download)


def plan_device(
    policy: Policy,
    *,
    product_class: str,
    software_version: str | None,
    known: Mapping[str, str] | None = None,
    force_all: bool = False,
    catalogue: Catalogue | None = None,
    method: str = "auto",
) -> DevicePlan:
    """The SetParameterValues and cfg.xml settings this device needs. Never raises for
    device facts: an unknown model or a value this firmware refuses becomes
    ``DevicePlan.error``. Raises ValueError for a ``method`` not in METHODS."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    cat = catalogue or load_catalogue()
    try:
        view = cat.view(product_class, software_version)
        model = cat.model(product_class)
    except UnknownModelError as exc:
        return DevicePlan(params=(), error=str(exc))
    skipped: list[tuple[str, str]] = []
    desired: dict[str, str] = {}
    only_file = ("no TR-069 parameter on this model/firmware (cfg.xml only): "
                 "push with method auto or download")
    for key, value in policy.settings.items():
        setting, _ = cat.resolve(key)
        reason = view.missing_reason(setting)
        if reason is None and method == "spv" and not view.exposes(setting):
            reason = only_file
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
            if reason is None and method == "spv" and not view.exposes(setting):
                reason = only_file
            base = template[: -len(PER_EXT_ELEMENT_SUFFIX)]
            for n in wanted:
                concrete = f"{base}_{n}_"
                if reason:
                    skipped.append((concrete, reason))
                elif n > model.extension_count:
                    skipped.append((concrete, f"{model.product_class} has {model.extension_count} extension(s)"))
                else:
                    desired[concrete] = value
    stun_refused = _stun_outside_known_domains(desired, known or {})
    if stun_refused is not None:
        del desired[_STUN_ADDRESS]
        skipped.append((_STUN_ADDRESS, stun_refused))
    try:
        params = cfgxml_to_tr069(desired, model=model.product_class,
                                 software_version=software_version, catalogue=cat)
    except InvalidValues as exc:
        return DevicePlan(params=(), skipped=tuple(skipped), error=str(exc))
    known = known or {}
    send: list[Tr069Param] = []
    in_file: list[FileSetting] = []
    unchanged: list[str] = []
    changes: list[tuple[str, str | None, str]] = []
    for p in params:
        current = known.get(p.path)
        if current == p.value and not force_all:
            unchanged.append(p.path)
            continue
        changes.append((p.path, current, p.value))
        setting, ext = view.resolve_path(p.path)
        element = setting.element_for(ext)
        if element is not None and (method == "download" or not view.exposes(setting)):
            in_file.append(FileSetting(element, desired[element], p))
        else:
            send.append(p)
    return DevicePlan(params=tuple(send), skipped=tuple(skipped), unchanged=tuple(unchanged),
                      changes=tuple(changes), download=tuple(in_file))


_STUN_ADDRESS = "Device.ManagementServer.STUNServerAddress"
_RAD_PATH = "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains"


def _stun_outside_known_domains(desired: Mapping[str, str], known: Mapping[str, str]) -> str | None:
    """Why this device must not get the policy's STUN server, or None: the policy leaves the
    Restricted Access Domains as they are, and the device's known list (seed 000: a host
    outside it cannot be used) leaves the STUN server out, or is non-empty and the server is
    an IP address. The policy-wide checks are in policy/guardrails.py."""
    address = desired.get(_STUN_ADDRESS, "").strip().lower().rstrip(".")
    if not address or "Restricted_Access_Domains" in desired:
        return None
    domains = [d.strip().lower().rstrip(".") for d in known.get(_RAD_PATH, "").split(",") if d.strip()]
    if not domains:
        return None
    if address.replace(".", "").isdigit() or ":" in address or not any(
            address == d or address.endswith("." + d) for d in domains):
        return (f"the device's Restricted Access Domains {known[_RAD_PATH]!r} leave out the STUN server "
                f"{address!r}: add it to Restricted_Access_Domains in this policy (guardrail "
                "stun-server-outside-restricted-domains)")
    return None
