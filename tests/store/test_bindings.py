"""STUN bindings, XMPP Jabber IDs and the facts of the reach choice in the store, on SQLite
and PostgreSQL (issue 15)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from acs_security.store import InvalidArgument, Store, make_device_id
from acs_security.store.bindings import UdpBindingRecord
from acs_security.store.jobrecords import reach_facts
from tests.store.conftest import CISCO_CLASS, CISCO_OUI, T0, inform

MS = "Device.ManagementServer."
A = make_device_id(CISCO_OUI, CISCO_CLASS, "NAT1")
B = make_device_id(CISCO_OUI, CISCO_CLASS, "NAT2")


def _target(store: Store, device_id: str):  # type: ignore[no-untyped-def]
    (found,) = store.target_devices([device_id])
    return found


def test_logins_resolve_unique_usernames_only(store: Store) -> None:
    store.record_informs([inform("NAT1"), inform("NAT2"), inform("NAT3")])
    store.put_connection_request_credential(A, "cr-a", "pw-a")
    store.put_connection_request_credential(B, "shared", "pw-b")
    store.put_connection_request_credential(make_device_id(CISCO_OUI, CISCO_CLASS, "NAT3"), "shared", "pw-c")
    assert store.connection_request_logins(["cr-a", "shared", "nobody"]) == {"cr-a": (A, "pw-a")}
    assert store.connection_request_logins([]) == {}
    with pytest.raises(InvalidArgument):
        store.connection_request_logins([""])


def test_bindings_batch_moves_the_device_address_and_freshness_is_read(store: Store) -> None:
    store.record_informs([inform("NAT1"), inform("NAT2")])
    moved = store.record_udp_bindings([
        UdpBindingRecord("198.51.100.1:40000", T0, device_id=A, username="cr-a", server="node-1"),
        UdpBindingRecord("198.51.100.2:40001", T0, username="unknown"),
        # A later sight of A's first address in the same batch: the latest wins.
        UdpBindingRecord("198.51.100.1:40000", T0 + timedelta(seconds=5), device_id=A, username="cr-a"),
    ])
    assert moved == 1
    a = _target(store, A)
    assert a.udp_connection_request_address == "198.51.100.1:40000"
    assert a.udp_seen == (T0 + timedelta(seconds=5)).timestamp()
    assert _target(store, B).udp_seen is None
    # The NAT remaps A: BINDING-CHANGE from a new port.
    later = T0 + timedelta(seconds=60)
    assert store.record_udp_bindings([UdpBindingRecord("198.51.100.1:40002", later, device_id=A, changed=True)]) == 1
    a = _target(store, A)
    assert a.udp_connection_request_address == "198.51.100.1:40002" and a.udp_seen == later.timestamp()
    # The same address again moves nothing.
    assert store.record_udp_bindings([UdpBindingRecord("198.51.100.1:40002", later, device_id=A)]) == 0
    assert store.purge_udp_bindings(T0 + timedelta(seconds=30)) == 2
    assert _target(store, A).udp_seen == later.timestamp()


def test_binding_record_checks_its_fields() -> None:
    with pytest.raises(InvalidArgument):
        UdpBindingRecord("", T0)
    with pytest.raises(InvalidArgument):
        UdpBindingRecord("1.2.3.4:5", T0.replace(tzinfo=None))
    with pytest.raises(InvalidArgument):
        Store.record_udp_bindings(None, ["x"])  # type: ignore[arg-type, list-item]


def test_xmpp_jid_is_kept_when_an_inform_does_not_carry_it(store: Store) -> None:
    store.record_informs([dataclasses.replace(inform("NAT1"), xmpp_jid="nat1@xmpp.example.net/cwmp")])
    assert _target(store, A).xmpp_jid == "nat1@xmpp.example.net/cwmp"
    store.record_informs([inform("NAT1", at=T0 + timedelta(seconds=1))])
    assert _target(store, A).xmpp_jid == "nat1@xmpp.example.net/cwmp"
    store.record_informs([inform("NAT2", connection_request_url=None)])
    assert _target(store, B).xmpp_jid is None


def test_nat_facts_come_from_the_inform_parameters(store: Store) -> None:
    params = ((MS + "NATDetected", "true", "xsd:boolean"),
              (MS + "STUNMinimumKeepAlivePeriod", "30", "xsd:unsignedInt"),
              (MS + "STUNMaximumKeepAlivePeriod", "-1", "xsd:int"))
    store.record_informs([inform("NAT1", params=params, remote_address="203.0.113.5"), inform("NAT2")])
    a, b = _target(store, A), _target(store, B)
    assert (a.nat_detected, a.keepalive_s, a.remote_address) == (True, 30, "203.0.113.5")
    assert (b.nat_detected, b.keepalive_s) == (None, None)


def test_reach_facts_prefers_the_maximum_keepalive() -> None:
    assert reach_facts({MS + "STUNMaximumKeepAlivePeriod": "120", MS + "STUNMinimumKeepAlivePeriod": "30"}) == {
        "nat_detected": None, "keepalive_s": 120}
    assert reach_facts({MS + "NATDetected": "0", MS + "STUNMinimumKeepAlivePeriod": "x"}) == {
        "nat_detected": False, "keepalive_s": None}
