"""Value text between cfg.xml and TR-069: exact both ways.

cfg.xml carries the phone's own spelling ("Yes"/"No", "3128"). On TR-069 a standard
TR-181 boolean (EnableCWMP, PeriodicInformEnable) is an xsd:boolean, written "true" /
"false" (TR-069 A.2.1 also accepts "1" / "0" on input). Vendor Yes/No settings keep the
phone's spelling as xsd:string: no seed shows them as booleans, and a string cannot lose
information. Integers are written in canonical form.
"""

from __future__ import annotations

from acs_security.mapping.records import Setting

__all__ = ["ConversionError", "to_tr069_text", "from_tr069_text", "strip_xsi_prefix"]

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class ConversionError(ValueError):
    """The TR-069 text does not fit the parameter's type (fault 9006 or 9007)."""

    def __init__(self, message: str, fault_code: int) -> None:
        super().__init__(message)
        self.fault_code = fault_code


def strip_xsi_prefix(xsi_type: str) -> str:
    """'xsd:string' -> 'string' (the codec may keep the namespace prefix)."""
    return xsi_type.rsplit(":", 1)[-1]


def to_tr069_text(setting: Setting, value: str) -> str:
    """The TR-069 text of a cfg.xml value. Raises ConversionError when it does not fit."""
    if setting.tr069_type == "boolean":
        if setting.values and len(setting.values) == 2:
            yes, no = setting.values
            if value == yes:
                return "true"
            if value == no:
                return "false"
        raise ConversionError(f"{value!r} is not one of {', '.join(setting.values)}", 9007)
    if setting.tr069_type in ("unsignedInt", "int"):
        text = value.strip()
        try:
            number = int(text, 10)
        except ValueError:
            raise ConversionError(f"{value!r} is not an integer", 9007) from None
        if setting.tr069_type == "unsignedInt" and number < 0:
            raise ConversionError(f"{value!r} is negative", 9007)
        return str(number)
    return value


def from_tr069_text(setting: Setting, text: str, xsi_type: str | None = None) -> str:
    """The cfg.xml value of a TR-069 text. Raises ConversionError (9006 wrong type, 9007 bad value)."""
    expected = setting.tr069_type
    if xsi_type is not None and strip_xsi_prefix(xsi_type) != expected:
        raise ConversionError(f"{setting.key} is xsd:{expected}, not {xsi_type}", 9006)
    if expected == "boolean":
        lowered = text.strip().lower()
        yes, no = setting.values if len(setting.values) == 2 else ("Yes", "No")
        if lowered in _TRUE:
            return yes
        if lowered in _FALSE:
            return no
        raise ConversionError(f"{text!r} is not an xsd:boolean (true, false, 1, 0)", 9007)
    if expected in ("unsignedInt", "int"):
        stripped = text.strip()
        if not stripped or not (stripped.lstrip("-+").isdigit() and stripped.isascii()):
            raise ConversionError(f"{text!r} is not an xsd:{expected}", 9007)
        number = int(stripped, 10)
        if expected == "unsignedInt" and (number < 0 or number > 4294967295):
            raise ConversionError(f"{text!r} is out of the xsd:unsignedInt range", 9007)
        if expected == "int" and not -2147483648 <= number <= 2147483647:
            raise ConversionError(f"{text!r} is out of the xsd:int range", 9007)
        return str(number)
    return text
