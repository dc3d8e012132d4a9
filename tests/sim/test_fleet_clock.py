"""The fleet's scheduling on a fake clock, against an in-memory ACS (no sockets)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from treq.testing import RequestTraversalAgent
from twisted.internet.task import Clock

from acs_security.connreq.http_client import HttpConnectionRequester, ResultKind
from acs_security.connreq.udp import build_udp_connection_request
from acs_security.cwmp import messages as m
from acs_security.sim.faults import FaultKind, parse_faults
from acs_security.sim.fleet import FleetConfigError, SimulatedFleet
from acs_security.sim.listeners import ConnectionRequestRoot
from tests.sim.acs_stub import StubAcs

MS = "Device.ManagementServer."
SEC = "Device.X_CISCO_SecuritySettings."
T0 = 1_700_000_000.0


def make(phones: int = 3, **kwargs):
    clock = Clock()
    clock.advance(T0)
    acs = StubAcs(clock)
    options: dict[str, Any] = dict(phones=phones, inform_interval=60, boot_ramp_s=1.0, cr_listen=None,
                   udp_listen=None, agent=RequestTraversalAgent(acs), seed=1)
    options.update(kwargs)
    fleet = SimulatedFleet(clock, "http://acs.example.net:7547/", **options)
    fleet.start()
    return clock, acs, fleet


def run(clock: Clock, seconds: float, step: float = 0.5) -> None:
    for _ in range(int(seconds / step)):
        clock.advance(step)


def test_boot_informs_then_periodic_informs_on_the_interval_with_jitter():
    clock, acs, fleet = make(phones=3)
    run(clock, 2)
    assert [i.events for i in acs.informs] == [("0 BOOTSTRAP", "1 BOOT")] * 3
    boots = {i.serial: i.at for i in acs.informs}
    run(clock, 50)
    assert len(acs.informs) == 3  # nothing before 0.9 x interval
    run(clock, 20)
    periodic = [i for i in acs.informs if i.events == ("2 PERIODIC",)]
    assert len(periodic) == 3
    for inform in periodic:
        assert 54 <= inform.at - boots[inform.serial] <= 66
    run(clock, 60)
    assert sum(1 for i in acs.informs if i.events == ("2 PERIODIC",)) == 6
    assert all(p.sessions_completed == 3 for p in fleet.phones)
    assert fleet.stats.sessions_ok == 9 and fleet.stats.informs["2 PERIODIC"] == 6
    fleet.stop()
    run(clock, 200)
    assert len(acs.informs) == 9 and not clock.getDelayedCalls()


def test_same_seed_same_timeline():
    def timeline(seed):
        clock, acs, fleet = make(phones=4, seed=seed)
        run(clock, 200)
        fleet.stop()
        return [(round(i.at, 6), i.serial, i.events) for i in acs.informs]

    assert timeline(5) == timeline(5)
    assert timeline(5) != timeline(6)


def test_503_retry_after_is_honoured_and_counted_in_retry_count():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0)
    acs.busy = 1
    run(clock, 6.5, 0.25)
    assert acs.informs == [] and fleet.stats.failures["ACS busy"] == 1
    run(clock, 1.0, 0.25)
    assert len(acs.informs) == 1
    inform = acs.informs[0]
    assert inform.retry_count == 1 and inform.events == ("0 BOOTSTRAP", "1 BOOT")
    assert 7.0 <= inform.at - T0 <= 7.25


def test_failed_sessions_are_retried_with_the_tr069_backoff():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0)
    acs.fail = 2
    run(clock, 40, 0.1)
    assert len(acs.informs) == 1 and acs.informs[0].retry_count == 2
    attempts = fleet.stats.sessions_started
    assert attempts == 3
    # first retry after 5-10 s, the second 10-20 s after that (m = 5, k = 2000)
    assert 15 <= acs.informs[0].at - T0 <= 30.2


def test_set_parameter_values_and_reboot_from_the_acs():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0, reboot_delay=2.0)
    serial = fleet.phones[0].serial
    acs.queue[serial] += [
        m.SetParameterValues((m.ParameterValue(SEC + "TLSCipherList", "HIGH", "string"),), "p1"),
        m.SetParameterValues((m.ParameterValue(SEC + "TLSCipherList", "NOPE", "string"),), "p2"),
        m.Reboot("rb"),
    ]
    run(clock, 1)
    phone = fleet.phone(serial)
    assert phone.params[SEC + "TLSCipherList"] == "HIGH"
    assert phone.params[MS + "ParameterKey"] == "p1"
    assert phone.spv_by_key == {"p1": 1, "p2": 1}
    assert [type(a).__name__ for _, _, a in acs.answers] == ["SetParameterValuesResponse", "Fault",
                                                              "RebootResponse"]
    run(clock, 1)
    assert len(acs.informs) == 1  # still restarting: the reboot takes reboot_delay
    run(clock, 2)
    assert acs.events_of(serial)[-1] == ("1 BOOT", "M Reboot")
    assert 2.0 <= acs.informs[-1].at - acs.informs[0].at <= 2.5
    assert acs.informs[-1].params[MS + "ParameterKey"] == "p1"
    assert int(fleet.phone(serial).params["Device.DeviceInfo.UpTime"]) <= 1
    assert fleet.stats.rpcs["SetParameterValues"] == 2 and fleet.stats.cpe_faults[9003] == 1


def test_fips_and_restricted_domains_lock_the_phone_out():
    clock, acs, fleet = make(phones=2, boot_ramp_s=0.0)
    fips, restricted = fleet.phones
    acs.queue[fips.serial].append(m.SetParameterValues(
        (m.ParameterValue(SEC + "FIPSMode", "Yes", "string"),), "fips"))
    acs.queue[restricted.serial].append(m.SetParameterValues((m.ParameterValue(
        "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains", "sip.example.net", "string"),), "rd"))
    run(clock, 1)
    assert [type(a).__name__ for _, _, a in acs.answers] == ["SetParameterValuesResponse"] * 2
    assert fips.locked_out and fips.locked_out.startswith("FIPS Mode = Yes")
    assert restricted.locked_out and "do not include the ACS host 'acs.example.net'" in restricted.locked_out
    run(clock, 600, 5)
    assert len(acs.informs) == 2  # neither ever called again
    assert fleet.inform_now(fips.serial) is False
    # fixing the setting on the phone itself lets it call in again
    restricted.set_param("Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains",
                         "acs.example.net,sip.example.net")
    assert restricted.locked_out is None
    run(clock, 70, 5)
    assert acs.events_of(restricted.serial)[-1] == ("2 PERIODIC",)
    assert fleet.stats.lockouts["fips"] == 1 and fleet.stats.lockouts["restricted"] == 1


def test_fault_switches_offline_drop_and_old_firmware():
    clock, acs, fleet = make(phones=3, boot_ramp_s=0.0)
    off, drop, old = fleet.phones
    fleet.set_fault(off.serial, FaultKind.OFFLINE)
    fleet.set_fault(drop.serial, "drop")
    fleet.set_fault(old.serial, FaultKind.OLD_FIRMWARE)
    assert old.table.software_version.startswith("sip") and "11-2-3" in old.table.software_version
    acs.queue[drop.serial].append(m.GetRPCMethods())
    run(clock, 1)
    assert off.serial not in {i.serial for i in acs.informs}
    assert drop.sessions_failed == 1 and fleet.stats.failures["connection dropped mid-session"] == 1
    assert acs.answers == []  # the request was never answered
    fleet.set_fault(off.serial, FaultKind.OFFLINE, on=False)
    run(clock, 1)
    assert acs.events_of(off.serial) == [("0 BOOTSTRAP", "1 BOOT")]
    # switched off in the middle of a session: it finishes it and then stays off
    acs.queue[off.serial].append(m.GetRPCMethods())
    fleet.set_fault(off.serial, FaultKind.SLOW)
    fleet.inform_now(off.serial, "6 CONNECTION REQUEST")
    run(clock, 0.5)
    assert fleet.in_session == 1
    fleet.set_fault(off.serial, FaultKind.OFFLINE)
    run(clock, 200, 5)
    assert len(acs.events_of(off.serial)) == 2 and fleet.in_session == 0
    with pytest.raises(ValueError):
        fleet.set_fault(off.serial, "gremlins")
    with pytest.raises(KeyError):
        fleet.set_fault("NOPE", "drop")


def test_concurrent_sessions_are_limited_and_boots_spread_over_the_ramp():
    clock, acs, fleet = make(phones=20, boot_ramp_s=10.0, max_concurrent_sessions=3,
                             faults=parse_faults("slow=1"), slow_delay=5.0)
    for phone in fleet.phones:
        acs.queue[phone.serial].append(m.GetRPCMethods())
    peak = 0
    for _ in range(400):
        clock.advance(0.25)
        peak = max(peak, fleet.in_session)
    assert peak == 3
    assert sum(1 for p in fleet.phones if p.sessions_completed) == 20
    starts = sorted(i.at for i in acs.informs if "1 BOOT" in i.events)
    assert starts[0] - T0 < 0.5 and starts[-1] - T0 > 9


def test_wait_for_polls_on_the_reactor_clock():
    clock, acs, fleet = make(phones=2)
    done = fleet.wait_for(lambda: all(p.sessions_completed for p in fleet.phones), timeout=5)
    results: list[object] = []
    done.addBoth(results.append)
    run(clock, 2)
    assert results == [None]
    late = fleet.wait_for(lambda: False, timeout=1)
    late.addErrback(lambda f: results.append(f.type))
    run(clock, 2)
    assert results[-1] is TimeoutError


def test_connection_requests_in_memory_digest_busy_and_rate_limit():
    clock, acs, fleet = make(phones=2, boot_ramp_s=0.0, cr_delay=(0.1, 0.1), cr_min_interval=5.0)
    run(clock, 1)
    root = ConnectionRequestRoot(fleet, fleet._cr_verifier, clock, random.Random(0).randbytes)
    requester = HttpConnectionRequester(RequestTraversalAgent(root), clock,
                                        nonce_source=random.Random(1).randbytes)
    phone = fleet.phones[0]
    user, password = fleet.connection_request_credentials(phone.serial)
    url = f"http://127.0.0.1:7548/{phone.serial}"
    results = []
    requester.request(url, user, "wrong").addCallback(results.append)
    requester.request(url, user, password).addCallback(results.append)
    requester.request(url, user, password).addCallback(results.append)
    assert [r.kind for r in results] == [ResultKind.AUTH_FAILED, ResultKind.ACCEPTED, ResultKind.BUSY]
    run(clock, 0.5, 0.1)
    assert acs.events_of(phone.serial)[-1] == ("6 CONNECTION REQUEST",)
    assert fleet.stats.cr_accepted == 1 and fleet.stats.cr_refused["rate"] == 1
    assert fleet.stats.cr_refused["auth"] >= 1
    fleet.set_fault(phone.serial, "cr503")
    run(clock, 6)
    requester.request(url, user, password).addCallback(results.append)
    assert results[-1].kind is ResultKind.BUSY and fleet.stats.cr_refused["fault503"] == 1


def test_udp_connection_requests_signature_window_and_replay():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0, cr_delay=(0.1, 0.1), cr_min_interval=0.0)
    fleet.env.udp_address = "127.0.0.1:7999"
    run(clock, 1)
    phone = fleet.phones[0]
    user, password = fleet.connection_request_credentials(phone.serial)

    def datagram(pw=password, ts=None, rid=1, un=user):
        return build_udp_connection_request("127.0.0.1:7999", username=un, password=pw,
                                            ts=int(clock.seconds()) if ts is None else ts,
                                            request_id=rid, cnonce="abc")

    fleet.udp_datagram(datagram(pw="wrong"))
    fleet.udp_datagram(datagram(ts=int(clock.seconds()) - 3600))
    fleet.udp_datagram(datagram(un="cr-NOBODY"))
    fleet.udp_datagram(b"GET / HTTP/1.0\r\n\r\n")
    assert fleet.stats.udp_accepted == 0
    fleet.udp_datagram(datagram(rid=7))
    fleet.udp_datagram(datagram(rid=7))  # the same request again: dropped
    assert fleet.stats.udp_accepted == 1
    assert dict(fleet.stats.udp_ignored) == {"bad_signature": 1, "stale_timestamp": 1,
                                             "unknown_username": 1, "malformed": 1, "replayed_id": 1}
    run(clock, 0.5, 0.1)
    assert acs.events_of(phone.serial)[-1] == ("6 CONNECTION REQUEST",)


def test_bad_fleet_arguments_are_refused():
    clock = Clock()
    for kwargs, words in [
        (dict(phones=-1), "phones"),
        (dict(phones=1, inform_interval=0.5), "inform_interval"),
        (dict(phones=1, max_concurrent_sessions=0), "max_concurrent_sessions"),
        (dict(phones=1, cr_password_mode="shared"), "cr_password"),
        (dict(phones=1, cr_listen="nowhere"), "cr_listen"),
        (dict(phones=1, serial_prefix=""), "serial_prefix"),
    ]:
        with pytest.raises(FleetConfigError, match=words):
            SimulatedFleet(clock, "http://acs/", **kwargs)
    with pytest.raises(FleetConfigError, match="acs_url"):
        SimulatedFleet(clock, "ftp://acs/", phones=1)


def test_factory_reset_comes_back_bootstrapping_with_factory_values():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0, reboot_delay=1.0)
    phone = fleet.phones[0]
    acs.queue[phone.serial] += [
        m.SetParameterValues((m.ParameterValue(SEC + "TLSCipherList", "HIGH", "string"),), "k1"),
        m.FactoryReset(),
    ]
    run(clock, 3)
    assert acs.events_of(phone.serial) == [("0 BOOTSTRAP", "1 BOOT"), ("0 BOOTSTRAP", "1 BOOT")]
    assert acs.informs[-1].params[MS + "ParameterKey"] == ""
    assert phone.params[SEC + "TLSCipherList"] == ""


def test_firmware_download_reboots_and_reports_transfer_complete():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0, reboot_delay=1.0)
    phone = fleet.phones[0]
    acs.files[b"/fw/sip88xx.bin"] = b"\x7fIMAGE" * 100
    acs.queue[phone.serial] += [
        m.Download("fw-1", "1 Firmware Upgrade Image", "http://acs.example.net/fw/sip88xx.bin"),
        m.Download("fw-2", "1 Firmware Upgrade Image", "http://acs.example.net/fw/nope.bin"),
    ]
    run(clock, 4)
    # Both transfers are reported in one session, each with its own "M Download" CommandKey.
    assert acs.events_of(phone.serial)[-1] == ("1 BOOT", "7 TRANSFER COMPLETE", "M Download",
                                               "M Download")
    reports = {msg.command_key: msg.fault.code for _, msg in acs.cpe_requests}  # type: ignore[attr-defined]
    assert reports == {"fw-1": 0, "fw-2": 9016}
    assert fleet.stats.downloads == 2 and phone.transfers is None


def test_local_change_with_active_notification_informs_value_change():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0)
    phone = fleet.phones[0]
    acs.queue[phone.serial].append(m.SetParameterAttributes(
        (m.SetParameterAttributesStruct(SEC + "TLSCipherList", True, 2),)))
    run(clock, 1)
    phone.set_param(SEC + "TLSCipherList", "MEDIUM")
    run(clock, 1)
    last = acs.informs[-1]
    assert last.events == ("4 VALUE CHANGE",) and last.params[SEC + "TLSCipherList"] == "MEDIUM"


def test_new_connection_request_credentials_from_the_acs_apply_to_http_and_udp():
    clock, acs, fleet = make(phones=1, boot_ramp_s=0.0, cr_delay=(0.1, 0.1), cr_min_interval=0.0)
    fleet.env.udp_address = "127.0.0.1:7999"
    phone = fleet.phones[0]
    acs.queue[phone.serial].append(m.SetParameterValues((
        m.ParameterValue(MS + "ConnectionRequestUsername", "alice", "string"),
        m.ParameterValue(MS + "ConnectionRequestPassword", "wonderland", "string")), "cr"))
    run(clock, 1)
    assert fleet.connection_request_credentials(phone.serial) == ("alice", "wonderland")
    fleet.udp_datagram(build_udp_connection_request(
        "127.0.0.1:7999", username="alice", password="wonderland", ts=int(clock.seconds()),
        request_id=5, cnonce="x"))
    assert fleet.stats.udp_accepted == 1
    root = ConnectionRequestRoot(fleet, fleet._cr_verifier, clock, random.Random(0).randbytes)
    requester = HttpConnectionRequester(RequestTraversalAgent(root), clock,
                                        nonce_source=random.Random(1).randbytes)
    results = []
    url = f"http://127.0.0.1:7548/{phone.serial}"
    run(clock, 1)
    requester.request(url, "alice", "wonderland").addCallback(results.append)
    assert [r.kind for r in results] == [ResultKind.ACCEPTED]


def test_slow_and_offline_phones_answering_connection_requests():
    clock, acs, fleet = make(phones=2, boot_ramp_s=0.0, slow_delay=3.0, cr_delay=(0.1, 0.1))
    run(clock, 1)
    slow, gone = fleet.phones
    fleet.set_fault(slow.serial, "slow")
    fleet.set_fault(gone.serial, "offline")
    agent = RequestTraversalAgent(ConnectionRequestRoot(fleet, fleet._cr_verifier, clock,
                                                        random.Random(0).randbytes))
    requester = HttpConnectionRequester(agent, clock, timeout=10,
                                        nonce_source=random.Random(1).randbytes)
    results: dict[str, object] = {}
    for phone in (slow, gone):
        user, password = fleet.connection_request_credentials(phone.serial)
        requester.request(f"http://127.0.0.1:7548/{phone.serial}", user, password).addCallback(
            lambda r, s=phone.serial: results.__setitem__(s, r.kind))
    assert results[gone.serial] is not ResultKind.ACCEPTED  # connection dropped
    assert slow.serial not in results
    clock.advance(3.0)
    agent.flush()
    assert results[slow.serial] is ResultKind.ACCEPTED
