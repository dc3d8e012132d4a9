"""Classic STUN (RFC 3489) message codec with the TR-111 part 2 attributes, without I/O.

TR-111 part 2 (TR-069 Annex G) has a phone behind NAT send STUN Binding Requests to the
ACS's STUN server; the server learns the phone's public ``ip:port`` (where UDP connection
requests go) from the request's source address. The phone marks these requests with
CONNECTION-REQUEST-BINDING (0xC001, value ``dslforum.org/TR-111 ``) and adds
BINDING-CHANGE (0xC002, empty) when its binding changed since the last request.

Message (RFC 3489 section 11.1): type (2 bytes), length of the attributes (2), 128-bit
transaction id (16), then attributes as type (2), length (2), value. RFC 3489 attribute
values are multiples of 4 bytes; this codec pads others with zeros to 4 and reads
both forms (RFC 5389 section 15), so a USERNAME of any length round-trips.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "ATTR_BINDING_CHANGE",
    "ATTR_CHANGED_ADDRESS",
    "ATTR_CONNECTION_REQUEST_BINDING",
    "ATTR_ERROR_CODE",
    "ATTR_MAPPED_ADDRESS",
    "ATTR_SOURCE_ADDRESS",
    "ATTR_USERNAME",
    "BINDING_ERROR_RESPONSE",
    "BINDING_REQUEST",
    "BINDING_RESPONSE",
    "CONNECTION_REQUEST_BINDING_VALUE",
    "HEADER_LENGTH",
    "MAX_MESSAGE",
    "StunAttribute",
    "StunError",
    "StunMessage",
    "binding_request",
    "binding_response",
    "decode_address",
    "decode_message",
    "encode_address",
    "encode_message",
]

# RFC 3489 section 11.1 message types.
BINDING_REQUEST = 0x0001
BINDING_RESPONSE = 0x0101
BINDING_ERROR_RESPONSE = 0x0111
# RFC 3489 section 11.2 attributes.
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_SOURCE_ADDRESS = 0x0004
ATTR_CHANGED_ADDRESS = 0x0005
ATTR_USERNAME = 0x0006
ATTR_ERROR_CODE = 0x0009
# TR-111 part 2 section 2.2.1 / TR-069 Annex G.
ATTR_CONNECTION_REQUEST_BINDING = 0xC001
ATTR_BINDING_CHANGE = 0xC002
CONNECTION_REQUEST_BINDING_VALUE = b"dslforum.org/TR-111 "

HEADER_LENGTH = 20
TRANSACTION_ID_LENGTH = 16
# A Binding Request or Response is well under 200 bytes; RFC 3489 section 9.3 has
# clients use at most a few hundred. One MTU bounds what we bother to parse.
MAX_MESSAGE = 1500
_MAX_ATTRIBUTES = 32
_FAMILY_IPV4 = 0x01
_FAMILY_IPV6 = 0x02  # RFC 5389 section 15.1; RFC 3489 itself knows IPv4 only


class StunError(ValueError):
    """Bytes that are not a well-formed STUN message (the server drops them)."""


@dataclass(frozen=True, slots=True)
class StunAttribute:
    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class StunMessage:
    """One STUN message; attributes in wire order (unknown ones kept as they came)."""

    message_type: int
    transaction_id: bytes
    attributes: tuple[StunAttribute, ...] = ()

    def get(self, attribute_type: int) -> bytes | None:
        """Value of the first attribute of that type, or None."""
        for attribute in self.attributes:
            if attribute.type == attribute_type:
                return attribute.value
        return None

    @property
    def username(self) -> str | None:
        value = self.get(ATTR_USERNAME)
        if value is None:
            return None
        # RFC 3489 pads USERNAME to a multiple of 4; TR-111 senders use NULs or spaces.
        return value.rstrip(b"\x00").decode("utf-8", "replace")

    @property
    def connection_request_binding(self) -> bool:
        """The TR-111 marker is present (its value is fixed, but tolerate padding)."""
        value = self.get(ATTR_CONNECTION_REQUEST_BINDING)
        return value is not None and value.rstrip(b"\x00") in (
            CONNECTION_REQUEST_BINDING_VALUE,
            CONNECTION_REQUEST_BINDING_VALUE.rstrip(),
        )

    @property
    def binding_change(self) -> bool:
        return self.get(ATTR_BINDING_CHANGE) is not None

    @property
    def mapped_address(self) -> tuple[str, int] | None:
        """MAPPED-ADDRESS as (ip, port).

        Raises:
            StunError: the attribute is present but malformed.
        """
        value = self.get(ATTR_MAPPED_ADDRESS)
        return None if value is None else decode_address(value)


def encode_address(host: str, port: int) -> bytes:
    """A MAPPED-ADDRESS-style value (RFC 3489 section 11.2.1).

    Raises:
        ValueError: host is not an IP literal or port is outside 0-65535.
    """
    if not 0 <= port <= 65535:
        raise ValueError("port must be between 0 and 65535")
    addr = ipaddress.ip_address(host)
    family = _FAMILY_IPV4 if addr.version == 4 else _FAMILY_IPV6
    return struct.pack("!BBH", 0, family, port) + addr.packed


def decode_address(value: bytes) -> tuple[str, int]:
    """(ip, port) from a MAPPED-ADDRESS-style value.

    Raises:
        StunError: wrong length for the family, or an unknown family.
    """
    if len(value) < 4:
        raise StunError("address attribute shorter than 4 bytes")
    _, family, port = struct.unpack("!BBH", value[:4])
    if family == _FAMILY_IPV4:
        if len(value) != 8:
            raise StunError("IPv4 address attribute must be 8 bytes")
        return str(ipaddress.IPv4Address(value[4:8])), port
    if family == _FAMILY_IPV6:
        if len(value) != 20:
            raise StunError("IPv6 address attribute must be 20 bytes")
        return str(ipaddress.IPv6Address(value[4:20])), port
    raise StunError(f"unknown address family {family}")


def encode_message(message: StunMessage) -> bytes:
    """Wire bytes of ``message``.

    Raises:
        ValueError: transaction id not 16 bytes, a type outside 16 bits, or a value
            too long for its 16-bit length field.
    """
    if len(message.transaction_id) != TRANSACTION_ID_LENGTH:
        raise ValueError("transaction id must be 16 bytes")
    if not 0 <= message.message_type <= 0x3FFF:
        raise ValueError("message type must fit 14 bits (RFC 3489 section 11.1)")
    body = bytearray()
    for attribute in message.attributes:
        if not 0 <= attribute.type <= 0xFFFF:
            raise ValueError("attribute type must fit 16 bits")
        if len(attribute.value) > 0xFFFF - 4:
            raise ValueError("attribute value too long")
        body += struct.pack("!HH", attribute.type, len(attribute.value)) + attribute.value
        body += b"\x00" * (-len(attribute.value) % 4)
    if len(body) > 0xFFFF:
        raise ValueError("message too long")
    return struct.pack("!HH", message.message_type, len(body)) + message.transaction_id + bytes(body)


def decode_message(data: bytes) -> StunMessage:
    """Parse one STUN message occupying all of ``data``.

    Raises:
        StunError: shorter than the 20-byte header, larger than :data:`MAX_MESSAGE`,
            top two type bits set, length field not matching the bytes present,
            truncated attribute header or value, or too many attributes.
    """
    if len(data) > MAX_MESSAGE:
        raise StunError(f"message larger than {MAX_MESSAGE} bytes")
    if len(data) < HEADER_LENGTH:
        raise StunError(f"truncated header: {len(data)} of {HEADER_LENGTH} bytes")
    message_type, length = struct.unpack("!HH", data[:4])
    if message_type & 0xC000:
        raise StunError("top two bits of the message type are set: not STUN")
    if length != len(data) - HEADER_LENGTH:
        present = len(data) - HEADER_LENGTH
        raise StunError(f"length field says {length} bytes of attributes, {present} present")
    transaction_id = bytes(data[4:HEADER_LENGTH])
    attributes: list[StunAttribute] = []
    pos = HEADER_LENGTH
    while pos < len(data):
        if len(attributes) >= _MAX_ATTRIBUTES:
            raise StunError(f"more than {_MAX_ATTRIBUTES} attributes")
        if len(data) - pos < 4:
            raise StunError(f"truncated attribute header at byte {pos}")
        attr_type, attr_len = struct.unpack("!HH", data[pos:pos + 4])
        pos += 4
        if attr_len > len(data) - pos:
            raise StunError(f"attribute 0x{attr_type:04x} value truncated at byte {pos}")
        attributes.append(StunAttribute(attr_type, bytes(data[pos:pos + attr_len])))
        pos += attr_len
        # Skip RFC 5389 padding when present; RFC 3489 values are already aligned.
        pad = -attr_len % 4
        if pad and len(data) - pos >= pad:
            pos += pad
    return StunMessage(message_type, transaction_id, tuple(attributes))


def binding_request(
    transaction_id: bytes,
    *,
    username: str | None = None,
    connection_request_binding: bool = True,
    binding_change: bool = False,
) -> StunMessage:
    """A phone's Binding Request with the TR-111 attributes (for the simulator/tests)."""
    attributes: list[StunAttribute] = []
    if username is not None:
        attributes.append(StunAttribute(ATTR_USERNAME, username.encode("utf-8")))
    if connection_request_binding:
        attributes.append(StunAttribute(ATTR_CONNECTION_REQUEST_BINDING, CONNECTION_REQUEST_BINDING_VALUE))
    if binding_change:
        attributes.append(StunAttribute(ATTR_BINDING_CHANGE, b""))
    return StunMessage(BINDING_REQUEST, transaction_id, tuple(attributes))


def binding_response(
    transaction_id: bytes,
    mapped: tuple[str, int],
    *,
    source: tuple[str, int] | None = None,
    changed: tuple[str, int] | None = None,
) -> StunMessage:
    """Binding Response with MAPPED-ADDRESS (RFC 3489 section 11.2.1) and, when known,
    SOURCE-ADDRESS and CHANGED-ADDRESS.

    Raises:
        ValueError: an address is not an IP literal with a valid port.
    """
    attributes = [StunAttribute(ATTR_MAPPED_ADDRESS, encode_address(*mapped))]
    if source is not None:
        attributes.append(StunAttribute(ATTR_SOURCE_ADDRESS, encode_address(*source)))
    if changed is not None:
        attributes.append(StunAttribute(ATTR_CHANGED_ADDRESS, encode_address(*changed)))
    return StunMessage(BINDING_RESPONSE, transaction_id, tuple(attributes))
