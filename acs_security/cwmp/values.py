"""Typed parameter values: xsi:type text <-> Python value (TR-069 A.2.1 data types, TR-106).

Types are named as the TR-069 data types: ``string``, ``int``, ``unsignedInt``, ``long``,
``unsignedLong``, ``boolean``, ``dateTime``, ``base64``, ``hexBinary``. On the wire they are
``xsd:<name>``, except ``base64``, which is sent as ``xsd:base64Binary`` (the XML Schema type;
``soap-enc:base64`` and ``xsd:base64`` are accepted on input).

Python values: ``str``; ``int`` (range-checked); ``bool``; ``datetime`` (timezone-aware for
``Z``/offsets, naive without a zone) or the text itself for a valid xsd:dateTime Python cannot
hold (year 0 or above 9999, ``24:00:00``, more than 6 fraction digits); ``bytes``.

Booleans are emitted as ``1``/``0``: both spellings are valid xsd:boolean (TR-069 A.2.1 lets
the CPE accept 0, 1, true and false), and ``1``/``0`` is the form the TR-069 examples and
embedded CPE stacks compare against most often. Input accepts all four.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone

from acs_security.cwmp.errors import MessageValidationError

__all__ = [
    "KNOWN_TYPES",
    "ParamValue",
    "check_value",
    "format_value",
    "infer_type",
    "is_secret_name",
    "parse_value",
    "safe_repr",
    "xsi_type_of",
]

ParamValue = str | int | bool | datetime | bytes

KNOWN_TYPES: frozenset[str] = frozenset(
    {"string", "int", "unsignedInt", "long", "unsignedLong", "boolean", "dateTime", "base64",
     "hexBinary"}
)

# Inclusive ranges of the XML Schema integer types.
_INT_RANGES: dict[str, tuple[int, int]] = {
    "int": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedLong": (0, 2**64 - 1),
}

# The xsi:type each known type is emitted with.
_XSI_TYPE: dict[str, str] = {name: "xsd:" + name for name in KNOWN_TYPES}
_XSI_TYPE["base64"] = "xsd:base64Binary"

# ASCII digits only: int() would also take "1_000" and non-ASCII digits.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_WS = " \t\r\n"
_DT_RE = re.compile(
    r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
# The common shape (no fraction; UTC or no zone) goes to datetime.fromisoformat, which also
# rejects out-of-range fields; everything else takes the full XML Schema path.
_DT_FAST_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z?")
_SECRET_RE = re.compile(r"(?i)(password|passphrase|secret|psk|privatekey|sharedkey)")
_UTC = UTC


def is_secret_name(name: str) -> bool:
    """True when the last node of a parameter name looks like a secret (``...Password``).

    Values of such parameters never appear in reprs or error messages.
    """
    return _SECRET_RE.search(name.rpartition(".")[2]) is not None


def safe_repr(name: str, value: object) -> str:
    """A short repr of ``value`` for messages, masked for secret parameter names."""
    if is_secret_name(name):
        return "<hidden>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def xsi_type_of(type_name: str) -> str:
    """The xsi:type text a known type is emitted with (``xsd:unsignedInt``)."""
    return _XSI_TYPE[type_name]


def infer_type(value: object) -> str:
    """The TR-069 type for a Python value: bool -> boolean, int -> the smallest of int,
    unsignedInt, long, unsignedLong that holds it, str -> string, bytes -> base64,
    datetime -> dateTime.

    Raises:
        MessageValidationError: for another Python type or an int outside unsignedLong.
    """
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        for name in ("int", "unsignedInt", "long", "unsignedLong"):
            low, high = _INT_RANGES[name]
            if low <= value <= high:
                return name
        raise MessageValidationError(f"integer {value} does not fit any CWMP integer type")
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "base64"
    if isinstance(value, datetime):
        return "dateTime"
    raise MessageValidationError(f"no CWMP type for a Python {type(value).__name__}")


def check_value(type_name: str, value: object) -> object:
    """Check that ``value`` is a valid Python value for a known type; return it (bytearray
    becomes bytes).

    Raises:
        MessageValidationError: when the value does not fit the type (the message names the
        type and the Python type, never the value).
    """
    if type_name == "string":
        if isinstance(value, str):
            return value
    elif type_name == "boolean":
        if isinstance(value, bool):
            return value
    elif type_name in _INT_RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = _INT_RANGES[type_name]
            if low <= value <= high:
                return value
            raise MessageValidationError(f"{value} is outside the range of {type_name}")
    elif type_name == "dateTime":
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            _parse_datetime(value)  # raises when not a valid xsd:dateTime
            return value
    elif type_name in ("base64", "hexBinary"):
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray):
            return bytes(value)
    else:
        raise MessageValidationError(f"unknown CWMP type {type_name!r}")
    raise MessageValidationError(
        f"a {type(value).__name__} is not a valid value for type {type_name}"
    )


def parse_value(type_name: str, text: str) -> ParamValue:
    """The Python value of ``text`` received with a known type.

    Raises:
        ValueError: (a :class:`MessageValidationError`) when the text is not a valid
        lexical form of the type; the message does not quote the text.
    """
    if type_name == "string":
        return text
    if type_name in _INT_RANGES:
        stripped = text.strip(_WS)
        if _INT_RE.fullmatch(stripped) is None:
            raise MessageValidationError(f"not a valid {type_name}")
        number = int(stripped)
        low, high = _INT_RANGES[type_name]
        if not low <= number <= high:
            raise MessageValidationError(f"outside the range of {type_name}")
        return number
    if type_name == "boolean":
        stripped = text.strip(_WS)
        if stripped in ("1", "true"):
            return True
        if stripped in ("0", "false"):
            return False
        raise MessageValidationError("not a valid boolean (0, 1, true or false)")
    if type_name == "dateTime":
        return _parse_datetime(text.strip(_WS))
    if type_name == "base64":
        compact = "".join(text.split())
        if len(compact) % 4 or _B64_RE.fullmatch(compact) is None:
            raise MessageValidationError("not valid base64")
        try:
            return base64.b64decode(compact, validate=True)
        except binascii.Error:
            raise MessageValidationError("not valid base64") from None
    if type_name == "hexBinary":
        stripped = text.strip(_WS)
        if _HEX_RE.fullmatch(stripped) is None:
            raise MessageValidationError("not valid hexBinary")
        return bytes.fromhex(stripped)
    raise MessageValidationError(f"unknown CWMP type {type_name!r}")


def format_value(type_name: str, value: object) -> str:
    """The wire text of a value already checked by :func:`check_value` (not XML-escaped)."""
    # check_value ties each type to its Python types: a str is a string or a dateTime kept as
    # received, a datetime a dateTime, bytes base64 or hexBinary, an int one of the integer types.
    if type_name == "boolean":
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii") if type_name == "base64" else value.hex().upper()
    return str(value)


def format_datetime(value: datetime) -> str:
    """xsd:dateTime text: ``Z`` for UTC, ``+hh:mm`` for other offsets, no zone when naive;
    fraction digits only when there are microseconds, without trailing zeros."""
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None:
        return text
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_datetime(text: str) -> datetime | str:
    """Parse xsd:dateTime; return the text itself when valid but not representable."""
    if _DT_FAST_RE.fullmatch(text) is not None and text[:4] != "0000":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # 24:00:00 and invalid dates: decided below
    match = _DT_RE.fullmatch(text)
    if match is None:
        raise MessageValidationError("not a valid dateTime")
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zone = match.groups()
    year, month, day = int(year_s), int(month_s), int(day_s)
    hour, minute, second = int(hour_s), int(minute_s), int(second_s)
    digits = year_s.lstrip("-")
    # XML Schema 1.0: no year 0000, no leading zeros beyond four digits.
    if year == 0 or (len(digits) > 4 and digits[0] == "0"):
        raise MessageValidationError("not a valid dateTime")
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise MessageValidationError("not a valid dateTime")
    if minute > 59 or second > 59 or hour > 24:
        raise MessageValidationError("not a valid dateTime")
    if hour == 24 and (minute or second or (fraction or "").strip("0")):
        raise MessageValidationError("not a valid dateTime")
    tzinfo: timezone | None = None
    if zone == "Z":
        tzinfo = _UTC
    elif zone is not None:
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_minutes > 59 or zone_hours * 60 + zone_minutes > 14 * 60:
            raise MessageValidationError("not a valid dateTime")
        delta = timedelta(hours=zone_hours, minutes=zone_minutes)
        tzinfo = _UTC if not delta else timezone(-delta if zone[0] == "-" else delta)
    # Valid in XML Schema but not in Python: keep the text so it round-trips unchanged.
    if not 1 <= year <= 9999 or hour == 24 or (fraction is not None and len(fraction) > 6):
        return text
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tzinfo)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31
