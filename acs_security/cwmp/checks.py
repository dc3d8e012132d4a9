"""Constructor checks shared by the CWMP message dataclasses (limits of ``cwmp-1-2.xsd``).

Each check raises :class:`MessageValidationError` naming the class and the field; none quotes a
value that could be a secret (passwords are only ever length-checked).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from acs_security.cwmp.errors import MessageValidationError
from acs_security.cwmp.values import check_value

__all__ = [
    "EVENT_CODE_RE", "FILE_TYPE_RE", "IDENTIFIER_UNSAFE_RE", "OUI_RE", "UINT_MAX", "check_bool",
    "check_file_type", "check_identifier", "check_int", "check_str", "check_time", "fail",
    "new_instance", "set_field", "tuple_of",
]

UINT_MAX = 2**32 - 1
# Schema patterns (cwmp-1-2.xsd EventCodeType, DownloadFileType/UploadFileType/
# TransferFileType), anchored as XML Schema patterns are.
EVENT_CODE_RE = re.compile(r"[0-9]+( \S+)+|M \S+|X [0-9A-F]{6} .+|X \S+ .+")
FILE_TYPE_RE = re.compile(r"[1-9][0-9]*( \S+)+|X [0-9A-F]{6} .+|X \S+ .+")
OUI_RE = re.compile(r"[0-9A-Fa-f]{6}")
# Characters an identifier (DeviceId fields) may not hold: C0 controls, DEL and C1 controls
# (terminal escape sequences, a carriage return that overwrites a log line) and the
# bidirectional controls (embeddings and overrides U+202A-202E, isolates U+2066-2069, the
# marks U+200E/U+200F and U+061C), which make an identifier read otherwise than it compares
# ("Trojan Source", CVE-2021-42574). TR-069 A.3.3.1 gives these fields as strings a person
# reads off the device's label; none has a use for them.
IDENTIFIER_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
set_field = object.__setattr__
new_instance = object.__new__


def fail(owner: object, what: str) -> MessageValidationError:
    """The error to raise: ``"<Class>: <what>"``."""
    return MessageValidationError(f"{type(owner).__name__}: {what}")


def check_str(owner: object, name: str, value: object, max_len: int | None = None) -> None:
    """Raises MessageValidationError unless ``value`` is a str of at most ``max_len``."""
    if not isinstance(value, str):
        raise fail(owner, f"{name} must be a str, not {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise fail(owner, f"{name} is {len(value)} characters long, the limit is {max_len}")


def check_identifier(owner: object, name: str, value: str) -> None:
    """Raises MessageValidationError when ``value`` holds a control or bidirectional control
    character (:data:`IDENTIFIER_UNSAFE_RE`). The message names the field, the character's
    code point and kind, and its position, never the value itself (it would carry the
    character into the log line that reports it)."""
    found = IDENTIFIER_UNSAFE_RE.search(value)
    if found is None:
        return
    ch = found.group()
    kind = ("a control character" if unicodedata.category(ch) == "Cc"
            else "a bidirectional control character")
    label = unicodedata.name(ch, "")
    shown = f"U+{ord(ch):04X}" + (f" {label}" if label else "")
    raise fail(owner, f"{name} holds {shown}, {kind}, at position {found.start() + 1}; "
                      "identifiers must be printable text")


def check_int(owner: object, name: str, value: object, low: int, high: int) -> None:
    """Raises MessageValidationError unless ``value`` is an int (not a bool) in low..high."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(owner, f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise fail(owner, f"{name} is {value}, allowed {low}..{high}")


def check_bool(owner: object, name: str, value: object) -> None:
    """Raises MessageValidationError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise fail(owner, f"{name} must be a bool, not {type(value).__name__}")


def check_time(owner: object, name: str, value: object) -> None:
    """Raises MessageValidationError unless ``value`` is a datetime or valid dateTime text."""
    try:
        check_value("dateTime", value)
    except MessageValidationError as exc:
        raise fail(owner, f"{name}: {exc}") from None


def tuple_of(owner: object, name: str, value: Any, kind: type) -> None:
    """Store ``value`` as a tuple on the frozen ``owner``.

    Raises:
        MessageValidationError: unless ``value`` is a sequence (not a string) of ``kind``.
    """
    if isinstance(value, (str, bytes)):
        raise fail(owner, f"{name} must be a sequence of {kind.__name__}, not a "
                           f"{type(value).__name__}")
    try:
        items = value if type(value) is tuple else tuple(value)
    except TypeError:
        raise fail(owner, f"{name} must be a sequence of {kind.__name__}") from None
    for item in items:
        if type(item) is not kind and not isinstance(item, kind):
            raise fail(owner, f"{name} holds a {type(item).__name__}, not a {kind.__name__}")
    if items is not value:
        set_field(owner, name, items)


def check_file_type(owner: object, value: object) -> None:
    """Raises MessageValidationError unless ``value`` matches the schema's FileType patterns."""
    check_str(owner, "file_type", value, 64)
    if not isinstance(value, str) or FILE_TYPE_RE.fullmatch(value) is None:  # a str: check_str raised otherwise
        raise fail(owner, f"file_type {value!r} is not a TR-069 file type ('3 Vendor ...')")
