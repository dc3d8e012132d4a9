"""Raw TCP clients for end-to-end tests of the listeners: exact bytes, a chosen source address
on loopback (127.0.0.2 ... stand for other hosts), slow and never-ending senders."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol

from tests.server.wire import Response, parse_responses


class RawClient(Protocol):
    """Writes what it is given and collects what comes back; ``closed`` fires when the
    connection ends (with the time it ended)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.data = b""
        self.requested: float | None = None  # when the connection was asked for
        self.opened: float | None = None  # when this side saw it made (later on a busy reactor)
        self.ended: float | None = None
        self.connected_d: Deferred[RawClient] = Deferred()
        self.closed: Deferred[float] = Deferred()
        self._waiting: list[tuple[int, Deferred[Response]]] = []

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's interface name
        self.opened = self.reactor.seconds()
        self.connected_d.callback(self)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        self.data += data
        responses = parse_responses(self.data)
        for count, d in list(self._waiting):
            if len(responses) >= count:
                self._waiting.remove((count, d))
                d.callback(responses[count - 1])

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's interface name
        self.ended = self.reactor.seconds()
        for _, d in self._waiting:
            d.errback(ConnectionError(f"closed after {self.data[:200]!r}"))
        self._waiting = []
        self.closed.callback(self.ended)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def response(self, number: int) -> Deferred[Response]:
        """The ``number``-th response on this connection (1-based), once it is complete."""
        d: Deferred[Response] = Deferred()
        responses = parse_responses(self.data)
        if len(responses) >= number:
            d.callback(responses[number - 1])
        else:
            self._waiting.append((number, d))
        return d

    def close(self) -> None:
        if self.transport is not None and self.ended is None:
            self.transport.loseConnection()


def connect(reactor: Any, port: int, *, source: str = "127.0.0.1", protocol: Any = None) -> Deferred[Any]:
    """Connect to 127.0.0.1:``port`` from ``source``; fires with the connected protocol."""
    client = protocol if protocol is not None else RawClient(reactor)
    factory = ClientFactory.forProtocol(lambda: client)  # type: ignore[arg-type]
    factory.noisy = False
    client.requested = reactor.seconds()
    reactor.connectTCP("127.0.0.1", port, factory, bindAddress=(source, 0))
    return client.connected_d


def http_post(body: bytes, *, headers: dict[str, str] | None = None, path: str = "/cwmp") -> bytes:
    hdrs = {"Host": "acs.example.net", "Content-Type": "text/xml", "Content-Length": str(len(body))}
    hdrs.update(headers or {})
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + body


class Dripper(RawClient):
    """Sends ``first``, then ``drip`` every ``interval`` seconds, and never finishes."""

    def __init__(self, reactor: Any, first: bytes, drip: bytes, interval: float) -> None:
        super().__init__(reactor)
        self._first, self._drip, self._interval = first, drip, interval
        self._call: Any = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's interface name
        super().connectionMade()
        self.send(self._first)
        self._call = self.reactor.callLater(self._interval, self._tick)

    def _tick(self) -> None:
        self._call = None
        if self.ended is None and self.transport is not None:
            self.send(self._drip)
            self._call = self.reactor.callLater(self._interval, self._tick)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted's interface name
        if self._call is not None and self._call.active():
            self._call.cancel()
        super().connectionLost(reason)


class Attack:
    """Keeps ``count`` Drippers connected: each one the server closes is replaced, until
    :meth:`stop`. ``finished`` lists the closed ones (their opened/ended times)."""

    def __init__(self, reactor: Any, port: int, count: int, first: bytes, drip: bytes, interval: float) -> None:
        self.reactor, self.port, self.count = reactor, port, count
        self.first, self.drip, self.interval = first, drip, interval
        self.live: set[Dripper] = set()
        self.finished: list[Dripper] = []
        self.running = True

    def start(self) -> None:
        for _ in range(self.count):
            self._open()

    def _open(self) -> None:
        client = Dripper(self.reactor, self.first, self.drip, self.interval)
        self.live.add(client)
        client.closed.addCallback(lambda _: self._ended(client))
        connect(self.reactor, self.port, protocol=client)

    def _ended(self, client: Dripper) -> None:
        self.live.discard(client)
        self.finished.append(client)
        if self.running:
            self._open()

    def stop(self) -> None:
        """No more reconnections (the open ones are left for the server to close)."""
        self.running = False
