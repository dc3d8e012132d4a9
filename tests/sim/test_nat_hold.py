"""The simulated phone behind NAT reports a new UDP address in a VALUE CHANGE Inform, held
back by the NAT's notify_hold (the phone's own rate limit; TR-181 has no parameter for it),
and keeps its own keep-alive phase when the NAT's tick runs late."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

from acs_security.sim.nat import NAT_VALUES, SimulatedNat
from acs_security.sim.phone import Phone
from tests.sim.helpers import environment, make_phone


def _nat(clock: Clock, changed: list[Phone]) -> SimulatedNat:
    return SimulatedNat(clock, stun_server=None, keepalive=30.0, deliver=lambda phone, data: None,
                        changed=changed.append, random_bytes=os.urandom)


def test_without_a_hold_every_new_address_is_reported_at_once():
    clock, changed = Clock(), []
    nat = _nat(clock, changed)
    phone = make_phone(env=environment())
    nat.notify_address(phone)
    nat.notify_address(phone)
    assert changed == [phone, phone]
    assert nat.stats["notifications_held"] == 0


def test_a_second_address_within_the_hold_waits_for_its_end_and_is_reported_once():
    clock, changed = Clock(), []
    nat = _nat(clock, changed)
    nat.notify_hold = 600
    phone = make_phone(env=environment())
    nat.notify_address(phone)
    clock.advance(100)
    nat.notify_address(phone)
    nat.notify_address(phone)  # a third change while one is held back: still one report
    assert changed == [phone]
    assert nat.stats["notifications_held"] == 1
    clock.advance(499)
    assert changed == [phone]
    clock.advance(1)
    assert changed == [phone, phone]
    assert ("4 VALUE CHANGE", "") in (phone.events or [])


class _UdpPort:
    """A bound UDP port of the fake reactor below: what is written is recorded."""

    def __init__(self, protocol: Any, number: int, sent: list[tuple[float, Any]], clock: Clock) -> None:
        self._number, self._sent, self._clock = number, sent, clock
        protocol.makeConnection(self)

    def write(self, data: bytes, addr: Any) -> None:
        self._sent.append((self._clock.seconds(), addr))

    def getHost(self) -> Any:  # noqa: N802 - Twisted's interface name
        return IPv4Address("UDP", "127.0.0.1", self._number)

    def stopListening(self) -> None:  # noqa: N802 - Twisted's interface name
        return None


class _UdpClock(Clock):
    """A Clock that can bind UDP ports (MemoryReactorClock has no listenUDP)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, Any]] = []
        self._next_port = 40000

    def listenUDP(self, port: int, protocol: Any, interface: str = "") -> _UdpPort:  # noqa: N802
        self._next_port += 1
        return _UdpPort(protocol, self._next_port, self.sent, self)


def _burst_sizes(clock: _UdpClock, start: float, end: float) -> list[int]:
    ticks = Counter(at for at, _ in clock.sent if start <= at < end)
    return sorted(ticks.values(), reverse=True)


def test_a_late_tick_does_not_keep_the_phones_in_one_burst():
    """300 phones booted over 2 s send every 5 s in four bursts of ~75. The reactor then
    stalls for 7 s: the first tick after it sends every overdue phone at once, and the
    next rounds are spread again (each phone keeps its own phase). Scheduled from that
    tick, all 300 would stay in one burst, larger than a STUN server's default socket
    buffer holds (256 small datagrams on Linux), losing the same phones every time."""
    clock = _UdpClock()
    nat = SimulatedNat(clock, stun_server=("127.0.0.1", 3478), keepalive=5.0, deliver=lambda phone, data: None,
                       changed=lambda phone: None, random_bytes=os.urandom)
    env = environment()
    for i in range(300):
        phone = make_phone(serial=f"SIM{i:08d}", env=env)
        phone.store(NAT_VALUES(i, phone.serial, 5))
        nat.add(phone, first_binding=2.0 * i / 300)
    nat.start()
    for _ in range(40):  # 20 s of ticks
        clock.advance(0.5)
    assert max(_burst_sizes(clock, 5.0, 20.0)) <= 80
    clock.advance(7.0)  # a stalled reactor: one tick, late
    stalled = clock.seconds()
    assert _burst_sizes(clock, stalled, stalled + 0.1) == [300]
    for _ in range(40):
        clock.advance(0.5)
    after = _burst_sizes(clock, stalled + 0.1, clock.seconds())
    assert sum(after) >= 300 * 3  # every phone keeps sending: 20 s at one per 5 s
    assert max(after) <= 80, after
    nat.stop()
