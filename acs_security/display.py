"""What a person reads: identifiers made safe to print and easy to recognise.

Serial numbers, product classes and other identifiers come from the phones (the Inform's
DeviceId, TR-069 3.4.4 / A.3.3.1) and are shown in tables, reports and log lines. Two rules:

- Nothing a phone sent may act on the operator's terminal or mislead the eye: control
  characters (C0, DEL, C1: escape sequences, carriage returns that overwrite a line),
  bidirectional controls (U+202E turns ``FCH1234`` into something that reads otherwise;
  CVE-2021-42574 "Trojan Source"), other format, private-use, unassigned and separator
  characters are shown as ``\\xNN`` / ``\\uNNNN`` escapes, and a backslash as ``\\\\`` so that
  an escape cannot be forged.
- A phone is named by what is written on its label, serial number and model, not by the
  escaped device id (``00000C-CP%2D8851%2D3PCC-FCH1234``), which stays in JSON and URLs. The
  OUI is added where two phones of one table would otherwise read alike.

Pure functions; no I/O.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["device_label", "device_labels", "device_parts", "label_of", "printable"]

# Unicode categories shown as escapes: control, format (bidi and zero-width controls are
# Cf), surrogate, private use, unassigned, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: Any) -> str:
    """``text`` with every character that could act on a terminal or hide what it says
    escaped (see the module doc); other characters, accents and scripts included, as they
    are. ``None`` gives an empty string; other values their ``str``."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and s.isprintable() and "\\" not in s:
        return s  # the common case: nothing to look at twice
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == " " or (unicodedata.category(ch) not in _UNSAFE_CATEGORIES and ch.isprintable()):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def device_parts(device_id: str) -> tuple[str, str, str] | None:
    """(oui, product_class, serial_number) of a device id, or None when it is not one."""
    from acs_security.store.errors import InvalidArgument
    from acs_security.store.records import parse_device_id

    try:
        return parse_device_id(device_id)
    except InvalidArgument:
        return None


def device_label(serial_number: Any, product_class: Any, oui: Any = None) -> str:
    """``FCH1234 CP-8851-3PCC`` (and `` OUI 00562B`` when ``oui`` is given), escaped."""
    label = printable(serial_number)
    if product_class:
        label += f" {printable(product_class)}"
    if oui:
        label += f" OUI {printable(oui)}"
    return label


def _row_parts(row: Mapping[str, Any]) -> tuple[str, str, str]:
    serial, model, oui = row.get("serial_number"), row.get("product_class"), row.get("oui")
    if serial is None or oui is None:
        parts = device_parts(str(row.get("device_id", "")))
        if parts is not None:
            oui = oui if oui is not None else parts[0]
            model = model if model is not None else parts[1]
            serial = serial if serial is not None else parts[2]
    return (str(oui or ""), str(model or ""), str(serial if serial is not None else row.get("device_id", "")))


def device_labels(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Labels for rows that carry ``serial_number``/``product_class``/``oui`` or only a
    ``device_id``: serial and model, with the OUI where two rows would read alike."""
    parts = [_row_parts(r) for r in rows]
    clashes = Counter((model, serial) for _, model, serial in parts)
    return [device_label(serial, model, oui if clashes[(model, serial)] > 1 else None)
            for oui, model, serial in parts]


def label_of(device_id: str | None) -> str:
    """The label of one device id (serial and model) for a log line; an id that is not
    one is shown escaped as it is, None as "-"."""
    if device_id is None:
        return "-"
    parts = device_parts(device_id)
    if parts is None:
        return printable(device_id)
    return device_label(parts[2], parts[1])
