"""STUN message codec (RFC 5389, and classic RFC 3489) with the TR-111 part 2 attributes,
without I/O.

TR-111 part 2 (TR-069 Annex G) has a phone behind NAT send STUN Binding Requests to the
ACS's STUN server; the server learns the phone's public ``ip:port`` (where UDP connection
requests go) from the request's source address. The phone marks these requests with
CONNECTION-REQUEST-BINDING (0xC001, value ``dslforum.org/TR-111 ``) and adds
BINDING-CHANGE (0xC002, empty) when its binding changed since the last request.

Message (RFC 3489 section 11.1): type (2 bytes), length of the attributes (2), 128-bit
transaction id (16), then attributes as type (2), length (2), value. RFC 3489 attribute
values are multiples of 4 bytes; this codec pads others with zeros to 4 and reads
both forms (RFC 5389 section 15), so a USERNAME of any length round-trips.

RFC 5389 keeps the header and puts the magic cookie 0x2112A442 in the first 4 bytes of
what RFC 3489 called the transaction id (section 6), so one codec reads both: a message
whose transaction id starts with the cookie is RFC 5389. It adds XOR-MAPPED-ADDRESS
(section 15.2: the address XOR the cookie, so that NATs rewriting addresses in payloads
leave it alone), MESSAGE-INTEGRITY (15.4: HMAC-SHA1 over the message up to the attribute,
with the header length covering it; the key is the short-term password, here the phone's
connection-request password) and FINGERPRINT (15.5: CRC-32 of the message up to it XOR
0x5354554e). The test vectors of RFC 5769 check all three.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "ATTR_BINDING_CHANGE",
    "ATTR_CHANGED_ADDRESS",
    "ATTR_CONNECTION_REQUEST_BINDING",
    "ATTR_ERROR_CODE",
    "ATTR_FINGERPRINT",
    "ATTR_MESSAGE_INTEGRITY",
    "ATTR_SOFTWARE",
    "ATTR_XOR_MAPPED_ADDRESS",
    "ATTR_MAPPED_ADDRESS",
    "ATTR_SOURCE_ADDRESS",
    "ATTR_USERNAME",
    "BINDING_ERROR_RESPONSE",
    "BINDING_REQUEST",
    "BINDING_RESPONSE",
    "CONNECTION_REQUEST_BINDING_VALUE",
    "HEADER_LENGTH",
    "MAGIC_COOKIE",
    "MAX_MESSAGE",
    "StunAttribute",
    "StunError",
    "StunMessage",
    "binding_request",
    "binding_response",
    "decode_address",
    "decode_message",
    "decode_xor_address",
    "encode_address",
    "encode_message",
    "encode_xor_address",
    "new_transaction_id",
    "verify_integrity",
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
# RFC 5389 section 6 and 18.2.
MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
_FINGERPRINT_XOR = 0x5354554E
_INTEGRITY_LENGTH = 20  # HMAC-SHA1

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
    #: The bytes it was decoded from (empty for a message built here): MESSAGE-INTEGRITY
    #: is checked over them (verify_integrity).
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def rfc5389(self) -> bool:
        """The transaction id starts with the magic cookie (RFC 5389 section 6); an RFC 3489
        client's random id does so with probability 2**-32."""
        return self.transaction_id[:4] == _COOKIE_BYTES

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

    @property
    def xor_mapped_address(self) -> tuple[str, int] | None:
        """XOR-MAPPED-ADDRESS as (ip, port) (RFC 5389 section 15.2).

        Raises:
            StunError: the attribute is present but malformed.
        """
        value = self.get(ATTR_XOR_MAPPED_ADDRESS)
        return None if value is None else decode_xor_address(value, self.transaction_id)

    @property
    def reflexive_address(self) -> tuple[str, int] | None:
        """XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS: what a client reads from a response.

        Raises:
            StunError: the attribute is present but malformed.
        """
        return self.xor_mapped_address or self.mapped_address

    @property
    def has_integrity(self) -> bool:
        return self.get(ATTR_MESSAGE_INTEGRITY) is not None


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


def _xor_pad(transaction_id: bytes, length: int) -> bytes:
    # IPv4: the cookie; IPv6: the cookie and the 96-bit transaction id (section 15.2).
    return (_COOKIE_BYTES + transaction_id[4:])[:length]


def encode_xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    """An XOR-MAPPED-ADDRESS value (RFC 5389 section 15.2).

    Raises:
        ValueError: host is not an IP literal, port outside 0-65535, or a transaction
            id that is not 16 bytes.
    """
    if len(transaction_id) != TRANSACTION_ID_LENGTH:
        raise ValueError("transaction id must be 16 bytes")
    plain = encode_address(host, port)
    xport = port ^ (MAGIC_COOKIE >> 16)
    addr = bytes(a ^ b for a, b in zip(plain[4:], _xor_pad(transaction_id, len(plain) - 4), strict=True))
    return plain[:2] + struct.pack("!H", xport) + addr


def decode_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """(ip, port) from an XOR-MAPPED-ADDRESS value.

    Raises:
        StunError: wrong length for the family, or an unknown family.
    """
    host, xport = decode_address(value)  # checks family and length
    raw = ipaddress.ip_address(host).packed
    plain = bytes(a ^ b for a, b in zip(raw, _xor_pad(transaction_id, len(raw)), strict=True))
    return str(ipaddress.ip_address(plain)), xport ^ (MAGIC_COOKIE >> 16)


def new_transaction_id(random_bytes: bytes) -> bytes:
    """An RFC 5389 transaction id: the magic cookie and 12 random bytes.

    Raises:
        ValueError: not 12 random bytes.
    """
    if len(random_bytes) != 12:
        raise ValueError("an RFC 5389 transaction id takes 12 random bytes")
    return _COOKIE_BYTES + random_bytes


def _integrity(data: bytes, key: bytes) -> bytes:
    """HMAC-SHA1 of ``data`` (everything before MESSAGE-INTEGRITY) with the header's
    length field counting the MESSAGE-INTEGRITY attribute (RFC 5389 section 15.4)."""
    length = len(data) - HEADER_LENGTH + 4 + _INTEGRITY_LENGTH
    adjusted = data[:2] + struct.pack("!H", length) + data[4:]
    return hmac.new(key, adjusted, hashlib.sha1).digest()


def _fingerprint(data: bytes) -> int:
    """CRC-32 of ``data`` (everything before FINGERPRINT) with the length field counting the
    8-byte FINGERPRINT attribute, XOR 0x5354554e (RFC 5389 section 15.5)."""
    length = len(data) - HEADER_LENGTH + 8
    adjusted = data[:2] + struct.pack("!H", length) + data[4:]
    return (zlib.crc32(adjusted) & 0xFFFFFFFF) ^ _FINGERPRINT_XOR


def _attribute_offsets(data: bytes) -> list[tuple[int, int, int]]:
    """(type, offset of the attribute header, value length) of each attribute of a
    message already decoded (so well formed)."""
    out = []
    pos = HEADER_LENGTH
    while pos + 4 <= len(data):
        attr_type, attr_len = struct.unpack("!HH", data[pos:pos + 4])
        out.append((attr_type, pos, attr_len))
        pos += 4 + attr_len + (-attr_len % 4)
    return out


def verify_integrity(message: StunMessage, key: bytes) -> bool:
    """Whether the MESSAGE-INTEGRITY of a decoded message is right for ``key``; False when
    it has none or was not decoded from bytes. Constant-time comparison."""
    if not message.raw:
        return False
    for attr_type, offset, attr_len in _attribute_offsets(message.raw):
        if attr_type == ATTR_MESSAGE_INTEGRITY:
            if attr_len != _INTEGRITY_LENGTH:
                return False
            given = message.raw[offset + 4:offset + 4 + _INTEGRITY_LENGTH]
            return hmac.compare_digest(_integrity(message.raw[:offset], key), given)
    return False


def encode_message(
    message: StunMessage, *, integrity_key: bytes | None = None, fingerprint: bool = False,
    pad: bytes = b"\x00",
) -> bytes:
    """Wire bytes of ``message``, followed by MESSAGE-INTEGRITY computed with
    ``integrity_key`` and/or FINGERPRINT when asked (RFC 5389 sections 15.4 and 15.5;
    they come last, in that order). ``pad`` is the padding byte (any value is allowed,
    RFC 5389 section 15; the RFC 5769 samples use spaces).

    Raises:
        ValueError: transaction id not 16 bytes, a type outside 16 bits, a value
            too long for its 16-bit length field, or MESSAGE-INTEGRITY/FINGERPRINT
            asked of a message that already has them among its attributes.
    """
    if len(pad) != 1:
        raise ValueError("pad must be one byte")
    data = _encode_plain(message, pad)
    already = message.get(ATTR_MESSAGE_INTEGRITY) is not None or message.get(ATTR_FINGERPRINT) is not None
    if (integrity_key is not None or fingerprint) and already:
        raise ValueError("the message already carries MESSAGE-INTEGRITY or FINGERPRINT")
    if integrity_key is not None:
        mac = _integrity(data, integrity_key)
        data = _with_attribute(data, ATTR_MESSAGE_INTEGRITY, mac)
    if fingerprint:
        crc = _fingerprint(data)
        data = _with_attribute(data, ATTR_FINGERPRINT, struct.pack("!I", crc))
    return data


def _with_attribute(data: bytes, attr_type: int, value: bytes) -> bytes:
    body_length = len(data) - HEADER_LENGTH + 4 + len(value)
    if body_length > 0xFFFF:
        raise ValueError("message too long")
    return data[:2] + struct.pack("!H", body_length) + data[4:] + struct.pack("!HH", attr_type, len(value)) + value


def _encode_plain(message: StunMessage, pad: bytes) -> bytes:
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
        body += pad * (-len(attribute.value) % 4)
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
    message = StunMessage(message_type, transaction_id, tuple(attributes), raw=bytes(data))
    if message.rfc5389:
        _check_fingerprint(message)
    return message


def _check_fingerprint(message: StunMessage) -> None:
    """RFC 5389 section 7.3: a FINGERPRINT that does not match means the datagram is not
    STUN (or was damaged), and it must be dropped. Only the last attribute may be it."""
    offsets = _attribute_offsets(message.raw)
    for index, (attr_type, offset, attr_len) in enumerate(offsets):
        if attr_type != ATTR_FINGERPRINT:
            continue
        if index != len(offsets) - 1 or attr_len != 4:
            raise StunError("FINGERPRINT is not the last attribute or not 4 bytes")
        (given,) = struct.unpack("!I", message.raw[offset + 4:offset + 8])
        if given != _fingerprint(message.raw[:offset]):
            raise StunError("FINGERPRINT does not match")


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
    SOURCE-ADDRESS and CHANGED-ADDRESS. To an RFC 5389 request (the cookie in
    ``transaction_id``): XOR-MAPPED-ADDRESS first, then MAPPED-ADDRESS, which RFC 5389
    section 12.2 lets a server add for clients that read only that one; no
    SOURCE-/CHANGED-ADDRESS (RFC 5389 dropped them).

    Raises:
        ValueError: an address is not an IP literal with a valid port.
    """
    if transaction_id[:4] == _COOKIE_BYTES:
        return StunMessage(BINDING_RESPONSE, transaction_id, (
            StunAttribute(ATTR_XOR_MAPPED_ADDRESS, encode_xor_address(*mapped, transaction_id)),
            StunAttribute(ATTR_MAPPED_ADDRESS, encode_address(*mapped)),
        ))
    attributes = [StunAttribute(ATTR_MAPPED_ADDRESS, encode_address(*mapped))]
    if source is not None:
        attributes.append(StunAttribute(ATTR_SOURCE_ADDRESS, encode_address(*source)))
    if changed is not None:
        attributes.append(StunAttribute(ATTR_CHANGED_ADDRESS, encode_address(*changed)))
    return StunMessage(BINDING_RESPONSE, transaction_id, tuple(attributes))
