"""The choice of a connection-request method per phone (fleet/reach.py), and sending it,
with fake requesters: no sockets, no clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred, succeed

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.connreq.methods import ReachMethod, WakeResult
from acs_security.connreq.udp import UdpAddressError
from acs_security.connreq.udp_client import UdpSendResult
from acs_security.fleet.reach import ReachChoice, behind_nat, binding_fresh, choose_method, send_wake
from acs_security.store.jobrecords import TargetDevice

NOW = 1_000_000.0
BASE = TargetDevice("D1", "CP-8851-3PCC", "12.0", "SN1", "http://198.51.100.7:7547/cr", None, None,
                    remote_address="198.51.100.7")
NATTED = dataclasses.replace(BASE, connection_request_url="http://192.168.1.20:7547/cr",
                             udp_connection_request_address="198.51.100.7:40001", udp_seen=NOW - 20,
                             keepalive_s=30)
ALL = {"http": True, "udp": True, "xmpp": True}


def test_reachable_url_goes_by_http() -> None:
    assert choose_method(BASE, now=NOW, **ALL) == ReachChoice(ReachMethod.HTTP, BASE.connection_request_url)


def test_behind_nat_by_source_address_or_by_natdetected() -> None:
    assert behind_nat(NATTED)
    assert behind_nat(dataclasses.replace(BASE, nat_detected=True))
    assert not behind_nat(BASE)
    # A host name cannot be compared with the source address: taken as reachable.
    assert not behind_nat(dataclasses.replace(BASE, connection_request_url="http://phone1.example.net/cr"))
    # The same address written differently (IPv6) is the same address.
    v6 = dataclasses.replace(BASE, connection_request_url="http://[2001:db8::1]:7547/", remote_address="2001:db8:0::1")
    assert not behind_nat(v6)


def test_behind_nat_with_fresh_binding_goes_by_udp() -> None:
    choice = choose_method(NATTED, now=NOW, **ALL)
    assert choice == ReachChoice(ReachMethod.UDP, "198.51.100.7:40001")


def test_binding_older_than_the_keepalive_is_unknown() -> None:
    assert binding_fresh(NATTED, NOW, 120.0)
    stale = dataclasses.replace(NATTED, udp_seen=NOW - 36)  # 30 s keep-alive + 5 s grace passed
    assert not binding_fresh(stale, NOW, 120.0)
    # Without the phone's own period the server's default applies.
    assert binding_fresh(dataclasses.replace(stale, keepalive_s=None), NOW, 120.0)
    choice = choose_method(stale, now=NOW, **ALL)
    assert choice.method is ReachMethod.PERIODIC
    assert choice.why == "behind NAT, no fresh STUN binding"


def test_xmpp_when_no_fresh_binding_and_a_jid_is_known() -> None:
    stale = dataclasses.replace(NATTED, udp_seen=None, xmpp_jid="sn1@xmpp.example.net/cwmp")
    assert choose_method(stale, now=NOW, **ALL) == ReachChoice(ReachMethod.XMPP, "sn1@xmpp.example.net/cwmp")
    # No XMPP connection on this node: the periodic Inform.
    assert choose_method(stale, now=NOW, http=True, udp=True, xmpp=False).method is ReachMethod.PERIODIC
    # UDP wins over XMPP while the binding is fresh.
    fresh = dataclasses.replace(NATTED, xmpp_jid="sn1@xmpp.example.net/cwmp")
    assert choose_method(fresh, now=NOW, **ALL).method is ReachMethod.UDP


def test_phone_with_only_a_jid_is_contactable_by_xmpp() -> None:
    only_jid = TargetDevice("D2", "CP-8851-3PCC", None, "SN2", None, None, None, xmpp_jid="sn2@x.example/r")
    assert choose_method(only_jid, now=NOW, **ALL).method is ReachMethod.XMPP
    assert choose_method(only_jid, now=NOW, **ALL, ).target == "sn2@x.example/r"


def test_without_credential_only_http_remains() -> None:
    assert choose_method(BASE, now=NOW, has_credential=False, **ALL).method is ReachMethod.HTTP
    choice = choose_method(dataclasses.replace(NATTED, xmpp_jid="a@b/c"), now=NOW, has_credential=False, **ALL)
    assert choice.method is ReachMethod.PERIODIC
    assert "no connection-request credential" in choice.why


def test_nothing_known_waits_for_the_periodic_inform() -> None:
    bare = TargetDevice("D3", "CP-8851-3PCC", None, "SN3", None, None, None)
    choice = choose_method(bare, now=NOW, **ALL)
    assert choice.method is ReachMethod.PERIODIC and "no ConnectionRequestURL" in choice.why


class FakeXmpp:
    def __init__(self, result: WakeResult) -> None:
        self.result = result
        self.calls: list[tuple[str, str, str]] = []

    def request(self, jid: str, username: str, password: str) -> Deferred[WakeResult]:
        self.calls.append((jid, username, password))
        return succeed(self.result)


def _run(coro: Any) -> Any:
    out: list[Any] = []
    ensureDeferred(coro).addBoth(out.append)
    assert out, "send_wake must complete with fakes that answer at once"
    return out[0]


def test_send_wake_xmpp_passes_jid_and_credential() -> None:
    xmpp = FakeXmpp(WakeResult(True))
    outcome = _run(send_wake(ReachChoice(ReachMethod.XMPP, "sn1@x/r"), ("cr", "pw"), xmpp=xmpp))
    assert outcome.ok and xmpp.calls == [("sn1@x/r", "cr", "pw")]
    refused = _run(send_wake(ReachChoice(ReachMethod.XMPP, "sn1@x/r"), ("cr", "pw"),
                             xmpp=FakeXmpp(WakeResult(False, "service-unavailable"))))
    assert not refused.ok and refused.detail == "xmpp: service-unavailable"
    # No credential: nothing is sent over XMPP.
    xmpp2 = FakeXmpp(WakeResult(True))
    assert not _run(send_wake(ReachChoice(ReachMethod.XMPP, "a@b/c"), None, xmpp=xmpp2)).ok
    assert xmpp2.calls == []


class FakeUdp:
    def __init__(self, error: str | None = None, raises: bool = False) -> None:
        self.error, self.raises = error, raises

    def send(self, address: str, username: str, password: str) -> Deferred[UdpSendResult]:
        if self.raises:
            raise UdpAddressError("UDP connection request needs an IP address, not a host name")
        return succeed(UdpSendResult(address, 7, 3, self.error))


def test_send_wake_udp_results() -> None:
    choice = ReachChoice(ReachMethod.UDP, "198.51.100.7:40001")
    assert _run(send_wake(choice, ("cr", "pw"), udp=FakeUdp())).ok
    failed = _run(send_wake(choice, ("cr", "pw"), udp=FakeUdp("OSError")))
    assert (failed.ok, failed.detail) == (False, "udp: OSError")
    bad = _run(send_wake(choice, ("cr", "pw"), udp=FakeUdp(raises=True)))
    assert not bad.ok and "IP address" in bad.detail


class FakeHttp:
    def __init__(self, kind: ResultKind) -> None:
        self.kind = kind
        self.calls: list[tuple[str, str | None, str | None]] = []

    def request(self, url: str, username: str | None, password: str | None) -> Deferred[ConnectionRequestResult]:
        self.calls.append((url, username, password))
        detail = "needs a connection-request credential" if self.kind is ResultKind.NEEDS_CREDENTIAL else ""
        return succeed(ConnectionRequestResult(self.kind, 401 if detail else 200, detail=detail))


@pytest.mark.parametrize(("kind", "ok", "final"), [(ResultKind.ACCEPTED, True, False),
                                                   (ResultKind.NEEDS_CREDENTIAL, False, True),
                                                   (ResultKind.TIMEOUT, False, False)])
def test_send_wake_http_without_credential(kind: ResultKind, ok: bool, final: bool) -> None:
    http = FakeHttp(kind)
    outcome = _run(send_wake(ReachChoice(ReachMethod.HTTP, "http://198.51.100.7/cr"), None, http=http))
    assert (outcome.ok, outcome.final) == (ok, final)
    assert http.calls == [("http://198.51.100.7/cr", None, None)]
    if final:
        assert outcome.detail == "needs a connection-request credential"
