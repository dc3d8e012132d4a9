"""The listeners' edge: connection caps, the PROXY protocol, the client's address.

Every listener (CWMP plain and TLS, management API) is wrapped in an :class:`EdgeFactory`,
outermost, below TLS, so that a connection is counted, refused or attributed before any
TLS handshake or HTTP parsing is spent on it:

- **Total cap** (``max_connections``): beyond it a connection is refused at once.
- **Per-address cap** (``max_connections_per_ip``): open connections of one client address
  (an IPv6 client's /64, server/addresses.py). The address is the real client's: from the
  PROXY header when the listener requires one, else the TCP peer; a trusted proxy's own
  connections are not counted here but by the address its X-Forwarded-For names, once a
  request's headers say it (server/http.py claims it through :meth:`EdgeProtocol.claim`).
- **PROXY protocol** (``proxy_protocol``): on a listener that requires it, the peer must be
  a trusted proxy and its first bytes a valid PROXY header (v1 or v2, server/proxy_protocol.py)
  within ``header_timeout``; anything else is closed. :meth:`EdgeProtocol.getPeer` then
  answers the client's address, which is what twisted.web's ``getClientAddress`` returns.

What a refused connection gets: on a plain HTTP listener a ``503`` with ``Retry-After``
(TR-069 section 3.7.1.5 lets the ACS refuse; the CPE retries, after Retry-After), written at
once, then the connection is half-closed and drained for :data:`LINGER` seconds so that the
client reads the answer instead of a reset. On a TLS listener nothing can be said before a
handshake, which costs more CPU than the refusal saves: the connection is closed, which the
CPE's session retry (TR-069 section 3.2.1.1) treats like a 503. An invalid or untrusted
PROXY header is closed at once: that peer is not speaking the protocol the operator set up.

The HTTP timeouts (header, body, idle) live in the HTTP channel (server/http.py), which knows
where a request starts and ends; :class:`EdgeLimits` carries them to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import directlyProvides, providedBy

from acs_security.server.addresses import TrustedProxies, connection_key, limit_key, normalize
from acs_security.server.proxy_protocol import ProxyHeaderError, parse_proxy_header

__all__ = ["EdgeLimits", "ConnectionCounts", "EdgeFactory", "EdgeProtocol", "edge_of", "busy_response",
           "LINGER"]

log = Logger(namespace="acs_security.edge")

#: Seconds a refused connection is drained after its 503 before it is dropped.
LINGER = 2.0

#: (event, listener, reason): event "closed" (a timeout) or "refused" (a cap, a PROXY header).
EdgeObserver = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The limits one site's connections share (server/config.py documents each)."""

    header_timeout: float = 15.0
    body_timeout: float = 30.0
    idle_timeout: float = 30.0
    retry_after: int = 10
    trusted: TrustedProxies = field(default_factory=TrustedProxies)
    observe: EdgeObserver | None = None

    def report(self, event: str, listener: str, reason: str) -> None:
        if self.observe is not None:
            self.observe(event, listener, reason)


def busy_response(retry_after: int) -> bytes:
    """The raw 503 a refused connection gets (it closes the connection)."""
    body = b"busy, retry later\n"
    return (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %d\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (retry_after, len(body), body))


class ConnectionCounts:
    """Open connections of one group of listeners, in total and per client address key.

    No I/O; connections are any hashable objects. ``max_per_address`` 0 turns the
    per-address cap off."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        if max_total < 1 or max_per_address < 0:
            raise ValueError("max_total must be at least 1 and max_per_address at least 0")
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._open = 0
        self._keys: dict[object, str] = {}
        self._per: dict[str, int] = {}
        #: Refused connections still draining after their 503 (bounded by max_total).
        self.lingering = 0

    @property
    def open(self) -> int:
        return self._open

    def of(self, key: str) -> int:
        return self._per.get(key, 0)

    def admit(self) -> bool:
        """Count a new connection; False (nothing counted) when max_total are open."""
        if self._open >= self.max_total:
            return False
        self._open += 1
        return True

    def leave(self) -> None:
        """An admitted connection closed."""
        self._open -= 1

    def claim(self, conn: object, key: str | None) -> bool:
        """Count ``conn`` under ``key`` (None: under no address) instead of its previous key;
        False, and nothing changed, when ``key`` already has max_per_address connections."""
        current = self._keys.get(conn)
        if current == key:
            return True
        if key is not None and self.max_per_address and self._per.get(key, 0) >= self.max_per_address:
            return False
        self.release(conn)
        if key is not None:
            self._keys[conn] = key
            self._per[key] = self._per.get(key, 0) + 1
        return True

    def release(self, conn: object) -> None:
        """Forget ``conn``'s address (it closed, or it moves to another key)."""
        key = self._keys.pop(conn, None)
        if key is not None:
            left = self._per[key] - 1
            if left:
                self._per[key] = left
            else:
                del self._per[key]


class _Refusal:
    """Answers a refused connection: the 503 and a drained half-close, or a close."""

    def __init__(self, transport: Any, counts: ConnectionCounts, clock: Any) -> None:
        self._transport = transport
        self._counts = counts
        self._clock = clock
        self._timer: Any = None
        self._lingering = False

    def answer(self, retry_after: int | None) -> None:
        """``retry_after`` None: close at once (TLS, hostile peers)."""
        t = self._transport
        if retry_after is None or self._counts.lingering >= self._counts.max_total:
            t.abortConnection()
            return
        self._counts.lingering += 1
        self._lingering = True
        t.write(busy_response(retry_after))
        half_close = getattr(t, "loseWriteConnection", None)
        if half_close is not None:
            half_close()
        else:
            t.loseConnection()
        self._timer = self._clock.callLater(LINGER, self._drop)

    def _drop(self) -> None:
        self._timer = None
        self._transport.abortConnection()

    def lost(self) -> None:
        if self._lingering:
            self._lingering = False
            self._counts.lingering -= 1
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class _Refused(Protocol):
    """A connection over the total cap: answered without building the HTTP stack."""

    def __init__(self, factory: EdgeFactory) -> None:
        self._factory = factory
        self._refusal: _Refusal | None = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's interface name
        f = self._factory
        self._refusal = _Refusal(self.transport, f.counts, f.clock)
        self._refusal.answer(f.limits.retry_after if f.answer_busy else None)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        pass  # drained: the request is not read

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's interface name
        if self._refusal is not None:
            self._refusal.lost()


class EdgeProtocol(ProtocolWrapper):
    """One connection at the edge; the transport of the TLS or HTTP protocol it wraps."""

    factory: EdgeFactory

    def __init__(self, factory: EdgeFactory, wrapped: Any) -> None:
        super().__init__(factory, wrapped)  # type: ignore[arg-type]
        self._started = False
        self._buffer = b""
        self._timer: Any = None
        self._client: Any = None
        self._refusal: _Refusal | None = None

    @property
    def listener(self) -> str:
        return self.factory.listener

    def makeConnection(self, transport: Any) -> None:  # noqa: N802 - Twisted's interface name
        # ProtocolWrapper's would connect the wrapped protocol at once; with the PROXY
        # protocol that waits until the header has said who the client is.
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's interface name
        f = self.factory
        peer = self._transport().getPeer()
        if f.proxy_protocol:
            host = normalize(getattr(peer, "host", ""))
            if host is None or host not in f.limits.trusted:
                self._refuse("proxy_untrusted", answer=False)
                return
            self._timer = f.clock.callLater(f.limits.header_timeout, self._header_timeout)
            return
        self._open(peer)

    def _header_timeout(self) -> None:
        self._timer = None
        self.factory.limits.report("closed", self.listener, "header_timeout")
        self._transport().abortConnection()

    def _open(self, client: Any) -> None:
        """The client is known: count it under its address and start the wrapped protocol."""
        f = self.factory
        self._client = client
        # A trusted proxy's connection is counted by the client its requests name.
        key = connection_key(str(getattr(client, "host", "")), f.limits.trusted)
        if not f.counts.claim(self, key):
            self._refuse("max_connections_per_ip", answer=f.answer_busy)
            return
        self._started = True
        f.registerProtocol(self)
        wrapped: Any = self.wrappedProtocol
        wrapped.makeConnection(self)

    def claim(self, host: str) -> bool:
        """Count this connection under ``host`` (the address a trusted proxy's request names);
        False when that address is at its cap."""
        return self.factory.counts.claim(self, limit_key(host))

    def _refuse(self, reason: str, *, answer: bool) -> None:
        f = self.factory
        f.limits.report("refused", self.listener, reason)
        log.debug("refused a connection on {listener} from {peer}: {reason}", listener=self.listener,
                  peer=str(getattr(self.getPeer(), "host", "?")), reason=reason)
        self._refusal = _Refusal(self._transport(), f.counts, f.clock)
        self._refusal.answer(f.limits.retry_after if answer else None)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        wrapped: Any = self.wrappedProtocol
        if self._started:
            wrapped.dataReceived(data)
            return
        if self._refusal is not None or not self.factory.proxy_protocol:
            return  # refused: drained
        self._buffer += data
        try:
            header = parse_proxy_header(self._buffer)
        except ProxyHeaderError as exc:
            self._cancel_timer()
            log.debug("PROXY header refused on {listener}: {error}", listener=self.listener, error=str(exc))
            self._refuse("proxy_invalid", answer=False)
            return
        if header is None:
            return
        self._cancel_timer()
        rest, self._buffer = self._buffer[header.length:], b""
        client: Any = self._transport().getPeer()
        if header.source is not None:
            host, port = header.source
            client = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        self._open(client)
        if self._started and rest:
            wrapped.dataReceived(rest)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _transport(self) -> Any:
        return self.transport

    def getPeer(self) -> IAddress:  # noqa: N802 - Twisted's interface name
        return self._client if self._client is not None else self._transport().getPeer()

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's interface name
        self._cancel_timer()
        if self._refusal is not None:
            self._refusal.lost()
        counts = self.factory.counts
        counts.release(self)
        counts.leave()
        if self._started:
            super().connectionLost(reason)
        else:
            self.wrappedProtocol = None  # type: ignore[assignment]


class EdgeFactory(WrappingFactory):
    """Wraps a listener's factory (a Site, or the TLS factory around it).

    ``listener`` names it in metrics ("cwmp", "https", "api"); ``counts`` is shared by the
    listeners of one group (the CWMP listeners, the API); ``answer_busy`` is True where the
    wrapped protocol is plain HTTP (a 503 can be written), False for TLS;
    ``proxy_protocol`` requires a PROXY header from a trusted proxy on every connection."""

    protocol = EdgeProtocol
    noisy = False

    def __init__(self, wrapped: Any, *, listener: str, limits: EdgeLimits, counts: ConnectionCounts,
                 clock: Any, answer_busy: bool, proxy_protocol: bool = False) -> None:
        super().__init__(wrapped)
        self.listener = listener
        self.limits = limits
        self.counts = counts
        self.clock = clock
        self.answer_busy = answer_busy
        self.proxy_protocol = proxy_protocol

    def buildProtocol(self, addr: IAddress | None) -> Any:  # noqa: N802 - Twisted's interface name
        if not self.counts.admit():
            self.limits.report("refused", self.listener, "max_connections")
            return _Refused(self)
        return self.protocol(self, self.wrappedFactory.buildProtocol(addr))


def edge_of(transport: Any) -> EdgeProtocol | None:
    """The EdgeProtocol beneath an HTTP channel's transport (directly, or under TLS)."""
    for _ in range(3):
        if transport is None:
            return None
        if isinstance(transport, EdgeProtocol):
            return transport
        transport = transport.__dict__.get("transport") if hasattr(transport, "__dict__") else None
    return None
