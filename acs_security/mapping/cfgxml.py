"""cfg.xml (``<flat-profile>``): read it as the phone does, and write it so the phone takes it.

Format (reference section 1; seeds 000/001): one element per setting; ``ua`` attribute =
user access (na, ro, rw; absent keeps the current one); ``<Tag/>`` leaves the phone's
value unchanged while ``<Tag></Tag>`` sets the empty string; unknown tags are ignored by
the phone; a repeated tag: the last one wins. Tags are case-sensitive.

Parsed with the stdlib expat parser, which reports both the ``<Tag/>`` / ``<Tag></Tag>``
distinction (by looking at the start tag's bytes) and line and column of every error.
A DOCTYPE is refused, so no entity is ever expanded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from acs_security.mapping.catalogue import Catalogue, load_catalogue
from acs_security.mapping.errors import CfgXmlError, InvalidValues, ValidationError
from acs_security.mapping.records import Setting
from acs_security.mapping.validators import validate_value

__all__ = ["CfgValue", "CfgWarning", "CfgXml", "parse_cfgxml", "render_cfgxml", "UA_VALUES", "ROOT"]

ROOT = "flat-profile"
UA_VALUES = ("na", "ro", "rw")
_MAX_BYTES = 4 * 1024 * 1024  # a flat profile of every phone setting is well under 1 MB


@dataclass(frozen=True, slots=True)
class CfgValue:
    """One element: its text (None for ``<Tag/>``, "leave unchanged"), ua and line."""

    value: str | None
    ua: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class CfgWarning:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class CfgXml:
    """A parsed cfg.xml: known settings by concrete element, warnings, unknown elements."""

    values: Mapping[str, CfgValue]
    warnings: tuple[CfgWarning, ...] = ()
    unknown: Mapping[str, CfgValue] = field(default_factory=dict)
    source: str = "<cfg.xml>"

    def settable(self) -> dict[str, str]:
        """Element -> value for every element that sets something (``<Tag/>`` left out)."""
        return {k: v.value for k, v in self.values.items() if v.value is not None}

    def ua(self) -> dict[str, str]:
        """Element -> ua for every element that carries one."""
        return {k: v.ua for k, v in self.values.items() if v.ua is not None}


class _Stop(Exception):
    def __init__(self, error: CfgXmlError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class _Open:
    name: str
    ua: str | None
    line: int
    self_closing: bool
    text: list[str]


_OPEN_TAG = re.compile(r"<([A-Za-z_][\w.\-]*)(?:\s[^<>]*)?>")
_CLOSE_TAG = re.compile(r"</([A-Za-z_][\w.\-]*)\s*>")
_BAD_CLOSE = re.compile(r"</([A-Za-z_][\w.\-]*)\s*/>")


def _self_closing(data: bytes, start: int) -> bool:
    """True when the start tag at byte ``start`` ends in ``/>`` (quotes skipped)."""
    quote = 0
    for i in range(start + 1, len(data)):
        byte = data[i]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:  # '>'
            return data[i - 1] == 0x2F  # '/'
    return False


def _known_element(cat: Catalogue, name: str) -> Setting | None:
    found = cat.find(name)
    if found is None:
        return None
    setting, n = found
    if setting.element is None or (setting.per_extension and n is None):
        return None
    return setting if setting.element_for(n) == name else None


def _closest(cat: Catalogue, name: str) -> str | None:
    if _known_element(cat, name):
        return name
    for candidate in (name + "_", name.rstrip("_"), name.rstrip("/")):
        if _known_element(cat, candidate):
            return candidate
    elements = [s.element_for(1) if s.per_extension else s.element for s in cat.settings if s.element]
    close = difflib.get_close_matches(name, [e for e in elements if e], n=1, cutoff=0.8)
    return close[0] if close else None


def _suggest(cat: Catalogue, line_text: str, message: str, open_name: str | None) -> str | None:
    """A "did you mean" for the two typos the seeds contain, and for their kind in general."""
    bad = _BAD_CLOSE.search(line_text)
    if bad:  # </Auth_Support_RFC8760/> (seed 000, "Support for RFC-8760")
        name = _closest(cat, bad.group(1)) or bad.group(1)
        return "did you mean " + line_text.strip().replace(bad.group(0), f"</{name}>") + " ?"
    if "mismatched tag" in message and open_name is not None:
        close = _CLOSE_TAG.search(line_text)
        close_name = close.group(1) if close else None
        # <Auth_INVITE_1>Yes</Auth_INVITE_1_> (seed 000): pick the spelling the phone knows.
        right = next((n for n in (close_name, open_name) if n and _known_element(cat, n)), None)
        right = right or _closest(cat, close_name or open_name) or close_name
        if right:
            fixed = line_text.strip()
            opening = _OPEN_TAG.search(fixed)
            if opening and opening.group(1) == open_name:
                fixed = fixed.replace(f"<{open_name}", f"<{right}", 1)
            if close_name:
                fixed = fixed.replace(f"</{close_name}", f"</{right}", 1)
            else:
                fixed += f"</{right}>"
            return f"did you mean {fixed} ?"
    return None


def parse_cfgxml(data: bytes | str, *, source: str = "<cfg.xml>", catalogue: Catalogue | None = None) -> CfgXml:
    """Parse a ``<flat-profile>`` document.

    Raises CfgXmlError(line, column, message, suggestion) for anything the phone could not
    read: malformed XML (with a "did you mean" for the seeds' typos), a DOCTYPE, another
    root element, nested elements, a ua other than na/ro/rw, more than 4 MiB.
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > _MAX_BYTES:
        raise CfgXmlError(1, 1, f"{len(data)} bytes: a cfg.xml over {_MAX_BYTES} bytes is refused", source=source)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CfgXmlError(1, 1, "cfg.xml must be UTF-8 (a UTF-16 byte order mark was found)", source=source)
    parser = expat.ParserCreate()
    stack: list[_Open] = []
    values: dict[str, CfgValue] = {}
    unknown: dict[str, CfgValue] = {}
    warnings: list[CfgWarning] = []
    lines_of: dict[str, int] = {}

    def fail(message: str, suggestion: str | None = None) -> None:
        raise _Stop(CfgXmlError(parser.CurrentLineNumber, parser.CurrentColumnNumber + 1, message, suggestion,
                                source=source))

    def doctype(*_: object) -> None:
        fail("a DOCTYPE is not allowed in cfg.xml (entity expansion is refused)")

    def start(name: str, attrs: dict[str, str]) -> None:
        if not stack:
            if name != ROOT:
                fail(f"the root element is <{name}>; cfg.xml needs <{ROOT}>")
            stack.append(_Open(name, None, parser.CurrentLineNumber, False, []))
            return
        if len(stack) >= 2:
            fail(f"<{name}> inside <{stack[-1].name}>: flat-profile elements have no child elements")
        ua = attrs.get("ua")
        if ua is not None and ua not in UA_VALUES:
            fail(f"<{name} ua={ua!r}>: user access is one of {', '.join(UA_VALUES)}")
        for attr in attrs:
            if attr != "ua":
                warnings.append(CfgWarning(parser.CurrentLineNumber,
                                           f"<{name}>: attribute {attr!r} is ignored (only ua means something)"))
        closing = _self_closing(data, parser.CurrentByteIndex)
        stack.append(_Open(name, ua, parser.CurrentLineNumber, closing, []))

    def text(chunk: str) -> None:
        if len(stack) == 2:
            stack[-1].text.append(chunk)
        elif len(stack) == 1 and chunk.strip():
            warnings.append(CfgWarning(parser.CurrentLineNumber,
                                       f"text {chunk.strip()[:40]!r} outside any element is ignored"))

    def end(name: str) -> None:
        item = stack.pop()
        if not stack:
            return
        value = None if item.self_closing else "".join(item.text)
        entry = CfgValue(value, item.ua, item.line)
        if _known_element(cat, name) is None:
            hint = _closest(cat, name)
            extra = f"; did you mean {hint}?" if hint and hint != name else ""
            warnings.append(CfgWarning(item.line, f"unknown element <{name}>: the phone ignores it{extra}"))
            unknown[name] = entry
            return
        if name in values:
            warnings.append(CfgWarning(
                item.line, f"<{name}> repeated (lines {lines_of[name]} and {item.line}): the last one wins"))
            del values[name]  # keep document order of the winning element
        values[name] = entry
        lines_of[name] = item.line

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except _Stop as stop:
        raise stop.error from None
    except expat.ExpatError as exc:
        message = expat.ErrorString(exc.code) or str(exc)
        lines = data.decode("utf-8", "replace").splitlines()
        line_text = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        open_name = stack[-1].name if len(stack) >= 2 else None
        raise CfgXmlError(exc.lineno, exc.offset + 1, message, _suggest(cat, line_text, message, open_name),
                          source=source) from None
    return CfgXml(values, tuple(warnings), unknown, source)


def _element_of(cat: Catalogue, key: str) -> tuple[Setting, int | None, str]:
    setting, n = cat.resolve(key)
    if setting.element is None:
        raise ValidationError(setting, None, "has no cfg.xml element (web page or TR-069 only)")
    if setting.per_extension and n is None:
        raise ValidationError(setting, None,
                              f"per-extension setting: name the extension, e.g. {setting.element_for(1)}")
    element = setting.element_for(n)
    assert element is not None
    return setting, n, element


def render_cfgxml(
    values: Mapping[str, str | None],
    *,
    ua: Mapping[str, str | None] | None = None,
    catalogue: Catalogue | None = None,
) -> bytes:
    """A ``<flat-profile>`` the phone accepts, in catalogue order, UTF-8.

    ``values`` maps elements (or any key the catalogue resolves) to text; None writes
    ``<Tag/>`` (leave the value, set only ua) and "" writes ``<Tag></Tag>`` (set empty).
    ``ua`` overrides the catalogue's user access per element (None: no ua attribute).
    Raises UnknownSettingError for unknown keys and InvalidValues when a value or ua
    would be refused by the phone (secrets masked).
    """
    cat = catalogue if catalogue is not None else load_catalogue()
    ua = ua or {}
    order = {s.key: i for i, s in enumerate(cat.settings)}
    rows = []
    errors = []
    for key, value in values.items():
        setting, n, element = _element_of(cat, key)
        if element in ua:
            access = ua[element]
        elif key in ua:
            access = ua[key]
        else:
            access = setting.ua
        if access is not None and access not in UA_VALUES:
            errors.append(ValidationError(setting, access, "user access (ua) must be na, ro or rw",
                                          ", ".join(UA_VALUES), extension=n))
            continue
        if value is not None:
            try:
                validate_value(setting, value, catalogue=cat, extension=n)
            except ValidationError as exc:
                errors.append(exc)
                continue
        rows.append((order[setting.key], n or 0, element, value, access))
    if errors:
        raise InvalidValues(errors)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{ROOT}>"]
    for _, _, element, value, access in sorted(rows):
        attr = f" ua={quoteattr(access)}" if access else ""
        if value is None:
            lines.append(f"  <{element}{attr}/>")
        else:
            # A carriage return would be normalised away by the reader (XML 1.0, 2.11).
            lines.append(f"  <{element}{attr}>{escape(value, {chr(13): '&#13;'})}</{element}>")
    lines.append(f"</{ROOT}>")
    return ("\n".join(lines) + "\n").encode("utf-8")
