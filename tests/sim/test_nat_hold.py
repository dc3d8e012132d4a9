"""The simulated phone behind NAT reports a new UDP address in a VALUE CHANGE Inform, held
back by the NAT's notify_hold (the phone's own rate limit; TR-181 has no parameter for it)."""

from __future__ import annotations

import os

from twisted.internet.task import Clock

from acs_security.sim.nat import SimulatedNat
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
