"""The test/bench TCP balancer over loopback: round-robin, a dead backend skipped, big
payloads both ways with back-pressure, close and half-close relayed, stop drops everything."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from acs_security.sim.balancer import TcpBalancer
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e


# -- backends ------------------------------------------------------------------------------


@implementer(IHalfCloseableProtocol)
class Echo(Protocol):
    """Says its server's name, echoes what it reads, and closes after the client's FIN (so a
    reply can still follow a half-close)."""

    transport: ITCPTransport  # set before connectionMade (Protocol has it as ITransport | None)

    def connectionMade(self) -> None:  # noqa: N802
        self.factory.opened.append(self)
        self.received = 0
        self.lost: Deferred[Any] = Deferred()
        self.transport.write(self.factory.name + b"\n")

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += len(data)
        self.transport.write(data)

    def readConnectionLost(self) -> None:  # noqa: N802
        self.factory.half_closed += 1
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:  # noqa: N802
        pass

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.lost.callback(None)


class EchoFactory(Factory):
    protocol = Echo
    noisy = False

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.opened: list[Echo] = []
        self.half_closed = 0


class Flood(Protocol):
    """Sends ``size`` bytes as fast as the socket takes them, pausing when told to (the
    transport's producer protocol); records whether it was ever held back."""

    # Set before connectionMade: a TCP transport, which is also the IConsumer this registers
    # with (Protocol has it as ITransport | None).
    transport: Any

    def connectionMade(self) -> None:  # noqa: N802
        self.sent = 0
        self.paused = False
        self.digest = hashlib.sha256()
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:  # noqa: N802
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        while not self.paused and self.sent < self.factory.size:
            chunk = os.urandom(min(65536, self.factory.size - self.sent))
            self.digest.update(chunk)
            self.sent += len(chunk)
            self.transport.write(chunk)
        if self.sent >= self.factory.size:
            self.transport.unregisterProducer()
            self.transport.loseConnection()

    def stopProducing(self) -> None:  # noqa: N802
        self.paused = True


class FloodFactory(Factory):
    protocol = Flood
    noisy = False

    def __init__(self, size: int) -> None:
        self.size = size
        self.opened: list[Flood] = []

    def buildProtocol(self, addr: Any) -> Flood:  # noqa: N802
        p = super().buildProtocol(addr)
        assert isinstance(p, Flood)
        self.opened.append(p)
        return p


# -- client --------------------------------------------------------------------------------


@implementer(IHalfCloseableProtocol)
class Client(Protocol):
    """Collects what it reads; ``done`` fires with it when the connection is lost."""

    transport: ITCPTransport  # set before connectionMade (Protocol has it as ITransport | None)

    def __init__(self) -> None:
        self.data = bytearray()
        self.done: Deferred[bytes] = Deferred()
        self.eof = False

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.data += data

    def readConnectionLost(self) -> None:  # noqa: N802
        self.eof = True
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:  # noqa: N802
        pass

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.done.callback(bytes(self.data))


async def connect(reactor: Any, port: int, proto: Protocol | None = None) -> Any:
    return await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), proto or Client())


async def exchange(reactor: Any, port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, return everything read until the connection closed."""
    client = await connect(reactor, port)
    client.transport.write(payload)
    client.transport.loseWriteConnection()
    return await client.done


def listen(reactor: Any, factory: Factory) -> Any:
    return reactor.listenTCP(0, factory, interface="127.0.0.1")


def backend(port: Any) -> tuple[str, int]:
    return ("127.0.0.1", port.getHost().port)


async def stop_all(balancer: TcpBalancer, ports: list[Any]) -> None:
    await balancer.stop()
    for p in ports:
        await p.stopListening()


# -- tests ---------------------------------------------------------------------------------


def test_connections_alternate_between_backends():
    async def go(reactor):
        a, b = EchoFactory(b"A"), EchoFactory(b"B")
        pa, pb = listen(reactor, a), listen(reactor, b)
        balancer = TcpBalancer(reactor, [backend(pa), backend(pb)])
        port = balancer.listen().getHost().port
        try:
            replies = [await exchange(reactor, port, b"ping %d" % i) for i in range(4)]
            assert replies == [b"A\nping 0", b"B\nping 1", b"A\nping 2", b"B\nping 3"]
            assert balancer.counters == {
                backend(pa): {"connections": 2, "failures": 0, "open": 0},
                backend(pb): {"connections": 2, "failures": 0, "open": 0}}
            assert (a.half_closed, b.half_closed) == (2, 2)  # the client's FIN reached them
        finally:
            await stop_all(balancer, [pa, pb])

    run_in_reactor(go, timeout=30)


def test_a_stopped_backend_is_skipped_and_counted_then_retried_after_down_for():
    async def go(reactor):
        a = EchoFactory(b"A")
        pa = listen(reactor, a)
        gone = listen(reactor, EchoFactory(b"gone"))
        dead = backend(gone)
        await gone.stopListening()  # a port nobody listens on: connects are refused
        balancer = TcpBalancer(reactor, [dead, backend(pa)], down_for=0.5)
        port = balancer.listen().getHost().port
        try:
            # The first client's turn is the dead backend: refused, so the next one serves it.
            replies = [await exchange(reactor, port, b"x%d" % i) for i in range(3)]
            assert replies == [b"A\nx0", b"A\nx1", b"A\nx2"]
            counters = balancer.counters
            assert counters[dead] == {"connections": 0, "failures": 1, "open": 0}
            assert counters[backend(pa)]["connections"] == 3
            assert balancer.is_down(dead)
            await wait_until(reactor, lambda: not balancer.is_down(dead), timeout=5,
                             what="the dead backend's down time to pass")
            # Up again as far as the balancer knows: when its turn comes (the second of these
            # two connections) it is tried once more, refused again, and the live one serves.
            replies = [await exchange(reactor, port, b"y%d" % i) for i in range(2)]
            assert replies == [b"A\ny0", b"A\ny1"]
            assert balancer.counters[dead]["failures"] == 2
            assert balancer.refused == 0
        finally:
            await stop_all(balancer, [pa])

    run_in_reactor(go, timeout=30)


def test_client_is_closed_without_a_byte_when_no_backend_accepts():
    async def go(reactor):
        ports = [listen(reactor, EchoFactory(b"x")) for _ in range(2)]
        dead = [backend(p) for p in ports]
        for p in ports:
            await p.stopListening()
        balancer = TcpBalancer(reactor, dead)
        port = balancer.listen().getHost().port
        try:
            client = await connect(reactor, port)
            client.transport.write(b"anyone?")
            assert await client.done == b""
            assert balancer.refused == 1
            assert [balancer.counters[d]["failures"] for d in dead] == [1, 1]
            # Every backend marked down: they are still tried rather than refusing blindly.
            client = await connect(reactor, port)
            assert await client.done == b""
            assert balancer.refused == 2
            assert [balancer.counters[d]["failures"] for d in dead] == [2, 2]
        finally:
            await balancer.stop()

    run_in_reactor(go, timeout=30)


def test_several_megabytes_relay_intact_both_ways():
    async def go(reactor):
        a = EchoFactory(b"A")
        pa = listen(reactor, a)
        balancer = TcpBalancer(reactor, [backend(pa)])
        port = balancer.listen().getHost().port
        payload = os.urandom(8 * 2**20)
        try:
            reply = await exchange(reactor, port, payload)
            # Up: the backend read every byte; down: the echo came back intact behind its name.
            assert a.opened[0].received == len(payload)
            assert len(reply) == len(payload) + 2
            assert hashlib.sha256(reply[2:]).digest() == hashlib.sha256(payload).digest()
            assert reply[:2] == b"A\n"
        finally:
            await stop_all(balancer, [pa])

    run_in_reactor(go, timeout=60)


def test_a_client_that_does_not_read_holds_the_backend_back():
    size = 32 * 2**20  # the kernel's loopback buffers hold about 6 MB of it

    async def go(reactor):
        flood = FloodFactory(size)
        pf = listen(reactor, flood)
        balancer = TcpBalancer(reactor, [backend(pf)])
        port = balancer.listen().getHost().port
        try:
            client = await connect(reactor, port)
            client.transport.pauseProducing()  # read nothing for now
            await wait_until(reactor, lambda: bool(flood.opened), timeout=5, what="the backend")
            sender = flood.opened[0]
            # Wait until the sender stays held back (kernel buffers full, balancer paused).
            last = -1
            while sender.sent != last:
                last = sender.sent
                await sleep(reactor, 0.5)
            assert sender.paused and sender.sent < size, (
                f"the backend sent {sender.sent} of {size} bytes to a client reading nothing")
            client.transport.resumeProducing()
            data = await client.done
            assert len(data) == size
            assert hashlib.sha256(data).digest() == sender.digest.digest()
        finally:
            await stop_all(balancer, [pf])

    run_in_reactor(go, timeout=120)


def test_closing_either_side_closes_the_other():
    async def go(reactor):
        a = EchoFactory(b"A")
        pa = listen(reactor, a)
        balancer = TcpBalancer(reactor, [backend(pa)])
        port = balancer.listen().getHost().port
        try:
            # The client closes: the backend's connection goes too.
            client = await connect(reactor, port)
            await wait_until(reactor, lambda: client.data == b"A\n", timeout=5, what="backend 1")
            client.transport.loseConnection()
            await a.opened[0].lost
            assert await client.done == b"A\n"
            # The backend closes: the client sees its last bytes, then the close.
            client = await connect(reactor, port)
            await wait_until(reactor, lambda: len(a.opened) == 2, timeout=5, what="backend 2")
            a.opened[1].transport.write(b"bye")
            a.opened[1].transport.loseConnection()
            assert await client.done == b"A\nbye"
            assert client.eof  # relayed as a FIN, not a reset
            await wait_until(reactor, lambda: all(c["open"] == 0 for c in balancer.counters.values()),
                             timeout=5, what="the relays to close")
        finally:
            await stop_all(balancer, [pa])

    run_in_reactor(go, timeout=30)


def test_stop_drops_open_connections_and_stops_listening():
    async def go(reactor):
        a = EchoFactory(b"A")
        pa = listen(reactor, a)
        balancer = TcpBalancer(reactor, [backend(pa)])
        port = balancer.listen().getHost().port
        try:
            client = await connect(reactor, port)
            await wait_until(reactor, lambda: len(a.opened) == 1, timeout=5, what="the backend")
            await balancer.stop()
            await client.done
            await a.opened[0].lost
            with pytest.raises(Exception) as refused:
                await connect(reactor, port)
            assert "refused" in str(refused.value).lower()
        finally:
            await pa.stopListening()

    run_in_reactor(go, timeout=30)


# -- bad arguments (no sockets) ------------------------------------------------------------


@pytest.mark.parametrize("backends, message", [
    ([], "at least one"),
    ("127.0.0.1:80", "at least one"),
    ([("127.0.0.1", 0)], "port 1-65535"),
    ([("127.0.0.1", "80")], "port 1-65535"),
    ([("", 80)], "port 1-65535"),
    ([("127.0.0.1", 80), ("127.0.0.1", 80)], "duplicates"),
])
def test_bad_backends_are_refused_precisely(backends, message):
    with pytest.raises(ValueError, match=message):
        TcpBalancer(MemoryReactorClock(), backends)


def test_bad_timings_are_refused_and_listen_twice_is_an_error():
    with pytest.raises(ValueError, match="down_for"):
        TcpBalancer(MemoryReactorClock(), [("127.0.0.1", 80)], down_for=-1)
    with pytest.raises(ValueError, match="connect_timeout"):
        TcpBalancer(MemoryReactorClock(), [("127.0.0.1", 80)], connect_timeout=0)
    reactor = MemoryReactorClock()
    balancer = TcpBalancer(reactor, [("127.0.0.1", 80)])
    balancer.listen(0)
    assert reactor.tcpServers[0][0] == 0 and reactor.tcpServers[0][3] == "127.0.0.1"
    with pytest.raises(RuntimeError, match="already listening"):
        balancer.listen(0)
