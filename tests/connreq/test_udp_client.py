"""UdpConnectionRequester with a fake datagram transport and a task.Clock."""

from __future__ import annotations

from typing import Any, cast

import pytest
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.logger import ILogObserver, LogEvent, Logger, formatEvent

from acs_security.connreq.udp import (
    UdpAddressError,
    UdpRejectReason,
    UdpRequestVerifier,
    build_udp_connection_request,
)
from acs_security.connreq.udp_client import UdpConnectionRequester, UdpSendResult

NOW = 1_700_000_000.0
USER, PASSWORD = "acs-user", "udp-secret-42"


def setup(**kwargs: Any) -> tuple[UdpConnectionRequester, FakeDatagramTransport, Clock]:
    clock = Clock()
    clock.advance(NOW)
    transport = FakeDatagramTransport()
    requester = UdpConnectionRequester(
        transport, clock, first_id=4_294_967_295, nonce_source=lambda n: b"\xab" * n, **kwargs
    )
    return requester, transport, clock


def test_copies_spaced_on_the_clock_and_identical() -> None:
    requester, transport, clock = setup(repeat=3, interval=0.5)
    out: list[Any] = []
    requester.send("198.51.100.7:40001", USER, PASSWORD).addBoth(out.append)
    assert len(transport.written) == 1 and out == []
    clock.advance(0.49)
    assert len(transport.written) == 1
    clock.advance(0.01)
    assert len(transport.written) == 2
    clock.advance(0.5)
    assert len(transport.written) == 3
    assert out == [UdpSendResult("198.51.100.7:40001", 4_294_967_295, 3)]
    expected = build_udp_connection_request(
        "198.51.100.7:40001", username=USER, password=PASSWORD, ts=int(NOW),
        request_id=4_294_967_295, cnonce="ab" * 8,
    )
    assert transport.written == [(expected, ("198.51.100.7", 40001))] * 3


def test_phone_acts_on_the_first_copy_only() -> None:
    requester, transport, clock = setup()
    requester.send("198.51.100.7:40001", USER, PASSWORD)
    clock.advance(10)
    verifier = UdpRequestVerifier(USER, PASSWORD)
    verdicts = [verifier.verify(packet, clock.seconds()) for packet, _ in transport.written]
    assert [v.ok for v in verdicts] == [True, False, False]
    assert {v.reason for v in verdicts[1:]} == {UdpRejectReason.REPLAYED_ID}


def test_each_request_gets_a_new_id_wrapping_at_32_bits() -> None:
    requester, transport, clock = setup(repeat=1)
    results: list[UdpSendResult] = []
    for _ in range(3):
        requester.send("[2001:db8::5]:7547", USER, PASSWORD).addCallback(results.append)
    assert [r.request_id for r in results] == [4_294_967_295, 0, 1]
    assert transport.written[0][1] == ("2001:db8::5", 7547)
    verifier = UdpRequestVerifier(USER, PASSWORD)
    assert all(verifier.verify(packet, NOW).ok for packet, _ in transport.written)


def test_host_names_and_bad_addresses_are_refused_before_sending() -> None:
    requester, transport, _ = setup()
    with pytest.raises(UdpAddressError, match="needs an IP address"):
        requester.send("cpe.example.net:7547", USER, PASSWORD)
    with pytest.raises(UdpAddressError, match="brackets"):
        requester.send("2001:db8::5:7547", USER, PASSWORD)
    assert transport.written == []


class BrokenTransport:
    def __init__(self, fail_on: int) -> None:
        self.fail_on = fail_on
        self.count = 0

    def write(self, packet: bytes, addr: Any = None) -> None:
        self.count += 1
        if self.count >= self.fail_on:
            raise OSError(101, "Network is unreachable")


def test_write_failure_ends_the_request_with_an_error() -> None:
    clock = Clock()
    transport = BrokenTransport(fail_on=2)
    requester = UdpConnectionRequester(transport, clock, first_id=1, nonce_source=lambda n: b"\0" * n)
    out: list[UdpSendResult] = []
    requester.send("192.0.2.1:7547", USER, PASSWORD).addCallback(out.append)
    clock.advance(10)
    assert out == [UdpSendResult("192.0.2.1:7547", 1, 1, "OSError")]
    assert not out[0].ok and transport.count == 2 and clock.getDelayedCalls() == []


def test_cancel_stops_remaining_copies() -> None:
    requester, transport, clock = setup()
    d = requester.send("192.0.2.1:7547", USER, PASSWORD)
    errors: list[Any] = []
    d.addErrback(lambda f: errors.append(f.type))
    d.cancel()
    clock.advance(10)
    assert len(transport.written) == 1 and errors == [CancelledError]


def test_password_not_logged() -> None:
    events: list[LogEvent] = []
    requester, _, clock = setup(log=Logger(observer=cast(ILogObserver, events.append)))
    requester.send("192.0.2.1:7547", USER, PASSWORD)
    clock.advance(10)
    assert len(events) == 1
    assert PASSWORD not in formatEvent(events[0]) and PASSWORD not in repr(events[0])
    assert "192.0.2.1:7547" in formatEvent(events[0])


def test_constructor_refusals() -> None:
    clock = Clock()
    for kwargs, message in (({"repeat": 0}, "repeat"), ({"interval": -1.0}, "interval"),
                            ({"first_id": 2**32}, "first_id")):
        args: dict[str, Any] = {"first_id": 1, "nonce_source": lambda n: b"\0" * n}
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            UdpConnectionRequester(FakeDatagramTransport(), clock, **args)
