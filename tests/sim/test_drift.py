"""Simulated drift: web-page changes reported as VALUE CHANGE when notification is active,
factory resets that come back with BOOTSTRAP and defaults (fake clock, in-memory ACS)."""

from __future__ import annotations

import random

from acs_security.sim.drift import DriftInjector, factory_reset, web_page_change
from tests.sim.helpers import CATALOGUE, make_phone
from tests.sim.test_fleet_clock import make, run

FIREWALL = "Device.X_CISCO_SecuritySettings.Firewall"


def test_a_person_changes_a_watched_setting_back_to_its_factory_value_or_another_one():
    phone = make_phone()
    default = phone.table.params[FIREWALL].default
    other = "Disabled" if default == "Enabled" else "Enabled"
    phone.store({FIREWALL: other})
    phone.set_attribute(FIREWALL, 2, None)
    path, value = web_page_change(phone, random.Random(1), CATALOGUE)
    assert (path, value) == (FIREWALL, default)
    assert web_page_change(phone, random.Random(1), CATALOGUE) == (FIREWALL, other)
    assert phone.value(FIREWALL) == other and [e.event_code for e in phone.inform_events()] == ["4 VALUE CHANGE"]
    assert FIREWALL in {p.name for p in phone.inform_parameters()}


def test_without_notification_the_change_is_silent():
    phone = make_phone()
    change = web_page_change(phone, random.Random(2), CATALOGUE)
    assert change is not None and phone.value(change[0]) == change[1]
    assert phone.inform_events() == ()


def test_the_injector_drifts_and_resets_shares_of_the_fleet():
    clock, acs, fleet = make(phones=20, inform_interval=600)
    run(clock, 3)
    for p in fleet.phones:
        p.store({FIREWALL: "Enabled"})
        p.set_attribute(FIREWALL, 2, None)
    injector = DriftInjector(clock, fleet, drift_rate=0.25, reset_rate=0.1, interval=10, seed=3)
    injector.start()
    run(clock, 10.5)
    injector.stop()
    run(clock, 3)
    assert injector.drifted == 5 and injector.resets == 2
    changed = [i for i in acs.informs if "4 VALUE CHANGE" in i.events]
    assert len(changed) == 5 and all(i.params.get(FIREWALL) is not None for i in changed)
    reset = [i for i in acs.informs[20:] if "0 BOOTSTRAP" in i.events]
    assert len(reset) == 2 and all(i.params["Device.ManagementServer.ParameterKey"] == "" for i in reset)


def test_a_busy_phone_is_not_reset():
    clock, acs, fleet = make(phones=1)
    phone = fleet.phones[0]
    phone.state = 2  # in a session
    assert not factory_reset(fleet, phone, clock.seconds())
