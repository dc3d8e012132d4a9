"""The structures inside CWMP messages (TR-069 Annex A, ``cwmp-1-2.xsd`` complex types).

Frozen dataclasses validated in their constructors; :mod:`acs_security.cwmp.messages`
re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from acs_security.cwmp.checks import (
    EVENT_CODE_RE,
    IDENTIFIER_UNSAFE_RE,
    OUI_RE,
    check_bool,
    check_identifier,
    check_int,
    check_str,
    fail,
    new_instance,
    set_field,
    tuple_of,
)
from acs_security.cwmp.errors import MessageValidationError
from acs_security.cwmp.faults import fault_string, is_cpe_fault_code
from acs_security.cwmp.values import (
    KNOWN_TYPES,
    ParamValue,
    check_value,
    infer_type,
    safe_repr,
)

__all__ = [
    "ArgStruct", "DeviceId", "EventStruct", "ParameterAttribute", "ParameterInfo",
    "ParameterValue", "SetParameterAttributesStruct", "SetParameterValuesFault",
    "TransferCompleteFault",
]

@dataclass(frozen=True, slots=True, repr=False)
class ParameterValue:
    """One ParameterValueStruct: a name, a typed value and its type (see ``values``).

    ``type`` is a TR-069 type name (``string``, ``unsignedInt``, ``boolean``, ...; an
    ``xsd:`` prefix is accepted and dropped) or, for a type this codec does not know, the
    xsi:type text as received (value then a ``str``) with ``type_ns`` the namespace its prefix
    stood for, so that it is re-emitted as is.
    """

    name: str
    value: ParamValue
    type: str
    type_ns: str | None = None

    def __post_init__(self) -> None:
        check_str(self, "name", self.name, 256)
        type_name = self.type
        if type_name not in KNOWN_TYPES:
            if not isinstance(type_name, str) or not type_name:
                raise fail(self, f"{self.name}: type must be a non-empty str")
            local = type_name[4:] if type_name.startswith("xsd:") else type_name
            if local == "base64Binary":
                local = "base64"
            if local in KNOWN_TYPES and self.type_ns is None:
                set_field(self, "type", local)
                type_name = local
            else:
                if not isinstance(self.value, str):
                    raise fail(self, f"{self.name}: a value of unknown type {type_name!r} "
                                      "must be a str")
                return
        try:
            checked = check_value(type_name, self.value)
        except MessageValidationError as exc:
            raise fail(self, f"{self.name}: {exc}") from None
        if checked is not self.value:
            set_field(self, "value", checked)

    @classmethod
    def unchecked(cls, name: str, value: ParamValue, type_name: str) -> ParameterValue:
        """Build without the constructor's checks: only for the decoder, whose values come
        straight from ``parse_value`` for a known type and whose names it has length-checked
        (the Inform of every session goes through here; the checks would double its cost)."""
        param = new_instance(cls)
        # The slots' own setters (bound below the class): a third cheaper than
        # object.__setattr__ by name, ten times per Inform (bench/ figure 1).
        _set_pv_name(param, name)
        _set_pv_value(param, value)
        _set_pv_type(param, type_name)
        _set_pv_type_ns(param, None)
        return param

    @classmethod
    def of(cls, name: str, value: ParamValue) -> ParameterValue:
        """A ParameterValue whose type is inferred from the Python value (see
        :func:`acs_security.cwmp.values.infer_type`).

        Raises:
            MessageValidationError: for a value no CWMP type holds.
        """
        return cls(name, value, infer_type(value))

    def __repr__(self) -> str:
        return (f"ParameterValue(name={self.name!r}, value={safe_repr(self.name, self.value)}, "
                f"type={self.type!r})")


_set_pv_name, _set_pv_value, _set_pv_type, _set_pv_type_ns = (
    ParameterValue.__dict__[slot].__set__ for slot in ("name", "value", "type", "type_ns"))


@dataclass(frozen=True, slots=True)
class DeviceId:
    """DeviceIdStruct. The OUI is six hex digits, stored upper case as the schema wants.
    No field may hold a control or bidirectional control character (checks.py
    IDENTIFIER_UNSAFE_RE): these name the device in the store, in logs and on screens."""

    manufacturer: str
    oui: str
    product_class: str
    serial_number: str

    def __post_init__(self) -> None:
        # One combined test on the hot path (every Inform); the detailed checks name the field.
        oui = self.oui
        if not (type(self.manufacturer) is str and len(self.manufacturer) <= 64
                and type(oui) is str and OUI_RE.fullmatch(oui) is not None
                and type(self.product_class) is str and len(self.product_class) <= 64
                and type(self.serial_number) is str and len(self.serial_number) <= 64):
            check_str(self, "manufacturer", self.manufacturer, 64)
            check_str(self, "oui", oui)
            if OUI_RE.fullmatch(oui) is None:
                raise fail(self, f"oui {oui!r} is not exactly 6 hex digits")
            check_str(self, "product_class", self.product_class, 64)
            check_str(self, "serial_number", self.serial_number, 64)
        if IDENTIFIER_UNSAFE_RE.search(f"{self.manufacturer}{self.product_class}{self.serial_number}"):
            # Named as the Inform names them (TR-069 A.3.3.1 DeviceIdStruct); the OUI
            # passed its hex pattern above.
            for field_name, value in (("Manufacturer", self.manufacturer),
                                      ("ProductClass", self.product_class),
                                      ("SerialNumber", self.serial_number)):
                check_identifier(self, field_name, value)
        if not oui.isupper() and not oui.isdigit():
            set_field(self, "oui", oui.upper())


@dataclass(frozen=True, slots=True)
class EventStruct:
    """One Inform event: ``"1 BOOT"``, ``"M Reboot"`` ... and its CommandKey."""

    event_code: str
    command_key: str = ""

    def __post_init__(self) -> None:
        code = self.event_code
        if type(code) is str and len(code) <= 64 and EVENT_CODE_RE.fullmatch(code) \
                and type(self.command_key) is str and len(self.command_key) <= 32:
            return
        check_str(self, "event_code", code, 64)
        if EVENT_CODE_RE.fullmatch(code) is None:
            raise fail(self, f"event_code {code!r} is not a TR-069 event code")
        check_str(self, "command_key", self.command_key, 32)


@dataclass(frozen=True, slots=True)
class ParameterInfo:
    """ParameterInfoStruct of GetParameterNamesResponse."""

    name: str
    writable: bool

    def __post_init__(self) -> None:
        check_str(self, "name", self.name, 256)
        check_bool(self, "writable", self.writable)


@dataclass(frozen=True, slots=True)
class ParameterAttribute:
    """ParameterAttributeStruct of GetParameterAttributesResponse (notification 0-6)."""

    name: str
    notification: int
    access_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_str(self, "name", self.name, 256)
        check_int(self, "notification", self.notification, 0, 6)
        tuple_of(self, "access_list", self.access_list, str)
        for entry in self.access_list:
            check_str(self, "access_list entry", entry, 64)


@dataclass(frozen=True, slots=True)
class SetParameterAttributesStruct:
    """One entry of SetParameterAttributes."""

    name: str
    notification_change: bool
    notification: int
    access_list_change: bool = False
    access_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_str(self, "name", self.name, 256)
        check_bool(self, "notification_change", self.notification_change)
        check_int(self, "notification", self.notification, 0, 6)
        check_bool(self, "access_list_change", self.access_list_change)
        tuple_of(self, "access_list", self.access_list, str)
        for entry in self.access_list:
            check_str(self, "access_list entry", entry, 64)


@dataclass(frozen=True, slots=True)
class ArgStruct:
    """One FileTypeArg entry of RequestDownload."""

    name: str
    value: str

    def __post_init__(self) -> None:
        check_str(self, "name", self.name, 64)
        check_str(self, "value", self.value, 256)


@dataclass(frozen=True, slots=True)
class TransferCompleteFault:
    """FaultStruct of (Autonomous)TransferComplete; code 0 means success."""

    code: int = 0
    string: str = ""

    def __post_init__(self) -> None:
        check_int(self, "code", self.code, 0, 9899)
        if self.code and not is_cpe_fault_code(self.code):
            raise fail(self, f"code {self.code} is neither 0 nor a CPE fault code")
        check_str(self, "string", self.string, 256)


@dataclass(frozen=True, slots=True)
class SetParameterValuesFault:
    """Per-parameter detail of a SetParameterValues fault (CPE fault codes only)."""

    name: str
    code: int
    string: str = ""

    def __post_init__(self) -> None:
        check_str(self, "name", self.name)
        check_int(self, "code", self.code, 9000, 9899)
        check_str(self, "string", self.string)
        if not self.string:
            set_field(self, "string", fault_string(self.code))
