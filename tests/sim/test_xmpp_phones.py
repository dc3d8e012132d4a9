"""Simulated phones reached by XMPP: their data model and their answers to Annex K IQs
(no sockets: the fleet without an XMPP server, the IQs handed to the phones' side)."""

from __future__ import annotations

from acs_security.connreq.xmpp_stanza import build_connection_request, parse_iq
from acs_security.sim.xmpp_phones import JABBER_ID, uses_xmpp
from tests.sim.test_fleet_clock import make, run

MS = "Device.ManagementServer."
ACS = "acs@xmpp.test/node1"


def _fleet(**kwargs):
    return make(phones=20, xmpp=0.5, xmpp_allowed=("acs@xmpp.test",), **kwargs)


def test_a_share_of_the_phones_uses_xmpp_behind_nat_without_stun():
    clock, acs, fleet = _fleet()
    chosen = [p for p in fleet.phones if p in fleet.xmpp]
    assert [p.serial for p in chosen] == [p.serial for i, p in enumerate(fleet.phones) if uses_xmpp(1, i, 0.5)]
    assert 0 < len(chosen) < 20 and len(fleet.xmpp) == len(chosen)
    phone = chosen[0]
    assert phone.value(JABBER_ID) == f"{phone.serial.lower()}@xmpp.test/cwmp"
    assert phone.value(MS + "ConnReqAllowedJabberIDs") == "acs@xmpp.test"
    assert phone.value(MS + "ConnReqXMPPConnection") == "Device.XMPP.Connection.1"
    assert phone.value(MS + "NATDetected") == "true" and phone.value(MS + "STUNEnable") == "false"
    assert phone.value(MS + "ConnectionRequestURL").startswith("http://10.")
    assert phone.value(MS + "UDPConnectionRequestAddress") == ""
    reported = {pv.name: pv.value for pv in phone.inform_parameters()}
    assert reported[JABBER_ID] == phone.value(JABBER_ID)
    other = next(p for p in fleet.phones if p not in fleet.xmpp)
    assert JABBER_ID not in {pv.name for pv in other.inform_parameters()}
    # accounts for the XMPP server: one per phone, passwords differ and never the CR password
    accounts = dict(fleet.xmpp.accounts())
    assert set(accounts) == {p.serial.lower() for p in chosen}
    assert len(set(accounts.values())) == len(chosen)
    assert accounts[phone.serial.lower()] not in phone.cr_credentials()


def _iq(phone, sender=ACS, password=None):
    username, real = phone.cr_credentials()
    return build_connection_request("cr1", sender, phone.value(JABBER_ID), username,
                                    real if password is None else password)


def test_phone_answers_by_the_annex_k_verdict_then_calls_in():
    clock, acs, fleet = _fleet()
    run(clock, 5)
    phone = next(p for p in fleet.phones if p in fleet.xmpp)
    sessions = phone.sessions_completed
    refused = parse_iq(fleet.xmpp.answer(phone, _iq(phone, sender="evil@xmpp.test/x")) or "")
    assert (refused.type, refused.condition) == ("error", "service-unavailable")
    wrong = parse_iq(fleet.xmpp.answer(phone, _iq(phone, password="guess")) or "")
    assert (wrong.type, wrong.condition, wrong.error_type) == ("error", "not-authorized", "auth")
    assert fleet.stats.xmpp_accepted == 0
    ok = parse_iq(fleet.xmpp.answer(phone, _iq(phone)) or "")
    assert (ok.type, ok.id, ok.to) == ("result", "cr1", ACS)
    assert fleet.stats.xmpp_accepted == 1
    run(clock, 3)
    assert phone.sessions_completed == sessions + 1
    assert "6 CONNECTION REQUEST" in acs.events_of(phone.serial)[-1]
    # twice at once: the phone's rate limit (TR-069 3.2.2) answers the second resource-constraint
    assert parse_iq(fleet.xmpp.answer(phone, _iq(phone)) or "").type == "result"
    again = parse_iq(fleet.xmpp.answer(phone, _iq(phone)) or "")
    assert (again.condition, again.error_type) == ("resource-constraint", "wait")
    assert fleet.xmpp.answers["service-unavailable"] == 1 and fleet.xmpp.answers["not-authorized"] == 1


def test_offline_phone_answers_nothing_and_junk_is_dropped():
    clock, acs, fleet = _fleet()
    phone = next(p for p in fleet.phones if p in fleet.xmpp)
    assert fleet.xmpp.answer(phone, "<iq type='set'") is None
    fleet.set_fault(phone.serial, "offline")
    assert fleet.xmpp.answer(phone, _iq(phone)) is None
    assert fleet.xmpp.answers == {"malformed": 1, "offline": 1}


def test_no_server_means_no_connection() -> None:
    clock, acs, fleet = _fleet()
    run(clock, 2)
    assert fleet.xmpp.logged_in == set() and fleet.xmpp.logins == 0


def test_a_factory_reset_keeps_the_phones_xmpp_account_and_reports_it_again():
    from acs_security.cwmp import messages as m

    clock, acs, fleet = make(phones=20, xmpp=0.5, xmpp_allowed=("acs@xmpp.test",), boot_ramp_s=0.0, reboot_delay=1.0)
    phone = next(p for p in fleet.phones if p in fleet.xmpp)
    jid = phone.value(JABBER_ID)
    acs.queue[phone.serial] += [m.FactoryReset()]
    run(clock, 3)
    assert acs.events_of(phone.serial)[-1] == ("0 BOOTSTRAP", "1 BOOT")
    assert phone.value(JABBER_ID) == jid and phone.value(MS + "ConnReqAllowedJabberIDs") == "acs@xmpp.test"
    assert phone.value(MS + "NATDetected") == "true" and phone.value(MS + "STUNEnable") == "false"
    assert acs.informs[-1].params[JABBER_ID] == jid
