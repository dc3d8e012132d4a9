"""The STUN server with logins (MESSAGE-INTEGRITY checked with the phone's
connection-request password), batched binding writes to a real store (SQLite in memory),
and UDP connection requests from the server's own socket: fake transports and a fake
clock, no sockets."""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport

from acs_security.connreq.stun import (
    BINDING_RESPONSE,
    binding_request,
    decode_message,
    encode_message,
    new_transaction_id,
    verify_integrity,
)
from acs_security.connreq.stun_server import MISSING, LoginCache, StunServerProtocol
from acs_security.connreq.stun_service import RateLimitedUdpRequester, StunService
from acs_security.connreq.udp import UdpRequestVerifier
from acs_security.connreq.udp_client import UdpSendResult
from acs_security.store import open_store
from acs_security.store.records import make_device_id
from tests.store.conftest import CISCO_OUI, inform

DEV = make_device_id(CISCO_OUI, "CP-8851-3PCC", "NAT1")
PHONE = ("198.51.100.7", 40001)


class SyncStore:
    """A store whose calls answer at once (what DeferredStore does on a thread)."""

    def __init__(self) -> None:
        self.store = open_store("sqlite://")
        self.calls: list[str] = []

    def call(self, method: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.calls.append(method)
        return succeed(getattr(self.store, method)(*args, **kwargs))


def _world() -> tuple[Clock, SyncStore, StunService, FakeDatagramTransport, list[tuple[str, str, float]]]:
    clock = Clock()
    clock.advance(1_800_000_000)
    store = SyncStore()
    store.store.record_informs([inform("NAT1", product_class="CP-8851-3PCC")])
    store.store.put_connection_request_credential(DEV, "cr-nat1", "s3cret")
    noted: list[tuple[str, str, float]] = []
    counter = iter(range(1_000_000))
    service = StunService(clock, store, random_bytes=lambda n: next(counter).to_bytes(n, "big"), node="n1",
                          on_device_binding=lambda *a: noted.append(a), flush_interval=1.0, max_batch=100)
    transport = FakeDatagramTransport()
    service.protocol.makeConnection(transport)
    service.start_writing()
    return clock, store, service, transport, noted


def _request(username: str, *, key: bytes | None = None, change: bool = False, n: int = 1) -> bytes:
    tid = new_transaction_id(n.to_bytes(12, "big"))
    return encode_message(binding_request(tid, username=username, binding_change=change),
                          integrity_key=key, fingerprint=True)


def test_integrity_request_waits_for_one_lookup_then_is_answered_with_integrity() -> None:
    clock, store, service, transport, noted = _world()
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret"), PHONE)
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret", n=2), PHONE)
    assert transport.written == []  # parked until the login is known
    clock.advance(0)
    assert store.calls.count("connection_request_logins") == 1  # one batch for both
    assert len(transport.written) == 2
    response = decode_message(transport.written[0][0])
    assert response.message_type == BINDING_RESPONSE
    assert response.xor_mapped_address == PHONE
    assert verify_integrity(response, b"s3cret")  # the phone can tell it is the ACS
    assert noted[0][:2] == (DEV, "198.51.100.7:40001")


def test_wrong_integrity_or_unknown_username_is_dropped_unanswered() -> None:
    clock, store, service, transport, noted = _world()
    service.protocol.datagramReceived(_request("cr-nat1", key=b"guess"), PHONE)
    service.protocol.datagramReceived(_request("nobody", key=b"s3cret"), PHONE)
    clock.advance(0)
    assert transport.written == [] and noted == []
    assert service.protocol.refused == {"bad_integrity": 1, "unknown_username": 1}
    clock.advance(1)
    assert "record_udp_bindings" not in store.calls


def test_classic_request_is_answered_at_once_and_batched_to_the_store() -> None:
    clock, store, service, transport, noted = _world()
    tid = b"\x07" * 16  # RFC 3489 client: no cookie, no integrity
    for port in (40001, 40001, 40003):
        service.protocol.datagramReceived(encode_message(binding_request(tid, username="cr-nat1")),
                                          ("198.51.100.7", port))
    assert len(transport.written) == 3
    assert decode_message(transport.written[0][0]).mapped_address == PHONE
    assert store.calls.count("record_udp_bindings") == 0
    clock.advance(1.0)  # the login is looked up meanwhile; the batch goes with the tick
    assert store.calls.count("record_udp_bindings") == 1
    (target,) = store.store.target_devices([DEV])
    assert target.udp_connection_request_address in ("198.51.100.7:40001", "198.51.100.7:40003")
    assert target.udp_seen == clock.seconds() - 1.0
    assert service.bindings_written == 2  # two addresses, the repeat merged
    assert {n[0] for n in noted} == {None, DEV}  # unknown when it came, known by the batch


def test_binding_change_moves_the_device_address() -> None:
    clock, store, service, transport, noted = _world()
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret"), PHONE)
    clock.advance(1.0)
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret", change=True, n=2), ("198.51.100.7", 40002))
    clock.advance(1.0)
    (target,) = store.store.target_devices([DEV])
    assert target.udp_connection_request_address == "198.51.100.7:40002"
    assert noted[-1][:2] == (DEV, "198.51.100.7:40002")


def test_malformed_datagrams_are_never_answered() -> None:
    _, _, service, transport, _ = _world()
    for junk in (b"", b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01\x00\x04" + b"\x00" * 16, bytes(range(40))):
        service.protocol.datagramReceived(junk, PHONE)
    damaged = bytearray(_request("cr-nat1"))
    damaged[-1] ^= 0xFF  # FINGERPRINT wrong
    service.protocol.datagramReceived(bytes(damaged), PHONE)
    assert transport.written == [] and service.protocol.dropped == 5


def test_integrity_without_logins_is_dropped() -> None:
    protocol = StunServerProtocol(lambda b: None)
    transport = FakeDatagramTransport()
    protocol.makeConnection(transport)
    protocol.datagramReceived(_request("cr-nat1", key=b"s3cret"), PHONE)
    assert transport.written == [] and protocol.refused == {"integrity_without_login": 1}


def test_login_cache_expires_and_looks_up_again() -> None:
    clock = Clock()
    lookups: list[list[str]] = []

    def lookup(names: list[str]) -> Deferred[dict[str, tuple[str, str]]]:
        lookups.append(names)
        return succeed({"a": ("D", "p")})

    cache = LoginCache(lookup, clock, ttl=10)
    cache.want("a")
    cache.want("b")
    clock.advance(0)
    assert lookups == [["a", "b"]]
    assert cache.get("a") == ("D", "p") and cache.get("b") is None
    clock.advance(11)
    assert cache.get("a") is MISSING


def test_early_answer_keeps_sending_the_copies() -> None:
    from acs_security.connreq.udp_client import UdpConnectionRequester

    clock = Clock()
    clock.advance(1_800_000_000)
    transport = FakeDatagramTransport()
    requester = UdpConnectionRequester(transport, clock, first_id=9, nonce_source=lambda n: b"\x02" * n,
                                       repeat=3, interval=1.0, answer_at_first_copy=True)
    results: list[UdpSendResult] = []
    requester.send("198.51.100.7:40001", "cr", "pw").addCallback(results.append)
    assert len(results) == 1 and results[0].ok and results[0].copies_sent == 1 and len(transport.written) == 1
    clock.advance(2.0)
    assert len(transport.written) == 3 and len({raw for raw, _ in transport.written}) == 1


def test_udp_request_leaves_from_the_stun_socket_and_is_rate_limited() -> None:
    clock = Clock()
    clock.advance(1_800_000_000)
    transport = FakeDatagramTransport()
    from acs_security.connreq.udp_client import UdpConnectionRequester

    inner = UdpConnectionRequester(transport, clock, first_id=5, nonce_source=lambda n: b"\x01" * n,
                                   repeat=3, interval=1.0)
    limited = RateLimitedUdpRequester(inner, clock, min_interval=2.0)
    results: list[UdpSendResult] = []
    limited.send("198.51.100.7:40001", "cr-nat1", "s3cret").addCallback(results.append)
    limited.send("198.51.100.7:40001", "cr-nat1", "s3cret").addCallback(results.append)
    clock.advance(2.0)
    assert results[0].error and "rate-limited" in results[0].error
    assert results[1].ok and results[1].copies_sent == 3
    # Annex G: three copies of one request; the phone acts on the first and drops the rest.
    verifier = UdpRequestVerifier("cr-nat1", "s3cret")
    verdicts = [verifier.verify(raw, clock.seconds()) for raw, _ in transport.written]
    assert [v.ok for v in verdicts] == [True, False, False]
    assert {addr for _, addr in transport.written} == {("198.51.100.7", 40001)}
    limited.send("198.51.100.7:40001", "cr-nat1", "s3cret").addCallback(results.append)
    clock.advance(2.0)
    assert results[2].ok


class _FakePort(FakeDatagramTransport):
    def getHost(self) -> Any:  # noqa: N802 - Twisted's name
        from twisted.internet.address import IPv4Address

        return IPv4Address("UDP", "127.0.0.1", 3478)

    def stopListening(self) -> None:  # noqa: N802 - Twisted's name
        return None


class _NoUdp:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.bound: list[tuple[int, str]] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "") -> Any:  # noqa: N802 - Twisted's name
        if self.error is not None:
            raise self.error
        self.bound.append((port, interface))
        transport = _FakePort()
        protocol.makeConnection(transport)
        return transport

    def seconds(self) -> float:
        return 0.0

    def callLater(self, *a: Any, **kw: Any) -> Any:  # noqa: N802 - Twisted's name
        return Clock().callLater(*a, **kw)


def test_serve_skips_the_stun_server_with_a_clear_line_when_the_port_is_taken() -> None:
    from twisted.internet.error import CannotListenError
    from twisted.logger import ILogObserver, globalLogPublisher

    from acs_security.server.config import ServerConfig, parse_endpoint
    from acs_security.server.stun import start_stun

    lines: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        from twisted.logger import formatEvent

        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    try:
        config = ServerConfig(stun_listen=parse_endpoint("127.0.0.1:3478", setting="stun_listen"))
        taken = _NoUdp(CannotListenError("127.0.0.1", 3478, OSError(98, "Address already in use")))
        assert start_stun(config, taken, SyncStore(), lambda n: b"\x00" * n) is None
        assert any("STUN server not started: cannot bind UDP 127.0.0.1:3478" in line
                   and "stun_listen = off" in line for line in lines), lines
        free = _NoUdp(None)
        service = start_stun(config, free, SyncStore(), lambda n: b"\x00" * n)
        assert service is not None and service.requester is not None and free.bound == [(3478, "127.0.0.1")]
        assert any("STUN server (TR-111) listening on UDP 127.0.0.1:3478" in line for line in lines)
        service.stop()
        assert start_stun(ServerConfig(stun_listen=None), free, SyncStore(), lambda n: b"\x00" * n) is None
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, observer))


def test_the_stun_server_is_exported_to_prometheus_without_usernames() -> None:
    from acs_security.server.metrics import AcsMetrics

    clock, store, service, transport, noted = _world()
    metrics = AcsMetrics()
    metrics.watch_stun(service)
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret"), PHONE)
    clock.advance(0)
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret", change=True, n=2), ("198.51.100.7", 40009))
    service.protocol.datagramReceived(_request("cr-nat1", key=b"guess", n=3), PHONE)
    service.protocol.datagramReceived(b"\x00\x01 not stun", PHONE)
    clock.advance(1.0)
    text = metrics.render().decode()
    assert 'acs_stun_requests_total{outcome="answered"} 2.0' in text
    assert 'acs_stun_requests_total{outcome="bad_integrity"} 1.0' in text
    assert 'acs_stun_requests_total{outcome="malformed"} 1.0' in text
    assert "acs_stun_binding_changes_total 1.0" in text
    assert "acs_stun_bindings_written_total 2.0" in text
    assert "acs_stun_write_failures_total 0.0" in text
    assert "cr-nat1" not in text and "198.51.100.7" not in text
    assert "acs_stun_receive_drops" not in text  # a fake transport: the kernel has no count to give
    service.kernel_drops = lambda: 344  # type: ignore[method-assign]
    assert "acs_stun_receive_drops_total 344.0" in metrics.render().decode()


def test_a_flush_during_a_write_waits_for_it_and_writes_what_came_since() -> None:
    clock, store, service, transport, noted = _world()
    held: list[Deferred[Any]] = []
    real_call = store.call

    def slow_call(method: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if method != "record_udp_bindings":
            return real_call(method, *args, **kwargs)
        d: Deferred[Any] = Deferred()
        held.append(d)
        d.addCallback(lambda _: getattr(store.store, method)(*args, **kwargs))
        return d

    store.call = slow_call  # type: ignore[method-assign]
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret"), PHONE)
    clock.advance(1.0)  # the tick's batch is being written
    assert len(held) == 1
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret", change=True, n=2), ("198.51.100.7", 40002))
    fired: list[object] = []
    service.flush().addCallback(fired.append)
    assert fired == [] and len(held) == 1  # waits for the batch in flight
    held[0].callback(None)
    assert fired == [] and len(held) == 2  # then writes the binding that came since
    held[1].callback(None)
    assert fired == [None]
    (target,) = store.store.target_devices([DEV])
    assert target.udp_connection_request_address == "198.51.100.7:40002"


def test_a_username_the_store_cannot_hold_does_not_spoil_the_phones_looked_up_with_it() -> None:
    """USERNAME comes off the wire: one with a NUL (which neither store backend takes) sent
    with a phone's request must not make the batch's look-up fail for the phone."""
    clock, store, service, transport, noted = _world()
    service.protocol.datagramReceived(_request("cr-\x00nat1", key=b"s3cret"), ("203.0.113.9", 5000))
    service.protocol.datagramReceived(_request("cr-nat1", key=b"s3cret", n=2), PHONE)
    clock.advance(0)
    assert [addr for _, addr in transport.written] == [PHONE]
    assert service.protocol.refused == {"unknown_username": 1}
