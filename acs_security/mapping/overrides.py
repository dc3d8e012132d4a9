"""Per product class and firmware corrections of TR-069 paths (datamodel/overrides/*.toml).

Only one vendor path is published (seed 000); every other ``Device.X_CISCO_*`` path is a
convention, so a real phone may name a setting differently. An override file corrects
that for the phones it matches, without touching code::

    product_class = "CP-88??-3PCC"   # glob, matched case-insensitively
    software_version = "12.*"        # glob against the SoftwareVersion the phone reports
    source = "learned from GetParameterNames of a CP-8841-3PCC"
    absent = ["Device.X_CISCO_SecuritySettings.FIPSMode"]   # settings the phone lacks
    read_only = []                                          # settings it reports not writable

    [paths]            # setting key (cfg.xml element template, or base path) -> path template
    SIP_Transport_n_ = "Device.X_CISCO_Line.{n}.SIPTransport"

    [types]            # setting key -> xsi type the phone uses on the wire
    Firewall = "string"

Files apply in file-name order; a later file wins for the same setting.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acs_security.mapping.errors import CatalogueError
from acs_security.mapping.records import PATH_INSTANCE, XSI_TYPES

__all__ = ["Override", "EffectiveOverride", "load_overrides", "merge_overrides", "render_override"]

_KEYS = {"product_class", "software_version", "source", "absent", "read_only", "paths", "types"}


@dataclass(frozen=True, slots=True)
class Override:
    """One override file."""

    file: str
    product_class: str
    software_version: str = "*"
    source: str = ""
    paths: Mapping[str, str] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    types: Mapping[str, str] = field(default_factory=dict)

    def matches(self, product_class: str | None, software_version: str | None) -> bool:
        """True when this file applies to a phone of that product class and firmware.

        An unknown product class matches nothing; an unknown firmware matches only "*".
        """
        if product_class is None:
            return False
        if not fnmatch.fnmatchcase(product_class.upper(), self.product_class.upper()):
            return False
        if software_version is None:
            return self.software_version == "*"
        return fnmatch.fnmatchcase(software_version, self.software_version)


@dataclass(frozen=True, slots=True)
class EffectiveOverride:
    """All matching override files merged for one (product class, firmware)."""

    paths: Mapping[str, str] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    types: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()


def _str_list(data: Mapping[str, Any], key: str, file: str) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{file}: {key} must be a list of setting keys")
    return frozenset(value)


def _str_table(data: Mapping[str, Any], key: str, file: str) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CatalogueError(f"{file}: [{key}] must map setting keys to strings")
    return dict(value)


def parse_override(data: Mapping[str, Any], file: str) -> Override:
    """Build an :class:`Override` from parsed TOML. Raises CatalogueError when malformed."""
    unknown = set(data) - _KEYS
    if unknown:
        raise CatalogueError(f"{file}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    product_class = data.get("product_class")
    if not isinstance(product_class, str) or not product_class:
        raise CatalogueError(f"{file}: product_class (a glob such as 'CP-88*-3PCC') is required")
    software_version = data.get("software_version", "*")
    if not isinstance(software_version, str):
        raise CatalogueError(f"{file}: software_version must be a glob string")
    paths = _str_table(data, "paths", file)
    for key, path in paths.items():
        if not path.startswith("Device.") or path.endswith("."):
            raise CatalogueError(f"{file}: [paths] {key} = {path!r} is no parameter path")
        if key.endswith("_n_") and PATH_INSTANCE not in path:
            raise CatalogueError(f"{file}: [paths] {key} is per extension: its path needs {PATH_INSTANCE}")
    types = _str_table(data, "types", file)
    for key, xsi in types.items():
        if xsi not in XSI_TYPES:
            raise CatalogueError(f"{file}: [types] {key} = {xsi!r}; allowed: {', '.join(sorted(XSI_TYPES))}")
    return Override(
        file=file,
        product_class=product_class,
        software_version=software_version,
        source=str(data.get("source", "")),
        paths=paths,
        absent=_str_list(data, "absent", file),
        read_only=_str_list(data, "read_only", file),
        types=types,
    )


def load_overrides(directory: Path) -> tuple[Override, ...]:
    """Every ``*.toml`` in ``directory``, in file-name order (missing directory: none).

    Raises CatalogueError for a file that is not valid TOML or not an override.
    """
    if not directory.is_dir():
        return ()
    result = []
    for file in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CatalogueError(f"{file}: {exc}") from None
        result.append(parse_override(data, file.name))
    return tuple(result)


def merge_overrides(overrides: Iterable[Override], product_class: str | None,
                    software_version: str | None) -> EffectiveOverride:
    """Merge the files that match, later files winning."""
    paths: dict[str, str] = {}
    types: dict[str, str] = {}
    absent: set[str] = set()
    read_only: set[str] = set()
    files = []
    for override in overrides:
        if not override.matches(product_class, software_version):
            continue
        files.append(override.file)
        paths.update(override.paths)
        types.update(override.types)
        absent |= override.absent
        read_only |= override.read_only
    return EffectiveOverride(paths, frozenset(absent), frozenset(read_only), types, tuple(files))


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped) + '"'


def render_override(override: Override, comments: Iterable[str] = ()) -> str:
    """The TOML text of an override file (what ``datamodel learn`` writes)."""
    lines = [f"# {c}" for c in comments]
    lines.append(f"product_class = {_toml_string(override.product_class)}")
    lines.append(f"software_version = {_toml_string(override.software_version)}")
    if override.source:
        lines.append(f"source = {_toml_string(override.source)}")
    lines.append("absent = [" + ", ".join(_toml_string(k) for k in sorted(override.absent)) + "]")
    lines.append("read_only = [" + ", ".join(_toml_string(k) for k in sorted(override.read_only)) + "]")
    lines.append("")
    lines.append("[paths]")
    for key, path in override.paths.items():
        lines.append(f"{_toml_string(key)} = {_toml_string(path)}")
    if override.types:
        lines.append("")
        lines.append("[types]")
        for key, xsi in override.types.items():
            lines.append(f"{_toml_string(key)} = {_toml_string(xsi)}")
    return "\n".join(lines) + "\n"
