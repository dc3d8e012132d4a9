"""Records the store takes and returns (frozen dataclasses), and the device id rule.

Device ids follow TR-069 section 3.4.4 (OUI + ProductClass + SerialNumber are
unique together) in the form the best-known open-source ACS (GenieACS) uses, so
ids stay compatible for operators who migrate: ``OUI-ProductClass-Serial``, or
``OUI-Serial`` when the ProductClass is empty, where every character outside
``[A-Za-z0-9_]`` (the hyphen included) is percent-encoded as its UTF-8 bytes in
upper-case hex. Escaping the hyphen keeps the separator unambiguous: a Cisco
product class ``CP-8841-3PCC`` becomes ``CP%2D8841%2D3PCC``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

from acs_security.store.errors import InvalidArgument

__all__ = [
    "Credential",
    "CredentialInfo",
    "Device",
    "InformRecord",
    "TransferComplete",
    "check_aware",
    "check_text",
    "make_device_id",
    "parse_device_id",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_ID_PART = re.compile(r"^(?:[A-Za-z0-9_]|%[0-9A-F]{2})+$")


def _escape_char(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group(0).encode("utf-8"))


def _escape(part: str) -> str:
    # Serial numbers and OUIs are almost always plain letters and digits: nothing to
    # escape, and no regex (make_device_id runs twice per Inform).
    if part.isascii() and part.isalnum():
        return part
    return _UNSAFE.sub(_escape_char, part)


def make_device_id(oui: str, product_class: str, serial_number: str) -> str:
    """Build the device id from the Inform's DeviceId struct (TR-069 3.4.4).

    Raises InvalidArgument if ``oui`` or ``serial_number`` is empty (the
    schema requires both) or a part is not a string.
    """
    for name, value in (("oui", oui), ("product_class", product_class), ("serial_number", serial_number)):
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string, not {type(value).__name__}")
    if not oui:
        raise InvalidArgument("oui must not be empty")
    if not serial_number:
        raise InvalidArgument("serial_number must not be empty")
    if product_class:
        return f"{_escape(oui)}-{_escape(product_class)}-{_escape(serial_number)}"
    return f"{_escape(oui)}-{_escape(serial_number)}"


def parse_device_id(device_id: str) -> tuple[str, str, str]:
    """Split a device id into (oui, product_class, serial_number).

    Raises InvalidArgument if the id is not of the form make_device_id() builds.
    """
    parts = device_id.split("-") if isinstance(device_id, str) else []
    if len(parts) not in (2, 3) or not all(_ID_PART.match(p) for p in parts):
        raise InvalidArgument(f"not a device id (OUI-ProductClass-Serial, escaped): {device_id!r}")
    try:
        decoded = [unquote(p, errors="strict") for p in parts]
    except UnicodeDecodeError:
        raise InvalidArgument(f"not a device id (escapes are not UTF-8): {device_id!r}") from None
    if len(decoded) == 2:
        return decoded[0], "", decoded[1]
    return decoded[0], decoded[1], decoded[2]


def check_text(name: str, value: object, *, empty: bool = True) -> str:
    """Return ``value`` if it is a str the store can hold on both backends.

    PostgreSQL text cannot hold NUL, so it is refused on SQLite too: the same
    input gets the same answer on either backend. Lone surrogates are refused
    (neither driver can encode them).
    Raises InvalidArgument otherwise.
    """
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, not {type(value).__name__}")
    if not empty and not value:
        raise InvalidArgument(f"{name} must not be empty")
    if "\x00" in value:
        raise InvalidArgument(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate cannot be stored as UTF-8 by either driver.
            raise InvalidArgument(f"{name} is not valid Unicode (lone surrogate)") from None
    return value


def _check_optional_text(name: str, value: object) -> None:
    if value is not None:
        check_text(name, value)


def check_aware(name: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime (the store keeps UTC).

    Raises InvalidArgument for a naive datetime or another type.
    """
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value


@dataclass(frozen=True, slots=True)
class InformRecord:
    """What one Inform taught the ACS about a device (TR-069 A.3.3.1).

    ``inform_time`` is the ACS's receive time (the CPE's CurrentTime may be
    wrong). ``parameters`` are the ParameterList as (name, value text, xsi
    type). ``bootstrap`` is true when the events hold ``0 BOOTSTRAP``: the store
    then forgets every parameter value it knew for the device first.
    The constructor raises InvalidArgument for a malformed record.
    """

    device_id: str
    oui: str
    product_class: str
    serial_number: str
    manufacturer: str
    software_version: str | None
    connection_request_url: str | None
    udp_connection_request_address: str | None
    parameter_key: str | None
    events: tuple[str, ...]
    inform_time: datetime
    remote_address: str | None
    parameters: tuple[tuple[str, str, str], ...] = ()
    bootstrap: bool = False
    # Device.ManagementServer.ConnReqJabberID when the Inform carries it (TR-069 Annex K).
    xmpp_jid: str | None = None

    def __post_init__(self) -> None:
        check_text("device_id", self.device_id, empty=False)
        expected = make_device_id(self.oui, self.product_class, self.serial_number)
        if self.device_id != expected:
            raise InvalidArgument(f"device_id {self.device_id!r} does not match its DeviceId struct "
                                  f"(expected {expected!r})")
        for name in ("oui", "product_class", "serial_number", "manufacturer"):
            check_text(name, getattr(self, name))
        for name in ("software_version", "connection_request_url", "udp_connection_request_address",
                     "parameter_key", "remote_address", "xmpp_jid"):
            _check_optional_text(name, getattr(self, name))
        if not isinstance(self.events, tuple):
            raise InvalidArgument("events must be a tuple of event codes")
        for code in self.events:
            check_text("event code", code, empty=False)
        check_aware("inform_time", self.inform_time)
        if not isinstance(self.parameters, tuple):
            raise InvalidArgument("parameters must be a tuple of (name, value, type)")
        for param in self.parameters:
            _check_param(param)
        if not isinstance(self.bootstrap, bool):
            raise InvalidArgument("bootstrap must be a bool")


def _check_param(param: object) -> None:
    # The common case in one test (every parameter of every Inform comes here): three
    # ASCII strings without NUL, a name that is not empty. Anything else is checked
    # piece by piece below, for the precise error.
    if type(param) is tuple and len(param) == 3:
        name, value, xsi_type = param
        if type(name) is str and type(value) is str and type(xsi_type) is str and name:
            joined = name + value + xsi_type
            if joined.isascii() and "\x00" not in joined:
                return
    if not isinstance(param, tuple) or len(param) != 3:
        raise InvalidArgument(f"a parameter must be a (name, value, type) tuple, got {type(param).__name__}")
    check_text("parameter name", param[0], empty=False)
    check_text(f"value of {param[0]}", param[1])
    check_text(f"type of {param[0]}", param[2])


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the store knows it. ``tags`` are sorted; ``events`` are the
    event codes of the last Inform; datetimes are UTC-aware."""

    device_id: str
    oui: str
    product_class: str
    serial_number: str
    manufacturer: str
    software_version: str | None
    connection_request_url: str | None
    udp_connection_request_address: str | None
    parameter_key: str | None
    events: tuple[str, ...]
    first_seen: datetime
    last_inform: datetime
    remote_address: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Credential:
    """A username/password pair. The password is left out of repr() and str()
    so that logging a Credential never leaks it."""

    key: str
    username: str
    password: str = field(repr=False)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A CPE credential as listed to operators: never the password."""

    key: str
    username: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TransferComplete:
    """A TransferComplete the device sent (TR-069 A.3.3.2). fault_code 0 means
    success; start/complete times are None when the CPE reported the unknown
    time (0001-01-01T00:00:00Z)."""

    device_id: str
    command_key: str
    fault_code: int
    fault_string: str
    start_time: datetime | None
    complete_time: datetime | None
