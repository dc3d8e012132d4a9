"""A small TCP load balancer in front of several ACS nodes, for tests and the benchmark.

In production the phones reach the nodes through HAProxy (deploy/); on a test machine there
is none, so this stands in for it: a plain TCP proxy that hands each accepted connection to
the next backend, round-robin. A CWMP session is one TCP connection from the phone's side
(the simulator keeps one persistent connection per session), so balancing connections keeps a
session on one node, as HAProxy's ``mode tcp`` / ``balance roundrobin`` does.

* A backend whose connect fails (refused, unreachable, timed out) is marked down for
  ``down_for`` seconds and skipped meanwhile; the client's connection goes to the next
  backend instead. When every backend is marked down they are all tried anyway, so that a
  brief outage of the whole cluster does not refuse clients for ``down_for`` seconds after it.
  A client whose connection no backend accepts is closed without a byte.
* Nothing is read from the client until a backend accepted (its bytes go nowhere else);
  then bytes are relayed unchanged both ways with back-pressure: each socket is the other's
  streaming producer, so a full send buffer on one side pauses reading on the other
  (``registerProducer``, as in ``twisted.protocols.portforward``).
* Half-close is relayed (a FIN from one side shuts the other side's write half); when both
  directions have ended, or either socket is lost, both are closed.
* Counters per backend (connections accepted, connect failures, relays open) are in
  :attr:`TcpBalancer.counters`.

The reactor is the one given; the global reactor is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IHalfCloseableProtocol, IListeningPort
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["TcpBalancer", "Backend"]

Backend = tuple[str, int]


def _check_backend(backend: Any) -> Backend:
    if (not isinstance(backend, tuple) or len(backend) != 2 or not isinstance(backend[0], str)
            or not backend[0] or isinstance(backend[1], bool) or not isinstance(backend[1], int)
            or not 0 < backend[1] < 65536):
        raise ValueError(f"backend {backend!r} is not a (host, port) pair with port 1-65535")
    return backend


@implementer(IHalfCloseableProtocol)
class _Side(Protocol):
    """One socket of a relay; ``peer`` is the other socket's protocol once both exist."""

    def __init__(self, balancer: TcpBalancer) -> None:
        self.balancer = balancer
        self.peer: _Side | None = None
        self.read_closed = False
        self.lost = False

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.write(data)  # type: ignore[union-attr]

    def readConnectionLost(self) -> None:  # noqa: N802
        # The other end sent FIN. Reading stays stopped from here on: this socket is no longer
        # the peer's producer (a paused producer would otherwise be resumed by the peer's
        # drained buffer and read the EOF again), and the peer's write half is shut down once
        # its buffer is flushed.
        if self.read_closed:
            return
        self.read_closed = True
        peer = self.peer
        if peer is None or peer.lost:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        peer.transport.unregisterProducer()  # type: ignore[union-attr]
        peer.transport.loseWriteConnection()  # type: ignore[union-attr]
        if peer.read_closed:
            # Both directions have ended: nothing more can flow either way.
            self.transport.loseConnection()  # type: ignore[union-attr]
            peer.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:  # noqa: N802
        pass  # our FIN went out after the buffered bytes; the read half decides the rest

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]  # noqa: N802
        self.lost = True
        peer = self.peer
        if peer is not None and not peer.lost:
            # Flush what the peer has buffered, then close it; unregistering first because a
            # transport with a paused producer registered never closes (FileDescriptor docs).
            peer.transport.unregisterProducer()  # type: ignore[union-attr]
            peer.transport.loseConnection()  # type: ignore[union-attr]
        self.balancer._side_lost(self)


class _ClientSide(_Side):
    """The socket a client opened to the balancer."""

    def __init__(self, balancer: TcpBalancer) -> None:
        super().__init__(balancer)
        self.candidates: list[Backend] = []
        self.connector: Any = None
        self.backend: Backend | None = None

    def connectionMade(self) -> None:  # noqa: N802
        # Read nothing until a backend accepted: there is nowhere to put the bytes yet.
        self.transport.pauseProducing()  # type: ignore[union-attr]
        self.balancer._accepted(self)


class _BackendSide(_Side):
    """The socket the balancer opened to a backend for one client."""

    def __init__(self, balancer: TcpBalancer, client: _ClientSide, backend: Backend) -> None:
        super().__init__(balancer)
        self.client = client
        self.backend = backend

    def connectionMade(self) -> None:  # noqa: N802
        self.balancer._connected(self.client, self)


class _BackendFactory(ClientFactory):
    noisy = False

    def __init__(self, balancer: TcpBalancer, client: _ClientSide, backend: Backend) -> None:
        self.balancer = balancer
        self.client = client
        self.backend = backend

    def buildProtocol(self, addr: Any) -> _BackendSide:  # noqa: N802
        return _BackendSide(self.balancer, self.client, self.backend)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:  # noqa: N802
        self.balancer._connect_failed(self.client, self.backend, reason)


class _ListenFactory(Factory):
    noisy = False

    def __init__(self, balancer: TcpBalancer) -> None:
        self.balancer = balancer

    def buildProtocol(self, addr: Any) -> _ClientSide:  # noqa: N802
        return _ClientSide(self.balancer)


class TcpBalancer:
    """Round-robin TCP proxy from one listening port to ``backends`` (see the module doc).

    ``down_for``: seconds a backend whose connect failed is skipped; ``connect_timeout``:
    seconds a connect to a backend may take before it counts as failed.
    """

    def __init__(self, reactor: Any, backends: Sequence[Backend], *, down_for: float = 5.0,
                 connect_timeout: float = 5.0) -> None:
        if isinstance(backends, (str, bytes)) or not backends:
            raise ValueError("backends: at least one (host, port) pair is needed")
        checked = [_check_backend(b) for b in backends]
        if len(set(checked)) != len(checked):
            raise ValueError(f"backends: duplicates in {checked!r}")
        for name, value in (("down_for", down_for), ("connect_timeout", connect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        if connect_timeout == 0:
            raise ValueError("connect_timeout must be > 0")
        self._reactor = reactor
        self.backends: tuple[Backend, ...] = tuple(checked)
        self.down_for = float(down_for)
        self.connect_timeout = float(connect_timeout)
        self._next = 0
        self._down_until: dict[Backend, float] = {}
        self._counters: dict[Backend, dict[str, int]] = {
            b: {"connections": 0, "failures": 0, "open": 0} for b in self.backends}
        #: Clients closed because no backend accepted their connection.
        self.refused = 0
        self._port: IListeningPort | None = None
        self._sides: set[_Side] = set()
        self._pending: set[_ClientSide] = set()
        self._stopping = False
        self._drained: Deferred[None] | None = None

    # -- public ----------------------------------------------------------------------------

    @property
    def counters(self) -> dict[Backend, dict[str, int]]:
        """Per backend: ``connections`` (connects it accepted), ``failures`` (connects that
        failed), ``open`` (relays through it now). A copy."""
        return {b: dict(c) for b, c in self._counters.items()}

    def is_down(self, backend: Backend) -> bool:
        """Whether ``backend`` is being skipped after a failed connect."""
        return self._down_until.get(backend, float("-inf")) > self._reactor.seconds()

    def listen(self, port: int = 0, interface: str = "127.0.0.1") -> IListeningPort:
        """Start accepting on ``interface:port`` (0: a port the OS picks); returns the port
        (``.getHost().port`` is the one picked)."""
        if self._port is not None:
            raise RuntimeError("the balancer is already listening")
        if self._stopping:
            raise RuntimeError("the balancer was stopped")
        self._port = self._reactor.listenTCP(port, _ListenFactory(self), interface=interface)
        return self._port

    def stop(self) -> Deferred[None]:
        """Stop listening and drop every open and pending connection (no flush: this is the
        balancer going away). Fires once every socket is closed."""
        self._stopping = True
        waits: list[Deferred[Any]] = []
        if self._port is not None:
            d = self._port.stopListening()
            if d is not None:
                waits.append(d)
        for client in list(self._pending):
            if client.connector is not None:
                client.connector.stopConnecting()
        if self._sides:
            self._drained = Deferred()
            waits.append(self._drained)
            for side in list(self._sides):
                if not side.lost and side.transport is not None:
                    side.transport.abortConnection()  # type: ignore[attr-defined]
        done: Deferred[None] = Deferred()
        DeferredList(waits, consumeErrors=True).addCallback(lambda _: done.callback(None))
        return done

    # -- routing ---------------------------------------------------------------------------

    def _order(self) -> list[Backend]:
        """The backends to try for a new client: from the round-robin position on, the ones
        not marked down (all of them when every one is down)."""
        n = len(self.backends)
        start = self._next
        self._next = (start + 1) % n
        ring = [self.backends[(start + i) % n] for i in range(n)]
        up = [b for b in ring if not self.is_down(b)]
        return up or ring

    def _accepted(self, client: _ClientSide) -> None:
        self._sides.add(client)
        if self._stopping:
            client.transport.abortConnection()  # type: ignore[union-attr]
            return
        client.candidates = self._order()
        self._pending.add(client)
        self._try_next(client)

    def _try_next(self, client: _ClientSide) -> None:
        if client.lost or self._stopping:
            self._pending.discard(client)
            return
        if not client.candidates:
            self._pending.discard(client)
            self.refused += 1
            client.transport.loseConnection()  # type: ignore[union-attr]
            return
        backend = client.candidates.pop(0)
        host, port = backend
        client.connector = self._reactor.connectTCP(
            host, port, _BackendFactory(self, client, backend), timeout=self.connect_timeout)

    def _connect_failed(self, client: _ClientSide, backend: Backend, reason: Failure) -> None:
        client.connector = None
        if self._stopping or client.lost:
            self._pending.discard(client)
            return  # stopConnecting() of ours (stop, client gone): not the backend's fault
        self._counters[backend]["failures"] += 1
        self._down_until[backend] = self._reactor.seconds() + self.down_for
        self._try_next(client)

    def _connected(self, client: _ClientSide, side: _BackendSide) -> None:
        client.connector = None
        self._pending.discard(client)
        self._sides.add(side)
        backend = side.backend
        self._down_until.pop(backend, None)
        self._counters[backend]["connections"] += 1
        if client.lost or self._stopping:
            side.transport.abortConnection()  # type: ignore[union-attr]
            return
        self._counters[backend]["open"] += 1
        client.backend = backend
        client.peer, side.peer = side, client
        # Each socket produces for the other: a full send buffer pauses the other's reading.
        side.transport.registerProducer(client.transport, True)  # type: ignore[union-attr]
        client.transport.registerProducer(side.transport, True)  # type: ignore[union-attr]
        client.transport.resumeProducing()  # type: ignore[union-attr]

    def _side_lost(self, side: _Side) -> None:
        if isinstance(side, _ClientSide):
            self._pending.discard(side)
            if side.connector is not None:
                side.connector.stopConnecting()
            if side.backend is not None:
                self._counters[side.backend]["open"] -= 1
        self._sides.discard(side)
        if not self._sides and self._drained is not None:
            drained, self._drained = self._drained, None
            drained.callback(None)
