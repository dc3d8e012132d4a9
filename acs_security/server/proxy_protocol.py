"""The PROXY protocol header (versions 1 and 2), as HAProxy sends it to a backend.

Pure: bytes in, a :class:`ProxyHeader` out. The format is HAProxy's "The PROXY protocol"
specification (doc/proxy-protocol.txt): version 1 is one text line, at most 107 bytes,
``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` or ``PROXY UNKNOWN ...\\r\\n``; version 2
is binary, a 12-byte signature, version and command, family and transport, a length, then the
addresses and optional TLVs (ignored here). A LOCAL command (v2) or an UNKNOWN/UNSPEC family
carries no client address: the connection is the proxy's own (a health check), and the
caller keeps the TCP peer's address.

twisted.protocols.haproxy parses the same headers, but only behind ``proxyEndpoint`` (its
parsers are private modules), trusts every peer, bounds no waiting time, needs the first read
to hold 8 or 16 bytes, and lets a malformed port escape as ValueError; so the listener's
wrapper (server/edge.py) does the trust, the timing and the buffering, and this module the
parsing, every malformed header being a :class:`ProxyHeaderError`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = ["ProxyHeader", "ProxyHeaderError", "parse_proxy_header", "V2_SIGNATURE", "V1_MAX_LENGTH"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: "PROXY TCP6 " + two full IPv6 addresses + two ports + spaces + CRLF (spec section 2.1).
V1_MAX_LENGTH = 107
_V2_FIXED = 16
# family/transport byte -> (address size, IP version); UNIX addresses carry no client IP.
_V2_FAMILIES = {0x11: (12, 4), 0x12: (12, 4), 0x21: (36, 6), 0x22: (36, 6)}
_V2_NO_ADDRESS = {0x00, 0x31, 0x32}


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY protocol header; the message says why."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A parsed header: its ``length`` in bytes (what follows is the proxied stream) and the
    client's (``source``) and the proxy's listening (``destination``) address and port, both
    None when the header carries none (LOCAL, UNKNOWN)."""

    version: int
    length: int
    source: tuple[str, int] | None
    destination: tuple[str, int] | None


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """Parse the header at the start of ``data``: None while more bytes are needed.

    Raises ProxyHeaderError as soon as the bytes cannot become a valid header (so a peer
    that is not speaking the protocol is refused at its first bytes).
    """
    if data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)] and data[:1] == b"\r":
        return _parse_v2(data)
    if data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _parse_v1(data)
    raise ProxyHeaderError("not a PROXY protocol header")


def _port(text: bytes) -> int:
    # Decimal, 0-65535 (spec 2.1: "a 16-bit unsigned integer ... in decimal").
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ProxyHeaderError(f"bad port {text[:8]!r}")
    return int(text)


def _ip(text: bytes, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError(f"bad address {text[:48]!r}") from None
    if addr.version != version:
        raise ProxyHeaderError(f"address {addr} is not IPv{version}")
    return str(addr)


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyHeaderError(f"version 1 header without CRLF in its first {V1_MAX_LENGTH} bytes")
        return None
    fields = data[:end].split(b" ")
    length = end + 2
    if len(fields) >= 2 and fields[1] == b"UNKNOWN":
        # Spec 2.1: the receiver ignores whatever follows UNKNOWN up to the CRLF.
        return ProxyHeader(1, length, None, None)
    if len(fields) != 6 or fields[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("version 1 header is not 'PROXY TCP4|TCP6 src dst sport dport'")
    version = 4 if fields[1] == b"TCP4" else 6
    source = (_ip(fields[2], version), _port(fields[4]))
    destination = (_ip(fields[3], version), _port(fields[5]))
    return ProxyHeader(1, length, source, destination)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < _V2_FIXED:
        return None
    version_command, family, size = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"version 2 signature with version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError(f"unknown version 2 command {command}")
    length = _V2_FIXED + size
    if len(data) < length:
        return None
    if command == 0 or family in _V2_NO_ADDRESS:
        # LOCAL: the proxy's own connection (health checks); UNSPEC/UNIX: no IP client.
        return ProxyHeader(2, length, None, None)
    if family not in _V2_FAMILIES:
        raise ProxyHeaderError(f"unknown version 2 address family 0x{family:02x}")
    need, version = _V2_FAMILIES[family]
    if size < need:
        raise ProxyHeaderError(f"version 2 address block of {size} bytes, {need} needed")
    block = data[_V2_FIXED:_V2_FIXED + need]
    width = 4 if version == 4 else 16
    src = ipaddress.ip_address(block[:width])
    dst = ipaddress.ip_address(block[width:2 * width])
    sport, dport = struct.unpack("!HH", block[2 * width:2 * width + 4])
    return ProxyHeader(2, length, (str(src), sport), (str(dst), dport))
