"""Learn an override file from the parameter names a real phone reports.

Feed it the result of a full GetParameterNames (ParameterPath "Device.", NextLevel
false): a SOAP GetParameterNamesResponse, a JSON list, or one name per line. Each
catalogue setting is looked up: first at its catalogue path; else by its field name
(the convention's CamelCase name, the cfg.xml element or the web label, compared without
case and punctuation) in the reported leaf names, preferring paths that also name its web
section. Per-extension settings are recognised by the instance number in the path, which
becomes ``{n}``. The result lists what was found elsewhere (the override), what the
phone does not report (absent), what it reports read-only, and what stays ambiguous.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from acs_security.mapping.catalogue import Catalogue
from acs_security.mapping.errors import MappingError
from acs_security.mapping.overrides import Override
from acs_security.mapping.paths import camel_name
from acs_security.mapping.records import PATH_INSTANCE, Setting

__all__ = ["ReportedName", "LearnResult", "GpnParseError", "parse_gpn_result", "learn_override"]


class GpnParseError(MappingError):
    """The GetParameterNames result could not be read."""


@dataclass(frozen=True, slots=True)
class ReportedName:
    """One ParameterInfoStruct: name and writability (None when the input did not say)."""

    name: str
    writable: bool | None = None


@dataclass(frozen=True, slots=True)
class LearnResult:
    override: Override
    found_at_catalogue_path: tuple[str, ...]
    moved: tuple[tuple[str, str], ...]
    absent: tuple[str, ...]
    ambiguous: tuple[tuple[str, tuple[str, ...]], ...]
    not_checked: tuple[str, ...]
    unmatched: tuple[str, ...] = ()


def _bool(text: object) -> bool | None:
    if isinstance(text, bool):
        return text
    if text is None:
        return None
    lowered = str(text).strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise GpnParseError(f"Writable {text!r} is not a boolean")


def parse_gpn_result(data: bytes) -> list[ReportedName]:
    """Names from a GetParameterNamesResponse (SOAP XML), a JSON document or plain text.

    JSON: a list of names, of [name, writable] pairs or of {"Name", "Writable"} objects,
    or an object with such a list under "parameters" or "ParameterList". Text: one name
    per line, optionally followed by 1/0/true/false. Raises GpnParseError.
    """
    text = data.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise GpnParseError("the GetParameterNames result is empty")
    if text.startswith("<"):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            raise GpnParseError(f"not well-formed XML: {exc}") from None
        result = []
        for info in root.iter("{*}ParameterInfoStruct", "ParameterInfoStruct"):
            name = info.findtext("{*}Name") or info.findtext("Name")
            if name:
                writable = info.findtext("{*}Writable") or info.findtext("Writable")
                result.append(ReportedName(name.strip(), _bool(writable)))
        if not result:
            raise GpnParseError("no ParameterInfoStruct in the XML document")
        return result
    if text.startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GpnParseError(f"not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            doc = doc.get("parameters", doc.get("ParameterList"))
        if not isinstance(doc, list):
            raise GpnParseError("JSON must be a list of parameter names (or an object with 'parameters')")
        result = []
        for item in doc:
            if isinstance(item, str):
                result.append(ReportedName(item))
            elif isinstance(item, list) and item and isinstance(item[0], str):
                result.append(ReportedName(item[0], _bool(item[1]) if len(item) > 1 else None))
            elif isinstance(item, dict) and isinstance(name := item.get("Name", item.get("name")), str):
                result.append(ReportedName(name, _bool(item.get("Writable", item.get("writable")))))
            else:
                raise GpnParseError(f"unreadable entry {item!r}")
        return result
    result = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if not parts[0].startswith("Device."):
            raise GpnParseError(f"{parts[0]!r} is no Device. parameter name")
        result.append(ReportedName(parts[0], _bool(parts[1]) if len(parts) > 1 else None))
    return result


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _leaf_keys(setting: Setting) -> set[str]:
    keys = {_norm(camel_name(setting.name)), _norm(setting.path.rsplit(".", 1)[1])}
    if setting.element:
        keys.add(_norm(setting.element.removesuffix("_n_")))
    return keys


_NUMBER = re.compile(r"(?<=\.)\d+(?=\.)")


def _as_template(paths: Sequence[str]) -> str | None:
    """Turn the paths of one setting on several extensions into a ``{n}`` template."""
    numbered = [list(_NUMBER.finditer(p)) for p in paths]
    if not numbered[0]:
        return None
    varying = [i for i in range(len(numbered[0])) if len({m[i].group() if i < len(m) else None for m in numbered}) > 1]
    index = varying[0] if len(varying) == 1 else len(numbered[0]) - 1
    match = numbered[0][index]
    return paths[0][: match.start()] + PATH_INSTANCE + paths[0][match.end():]


def learn_override(
    reported: Iterable[ReportedName],
    catalogue: Catalogue,
    *,
    product_class: str = "*",
    software_version: str = "*",
    source: str = "",
) -> LearnResult:
    """Compare a phone's parameter names with the catalogue; the override that fits it."""
    params = {r.name: r for r in reported if not r.name.endswith(".")}
    names = list(params)
    has_vendor = any(".X_" in n for n in names)
    has_standard = any(n.startswith("Device.ManagementServer.") for n in names)
    claimed: set[str] = set()
    at_base: list[str] = []
    pending: list[Setting] = []
    for setting in catalogue.settings:
        regex = re.compile("^" + re.escape(setting.path).replace(re.escape(PATH_INSTANCE), r"\d+") + "$")
        hits = [n for n in names if regex.match(n)]
        if hits:
            at_base.append(setting.key)
            claimed.update(hits)
        else:
            pending.append(setting)
    paths: dict[str, str] = {}
    moved: list[tuple[str, str]] = []
    absent: list[str] = []
    ambiguous: list[tuple[str, tuple[str, ...]]] = []
    not_checked: list[str] = []
    for setting in pending:
        covered = has_vendor if setting.path_provenance != "standard" else has_standard
        if not covered:
            not_checked.append(setting.key)
            continue
        keys = _leaf_keys(setting)
        candidates = [n for n in names if n not in claimed and _norm(n.rsplit(".", 1)[1]) in keys]
        groups: dict[str, list[str]] = {}
        for name in candidates:
            if setting.per_extension:
                template = _as_template([name])
                if template is None:
                    continue
                key = re.sub(r"\{n\}", "#", template)
                groups.setdefault(key, []).append(name)
            else:
                groups.setdefault(name, []).append(name)
        if not groups:
            absent.append(setting.key)
            continue
        section = _norm(camel_name(setting.location.split(">")[-1]))

        def rank(group: str) -> tuple[bool, bool]:
            # Prefer a path that names the setting's web section, then a vendor path.
            return (section not in _norm(group), ".X_" not in group)  # noqa: B023 - used in this iteration only

        top = min(rank(g) for g in groups)
        best = [g for g in groups if rank(g) == top]
        if len(best) > 1:
            ambiguous.append((setting.key, tuple(sorted(best))))
            continue
        chosen = groups[best[0]]
        template = _as_template(chosen) if setting.per_extension else chosen[0]
        assert template is not None
        claimed.update(chosen)
        paths[setting.key] = template
        moved.append((setting.key, template))
    read_only = sorted(
        s.key
        for s in catalogue.settings
        if s.writable
        and any(
            params[n].writable is False
            for n in names
            if re.match("^" + re.escape(paths.get(s.key, s.path)).replace(re.escape(PATH_INSTANCE), r"\d+") + "$", n)
        )
    )
    override = Override(
        file="(learned)",
        product_class=product_class,
        software_version=software_version,
        source=source,
        paths=paths,
        absent=frozenset(absent),
        read_only=frozenset(read_only),
    )
    # Vendor names no setting claimed: candidates for a hand-written [paths] entry.
    unmatched = tuple(n for n in names if ".X_" in n and n not in claimed)
    return LearnResult(override, tuple(at_base), tuple(moved), tuple(absent), tuple(ambiguous), tuple(not_checked),
                       unmatched)
