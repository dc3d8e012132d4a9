"""Listeners driven with real bytes in memory: the real EdgeFactory around the real Site and
HTTP channel, StringTransports for connections and a fake clock. No sockets, no real time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from acs_security.server.addresses import TrustedProxies
from acs_security.server.edge import ConnectionCounts, EdgeFactory, EdgeLimits
from acs_security.server.http import make_site


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_responses(data: bytes) -> list[Response]:
    """Every complete HTTP/1.1 response in ``data`` (Content-Length or chunked framing)."""
    out: list[Response] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, crlf, after = rest.partition(b"\r\n")
                if not crlf:
                    return out
                size = int(size_line.split(b";")[0], 16)
                if len(after) < size + 2:
                    return out
                body, rest = body + after[:size], after[size + 2:]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            if len(rest) < length:
                break
            body, rest = rest[:length], rest[length:]
        out.append(Response(status, headers, body))
        data = rest
    return out


class Conn:
    def __init__(self, protocol: Any, transport: StringTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.lost = False

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def output(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def responses(self) -> list[Response]:
        return parse_responses(self.output())

    @property
    def closing(self) -> bool:
        """The server closed, or began to close, the connection."""
        return self.transport.disconnecting or self.transport.disconnected

    def lose(self) -> None:
        """The TCP connection ends (either side)."""
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionDone()))


@dataclass
class Wire:
    resource: Any
    header_timeout: float = 10.0
    body_timeout: float = 20.0
    idle_timeout: float = 30.0
    max_total: int = 100
    per_ip: int = 10
    trusted: tuple[str, ...] = ()
    answer_busy: bool = True
    proxy_protocol: bool = False
    channel_lost: Any = None
    max_body_bytes: int = 64 * 1024
    observe: Any = None
    clock: Clock = field(default_factory=Clock)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.limits = EdgeLimits(header_timeout=self.header_timeout, body_timeout=self.body_timeout,
                                 idle_timeout=self.idle_timeout, retry_after=7,
                                 trusted=TrustedProxies(self.trusted),
                                 observe=self.observe or (lambda *event: self.events.append(event)))
        self.site = make_site(self.resource, max_body_bytes=self.max_body_bytes, reactor=self.clock,
                              channel_lost=self.channel_lost, limits=self.limits)
        self.counts = ConnectionCounts(self.max_total, self.per_ip)
        self.factory = EdgeFactory(self.site, listener="cwmp", limits=self.limits, counts=self.counts,
                                   clock=self.clock, answer_busy=self.answer_busy,
                                   proxy_protocol=self.proxy_protocol)

    def connect(self, host: str = "198.51.100.7", port: int = 40001) -> Conn:
        addr = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        protocol = self.factory.buildProtocol(addr)
        transport = StringTransport(peerAddress=addr)
        protocol.makeConnection(transport)
        return Conn(protocol, transport)


def request(method: str = "POST", body: bytes = b"", *, path: str = "/cwmp",
            headers: dict[str, str] | None = None) -> bytes:
    hdrs = {"Host": "acs.example.net", "Content-Length": str(len(body))}
    if method == "POST":
        hdrs["Content-Type"] = "text/xml"
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + body
