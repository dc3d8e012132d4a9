"""A phone's uploaded configuration, read with the data model; versions compared. Pure.

An uploaded cfg.xml is evidence, never an instruction: it is parsed with the same reader
as any cfg.xml (no DOCTYPE, no entity, bounded size) and each element is checked against
the catalogue for the phone's model and firmware. What the ACS does not know, what the
phone should not have and what its own rules would refuse is *reported* (by element name
and line; a secret value is never quoted) and kept out of :attr:`UploadedConfig.values`,
the only part a restore ever sends back. Nothing of an upload changes what the ACS
believes about the phone's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acs_security.mapping import Catalogue, parse_cfgxml
from acs_security.mapping.errors import MappingError, ValidationError
from acs_security.mapping.validators import validate_value

__all__ = ["ConfigChange", "UploadedConfig", "diff_configs", "read_config"]

_MASK = "********"


@dataclass(frozen=True, slots=True)
class UploadedConfig:
    """What an uploaded cfg.xml holds, sorted out (see the module doc)."""

    values: Mapping[str, str] = field(repr=False)  # element -> value, valid for this phone
    unchanged: tuple[str, ...] = ()  # <Tag/> elements: "leave as is", no value
    unknown: tuple[tuple[str, int], ...] = ()  # (element, line) the data model does not know
    invalid: tuple[tuple[str, int, str], ...] = ()  # (element, line, why) refused by the phone's rules
    absent: tuple[tuple[str, str], ...] = ()  # (element, why) this model/firmware does not have
    warnings: tuple[str, ...] = ()  # the reader's warnings (a repeated element ...)

    def report(self) -> dict[str, Any]:
        """JSON-able, element names and reasons only (no value)."""
        return {
            "elements": len(self.values),
            "unchanged": list(self.unchanged),
            "unknown": [{"element": e, "line": n} for e, n in self.unknown],
            "invalid": [{"element": e, "line": n, "reason": why} for e, n, why in self.invalid],
            "absent": [{"element": e, "reason": why} for e, why in self.absent],
            "warnings": list(self.warnings),
        }


def read_config(data: bytes, *, product_class: str, software_version: str | None,
                catalogue: Catalogue, source: str = "upload") -> UploadedConfig:
    """Sort an uploaded cfg.xml out for one phone. Raises CfgXmlError (line, column) when it
    cannot be read at all, UnknownModelError for an unknown model."""
    cfg = parse_cfgxml(data, source=source, catalogue=catalogue)
    view = catalogue.view(product_class, software_version)
    values: dict[str, str] = {}
    unchanged: list[str] = []
    invalid: list[tuple[str, int, str]] = []
    absent: list[tuple[str, str]] = []
    for element, item in cfg.values.items():
        found = catalogue.find(element)
        if found is None:  # pragma: no cover - parse_cfgxml files unknown elements apart
            continue
        setting, n = found
        reason = view.missing_reason(setting)
        if reason is None and n is not None and n > view.extension_count:
            reason = f"{product_class} has {view.extension_count} extension(s)"
        if reason is not None:
            absent.append((element, reason))
            continue
        if item.value is None:
            unchanged.append(element)
            continue
        try:
            validate_value(setting, item.value, catalogue=catalogue, extension=n)
        except ValidationError as exc:
            invalid.append((element, item.line, "a value the phone refuses" if setting.secret else exc.rule))
            continue
        except MappingError as exc:  # pragma: no cover - defensive: any other refusal
            invalid.append((element, item.line, "a value the phone refuses" if setting.secret else str(exc)))
            continue
        values[element] = item.value
    unknown = tuple((name, item.line) for name, item in cfg.unknown.items())
    return UploadedConfig(values, tuple(unchanged), unknown, tuple(invalid), tuple(absent),
                          tuple(str(w) for w in cfg.warnings if "unknown element" not in w.message))


@dataclass(frozen=True, slots=True)
class ConfigChange:
    element: str
    change: str  # added, removed, changed
    old: str | None
    new: str | None
    secret: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"element": self.element, "change": self.change, "old": self.old, "new": self.new,
                "secret": self.secret}


def diff_configs(old: Mapping[str, str], new: Mapping[str, str], *, catalogue: Catalogue) -> list[ConfigChange]:
    """What changed from ``old`` to ``new`` (element -> value), in catalogue order; secret
    values are shown as ``********`` (that a password changed is told, never what it is)."""
    order = {s.key: i for i, s in enumerate(catalogue.settings)}

    def key(element: str) -> tuple[int, str]:
        found = catalogue.find(element)
        return (order.get(found[0].key, len(order)) if found else len(order), element)

    out: list[ConfigChange] = []
    for element in sorted(set(old) | set(new), key=key):
        before, after = old.get(element), new.get(element)
        if before == after:
            continue
        found = catalogue.find(element)
        secret = bool(found and found[0].secret)
        change = "added" if before is None else "removed" if after is None else "changed"
        if secret:
            before = _MASK if before is not None else None
            after = _MASK if after is not None else None
        out.append(ConfigChange(element, change, before, after, secret))
    return out
