"""UDP connection requests (TR-069 Annex G, TR-111 part 2), without I/O.

A phone behind NAT cannot take the HTTP connection request, so the ACS sends it one
HTTP-shaped UDP datagram (Annex G section G.2.2)::

    GET http://host:port?ts=TS&id=ID&un=USERNAME&cn=CNONCE&sig=SIG HTTP/1.1\\r\\n
    Host: host:port\\r\\n
    \\r\\n

``SIG`` is hex HMAC-SHA1 with the ConnectionRequestPassword as key over
``TS + ID + USERNAME + CNONCE`` (the decimal strings, concatenated). The phone checks the
username, the signature, that ``ts`` is recent and that ``id`` was not seen before
(the ACS sends each datagram several times; the copies carry one id and act once).

This module builds the datagram (ACS side) and parses/verifies it (phone side), and
parses ``Device.ManagementServer.UDPConnectionRequestAddress`` (``host:port``, IPv6 in
brackets). Username and cnonce are percent-encoded in the query so that ``&``, ``=`` or
spaces in a username cannot change the message; the signature covers the decoded values.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "MAX_DATAGRAM",
    "HostPort",
    "UdpAddressError",
    "UdpConnectionRequest",
    "UdpRejectReason",
    "UdpRequestError",
    "UdpRequestVerifier",
    "UdpVerdict",
    "build_udp_connection_request",
    "parse_host_port",
    "parse_udp_connection_request",
    "udp_signature",
]

# An Annex G datagram is a request line and a Host header: a few hundred bytes. Anything
# beyond one Ethernet MTU is not a connection request.
MAX_DATAGRAM = 1500
_MAX_UINT32 = 0xFFFFFFFF
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name


class UdpAddressError(ValueError):
    """A ``host:port`` that is not a valid UDPConnectionRequestAddress."""


class UdpRequestError(ValueError):
    """A datagram that is not an Annex G connection request (the phone drops it)."""


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host (DNS name, IPv4 or IPv6 literal without brackets) and a port."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


def _parse_port(text: str, original: str) -> int:
    if not text:
        raise UdpAddressError(f"missing port in {original[:80]!r}")
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise UdpAddressError(f"port {text[:16]!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise UdpAddressError(f"port {port} is outside 1-65535")
    return port


def _check_hostname(host: str, original: str) -> None:
    if not host:
        raise UdpAddressError(f"missing host in {original[:80]!r}")
    if len(host) > 253:
        raise UdpAddressError("host name longer than 253 characters")
    if all(part.isdigit() for part in host.split(".")):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UdpAddressError(f"{host[:64]!r} is not a valid IPv4 address") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise UdpAddressError(f"{host[:64]!r} is not a valid host name")


def parse_host_port(value: str) -> HostPort:
    """Parse ``host:port``, ``a.b.c.d:port`` or ``[v6]:port``.

    Raises:
        UdpAddressError: empty, no port, port not in 1-65535, an IPv6 literal without
            brackets, or an invalid host.
    """
    text = value.strip()
    if not text:
        raise UdpAddressError("empty address")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UdpAddressError(f"unclosed '[' in {text[:80]!r}")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UdpAddressError(f"{host[:64]!r} is not a valid IPv6 address") from None
        rest = text[end + 1:]
        if not rest.startswith(":"):
            raise UdpAddressError(f"expected ':port' after ']' in {text[:80]!r}")
        return HostPort(host, _parse_port(rest[1:], text))
    if text.count(":") > 1:
        raise UdpAddressError("an IPv6 address must be written in brackets: [addr]:port")
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UdpAddressError(f"missing ':port' in {text[:80]!r}")
    _check_hostname(host, text)
    return HostPort(host, _parse_port(port_text, text))


def udp_signature(password: str, ts: int, request_id: int, username: str, cnonce: str) -> str:
    """Hex HMAC-SHA1(key=password, msg=TS+ID+USERNAME+CNONCE) (TR-069 Annex G.2.2.1).

    Raises:
        ValueError: an input is not encodable as UTF-8 (lone surrogates); the message
            does not quote it.
    """
    try:
        message = f"{ts}{request_id}{username}{cnonce}".encode()
        key = password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("UDP connection request inputs are not encodable as UTF-8") from None
    return hmac.new(key, message, hashlib.sha1).hexdigest()


def build_udp_connection_request(
    address: HostPort | str,
    *,
    username: str,
    password: str,
    ts: int,
    request_id: int,
    cnonce: str,
) -> bytes:
    """The Annex G datagram for ``address`` (the phone's UDPConnectionRequestAddress).

    Raises:
        UdpAddressError: ``address`` is not a valid ``host:port``.
        ValueError: ts negative, id outside uint32, empty cnonce. Never names the password.
    """
    target = address if isinstance(address, HostPort) else parse_host_port(address)
    if ts < 0:
        raise ValueError("ts must not be negative")
    if not 0 <= request_id <= _MAX_UINT32:
        raise ValueError("request_id must be an unsigned 32-bit integer")
    if not cnonce:
        raise ValueError("cnonce must not be empty")
    sig = udp_signature(password, ts, request_id, username, cnonce)
    query = f"ts={ts}&id={request_id}&un={quote(username, safe='')}&cn={quote(cnonce, safe='')}&sig={sig}"
    text = f"GET http://{target}?{query} HTTP/1.1\r\nHost: {target}\r\n\r\n"
    return text.encode("ascii")


@dataclass(frozen=True, slots=True)
class UdpConnectionRequest:
    """A parsed Annex G datagram (not yet verified)."""

    host: str  # the host:port in the request URI, as sent
    ts: int
    request_id: int
    username: str
    cnonce: str
    signature: str = field(repr=False)


def _decode_query_value(name: str, raw: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise UdpRequestError(f"query value {name!r} is not valid percent-encoded UTF-8") from None


def parse_udp_connection_request(datagram: bytes) -> UdpConnectionRequest:
    """Parse an Annex G datagram.

    Raises:
        UdpRequestError: oversized, not ASCII, not ``GET <uri> HTTP/1.1`` with a Host
            header and an empty line, or ts/id/un/cn/sig missing, repeated or invalid.
    """
    if len(datagram) > MAX_DATAGRAM:
        raise UdpRequestError(f"datagram larger than {MAX_DATAGRAM} bytes")
    try:
        text = datagram.decode("ascii")
    except UnicodeDecodeError:
        raise UdpRequestError("datagram is not ASCII") from None
    head, sep, rest = text.partition("\r\n\r\n")
    if not sep:
        raise UdpRequestError("datagram does not end its header block with CRLF CRLF")
    if rest:
        raise UdpRequestError("data after the header block")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise UdpRequestError("request line is not 'GET <uri> HTTP/1.1'")
    method, uri, version = parts
    if not uri or not all(0x21 <= ord(ch) <= 0x7E for ch in uri):
        raise UdpRequestError("request URI is empty or holds spaces or control characters")
    if method != "GET":
        raise UdpRequestError(f"method {method[:16]!r} is not GET")
    if version != "HTTP/1.1":
        raise UdpRequestError(f"version {version[:16]!r} is not HTTP/1.1")
    has_host = False
    for line in lines[1:]:
        name, colon, _ = line.partition(":")
        if not colon or not _TOKEN.match(name):
            raise UdpRequestError("malformed header line")
        if name.lower() == "host":
            has_host = True
    if not has_host:
        raise UdpRequestError("no Host header")
    if not uri.lower().startswith("http://"):
        raise UdpRequestError("request URI is not an absolute http:// URI")
    authority_path, qmark, query = uri[len("http://"):].partition("?")
    if not qmark:
        raise UdpRequestError("request URI has no query")
    host = authority_path.split("/", 1)[0]
    if not host:
        raise UdpRequestError("request URI has no host")
    values: dict[str, str] = {}
    for pair in query.split("&"):
        name, eq, raw = pair.partition("=")
        if not eq:
            raise UdpRequestError("query element without '='")
        if name in values:
            raise UdpRequestError(f"query argument {name[:8]!r} repeated")
        values[name] = raw
    missing = [n for n in ("ts", "id", "un", "cn", "sig") if n not in values]
    if missing:
        raise UdpRequestError("query lacks " + ", ".join(missing))
    if not _DIGITS.match(values["ts"]):
        raise UdpRequestError("ts is not an unsigned decimal integer")
    if not _DIGITS.match(values["id"]):
        raise UdpRequestError("id is not an unsigned decimal integer")
    if not _HEX40.match(values["sig"]):
        raise UdpRequestError("sig is not 40 hexadecimal digits (HMAC-SHA1)")
    cnonce = _decode_query_value("cn", values["cn"])
    if not cnonce:
        raise UdpRequestError("empty cn")
    return UdpConnectionRequest(
        host=host,
        ts=int(values["ts"]),
        request_id=int(values["id"]),
        username=_decode_query_value("un", values["un"]),
        cnonce=cnonce,
        signature=values["sig"].lower(),
    )


class UdpRejectReason(enum.StrEnum):
    MALFORMED = "malformed"
    WRONG_USERNAME = "wrong_username"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"  # ts outside the window around now
    REPLAYED_ID = "replayed_id"  # includes the ACS's own repeated copies


@dataclass(frozen=True, slots=True)
class UdpVerdict:
    """Accept (act on the request once) or drop, with the reason. No secrets inside."""

    ok: bool
    reason: UdpRejectReason | None = None
    detail: str = ""
    request: UdpConnectionRequest | None = None


class UdpRequestVerifier:
    """The phone's check of incoming UDP connection requests (TR-069 Annex G.2.2.3).

    Remembers the ids of accepted requests while their ``ts`` is inside the window (a
    replay outside the window fails the ts check anyway), at most ``max_remembered_ids``.
    When it must forget an id still inside the window, it refuses unseen ids with a ``ts``
    no later than the forgotten one's, so a replay cannot pass through the gap.
    """

    __slots__ = ("_username", "_password", "_window", "_max", "_ids", "_floor")

    def __init__(
        self, username: str, password: str, *, window_s: float = 30.0, max_remembered_ids: int = 256
    ) -> None:
        """Raises:
        ValueError: window_s not positive or max_remembered_ids below 1.
        """
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        if max_remembered_ids < 1:
            raise ValueError("max_remembered_ids must be at least 1")
        self._username = username
        self._password = password
        self._window = float(window_s)
        self._max = max_remembered_ids
        self._ids: OrderedDict[int, int] = OrderedDict()  # id -> ts, in acceptance order
        self._floor = -1

    def __repr__(self) -> str:
        return f"UdpRequestVerifier(username={self._username!r}, window_s={self._window})"

    def set_credentials(self, username: str, password: str) -> None:
        """New ConnectionRequestUsername/Password (set by the ACS at run time)."""
        self._username = username
        self._password = password

    def verify(self, datagram: bytes, now: float) -> UdpVerdict:
        """Accept or refuse one datagram. Never raises for what the network sent."""
        try:
            req = parse_udp_connection_request(datagram)
        except UdpRequestError as exc:
            return UdpVerdict(False, UdpRejectReason.MALFORMED, str(exc))
        if not hmac.compare_digest(
            req.username.encode("utf-8", "surrogatepass"), self._username.encode("utf-8", "surrogatepass")
        ):
            return UdpVerdict(False, UdpRejectReason.WRONG_USERNAME, "username does not match", req)
        try:
            expected = udp_signature(self._password, req.ts, req.request_id, req.username, req.cnonce)
        except ValueError:
            return UdpVerdict(
                False, UdpRejectReason.BAD_SIGNATURE, "configured password is not valid text", req
            )
        if not hmac.compare_digest(expected.encode("ascii"), req.signature.encode("ascii")):
            return UdpVerdict(False, UdpRejectReason.BAD_SIGNATURE, "signature does not match", req)
        if abs(now - req.ts) > self._window:
            return UdpVerdict(
                False, UdpRejectReason.STALE_TIMESTAMP, f"ts is outside the {self._window:g} s window", req
            )
        while self._ids:
            first_id, first_ts = next(iter(self._ids.items()))
            if now - first_ts <= self._window:
                break
            del self._ids[first_id]
        if req.request_id in self._ids or req.ts <= self._floor:
            return UdpVerdict(False, UdpRejectReason.REPLAYED_ID, "id already seen", req)
        while len(self._ids) >= self._max:
            _, dropped_ts = self._ids.popitem(last=False)
            self._floor = max(self._floor, dropped_ts)
        self._ids[req.request_id] = req.ts
        return UdpVerdict(True, None, "", req)
