"""Immutable records of the data model: settings, models, rules, TR-069 parameter specs.

They are built from the files in ``datamodel/`` by :mod:`acs_security.mapping.catalogue`
and never changed afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "PER_EXT_ELEMENT_SUFFIX",
    "PATH_INSTANCE",
    "Setting",
    "ModelInfo",
    "ParamSpec",
    "Condition",
    "Rule",
    "Tr069Param",
    "XSI_TYPES",
    "FORMATS",
    "PROVENANCES",
    "CONCRETE_EXT_ELEMENT",
]

#: cfg.xml per-extension elements end in ``_n_`` (reference section 1: SIP_Transport_1_).
PER_EXT_ELEMENT_SUFFIX = "_n_"
#: TR-069 path templates name the extension instance ``{n}``.
PATH_INSTANCE = "{n}"

#: CWMP value types used by the phone's parameters (TR-069 A.2.1 / xsd built-ins).
XSI_TYPES: frozenset[str] = frozenset({"string", "boolean", "unsignedInt", "int"})
#: Value formats the validators know (acs_security/mapping/validators.py).
FORMATS: frozenset[str] = frozenset({
    "enum", "yesno", "string", "fqdn_list", "dhcp_options", "dhcpv6_options", "cipher_list",
    "firewall_options", "ldap_url", "pac_url", "http_url", "host", "port", "unsigned_int",
    "ipv4", "netmask",
})
#: Where a TR-069 path comes from: a seed document, TR-181, or the documented convention.
PROVENANCES: frozenset[str] = frozenset({"seed", "standard", "convention"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One phone setting, exactly as the phone knows it (one row of settings.toml).

    ``element`` and ``path`` are templates for per-extension settings (``_n_`` / ``{n}``).
    ``element`` is None for settings the seeds show only on the web page.
    """

    name: str
    element: str | None
    location: str
    path: str
    path_provenance: str
    format: str
    tr069_type: str
    default: str
    values: tuple[str, ...] = ()
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    ua: str | None = None
    secret: bool = False
    writable: bool = True
    seeds: tuple[str, ...] = ()
    source: str = ""
    feature: str | None = None
    min_firmware: tuple[int, int, int] | None = None
    until_firmware: tuple[int, int, int] | None = None
    note: str = ""
    rules: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The catalogue key: the cfg.xml element (template), else the TR-069 path."""
        return self.element if self.element is not None else self.path

    @property
    def per_extension(self) -> bool:
        return PATH_INSTANCE in self.path

    def element_for(self, extension: int | None = None) -> str | None:
        """The concrete cfg.xml element for ``extension`` (None when web-only)."""
        if self.element is None:
            return None
        if self.per_extension:
            if extension is None:
                raise ValueError(f"{self.element} is per extension: an extension number is needed")
            return self.element[: -len(PER_EXT_ELEMENT_SUFFIX)] + f"_{extension}_"
        return self.element

    def path_for(self, extension: int | None = None, template: str | None = None) -> str:
        """The concrete TR-069 path for ``extension`` (``template`` overrides self.path)."""
        path = template if template is not None else self.path
        if PATH_INSTANCE in path:
            if extension is None:
                raise ValueError(f"{self.key} is per extension: an extension number is needed")
            return path.replace(PATH_INSTANCE, str(extension))
        return path

    def concrete_key(self, extension: int | None = None) -> str:
        """The key of one concrete instance: element for extension n, else the path."""
        if self.element is not None:
            element = self.element_for(extension if self.per_extension else None)
            assert element is not None
            return element
        return self.path_for(extension)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What one product class has (models.toml)."""

    product_class: str
    family: str
    extension_count: int
    lacks: frozenset[str]
    lacks_features: frozenset[str]
    aliases: tuple[str, ...] = ()
    source: str = ""
    # Most parameters one SetParameterValues may carry on this model (None: no limit);
    # a push splits larger changes into several calls (acs_security/fleet/engine.py).
    spv_batch_size: int | None = None


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One concrete TR-069 parameter a phone of a given model and firmware has."""

    path: str
    xsi_type: str
    default: str
    writable: bool
    secret: bool
    setting_key: str
    element: str | None
    extension: int | None = None


class Tr069Param(NamedTuple):
    """A parameter value as it travels in SetParameterValues: path, text, xsi type."""

    path: str
    value: str
    xsi_type: str


_CONDITION_TESTS = ("equals", "in", "not_in", "nonempty", "prefix", "contains_host_of")


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of a cross-setting rule (rules.toml)."""

    setting: str
    test: str
    operand: str | tuple[str, ...] | bool
    any_extension: bool = False

    def __post_init__(self) -> None:
        if self.test not in _CONDITION_TESTS:
            raise ValueError(f"unknown condition test {self.test!r}; known: {', '.join(_CONDITION_TESTS)}")

    def describe(self) -> str:
        if self.test == "equals":
            text = f"{self.setting} = {self.operand}"
        elif self.test == "in":
            text = f"{self.setting} in {', '.join(self.operand)}"  # type: ignore[arg-type]
        elif self.test == "not_in":
            text = f"{self.setting} not in {', '.join(self.operand)}"  # type: ignore[arg-type]
        elif self.test == "nonempty":
            text = f"{self.setting} not empty"
        elif self.test == "prefix":
            text = f"{self.setting} starts with {' or '.join(self.operand)}"  # type: ignore[arg-type]
        else:
            text = f"{self.setting} covers the host of {self.operand}"
        return text + (" (on some extension)" if self.any_extension else "")


@dataclass(frozen=True, slots=True)
class Rule:
    """A cross-setting rule: when all ``when`` hold, all ``require`` must hold."""

    id: str
    severity: str
    message: str
    seed: str
    when: tuple[Condition, ...]
    require: tuple[Condition, ...] = ()
    trigger: tuple[str, ...] = ()
    settings: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        text = " and ".join(c.describe() for c in self.when)
        if self.require:
            return f"when {text}: needs " + " and ".join(c.describe() for c in self.require)
        return f"when {text}: {self.message}"


# Matches a concrete per-extension element such as SIP_Transport_12_.
CONCRETE_EXT_ELEMENT = re.compile(r"^(?P<base>.+)_(?P<n>[1-9][0-9]{0,2})_$")
