"""The pure cores of desired state: revision keys, merging per model/firmware, conflicts,
the session decision and audit verdicts. No I/O, no clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from acs_security.desired.audit import audit_items, summarise
from acs_security.desired.compiled import AssignmentSet, same_value
from acs_security.desired.conflicts import find_conflicts
from acs_security.desired.decide import FAULT_RETRY_S, Situation, decide
from acs_security.desired.keys import assignment_key, job_of_key, parse_assignment_key
from acs_security.store.desiredrecords import DeviceAssignment
from tests.desired.helpers import FW12, M7832, M8851, T0, assignment, device

FIREWALL = "Device.X_CISCO_SecuritySettings.Firewall"
PING = "Device.X_CISCO_SecuritySettings.FirewallOptions"
VPN_PW = "Device.X_CISCO_VPNSettings.VPNPassword"
TLS_MIN = "Device.X_CISCO_SecuritySettings.TLSClientMinVersion"


# -- revision keys ---------------------------------------------------------------------


def test_the_key_names_assignment_and_revision_and_parses_back():
    assert assignment_key(12, 3) == "acs-des-12-r3"
    assert parse_assignment_key("acs-des-12-r3") == (12, 3)
    assert assignment_key(12, 3, batch=1) == "acs-des-12-r3.1"
    assert parse_assignment_key("acs-des-12-r3.1") == (12, 3)
    assert parse_assignment_key("acs-sec-job-4") is None and parse_assignment_key("") is None
    assert parse_assignment_key("acs-des-x-r3") is None


def test_a_key_longer_than_tr069_allows_is_refused():
    with pytest.raises(ValueError, match="32"):
        assignment_key(10**10 - 1, 10**10 - 1, batch=999)
    with pytest.raises(ValueError):
        assignment_key(-1, 1)


def test_job_ids_come_out_of_job_keys_with_or_without_batch():
    assert job_of_key("acs-sec-job-17", "acs-sec-job-") == 17
    assert job_of_key("acs-sec-job-17.2", "acs-sec-job-") == 17
    assert job_of_key("acs-des-1-r1", "acs-sec-job-") is None
    assert job_of_key("acs-sec-job-x7", "acs-sec-job-") is None


# -- desired state per model and firmware ----------------------------------------------


def test_values_are_compared_as_typed_values():
    assert same_value("boolean", "1", "true") and same_value("boolean", "false", "0")
    assert same_value("unsignedInt", "0060", "60")
    assert not same_value("string", None, "x") and not same_value("string", "a", "b")


def test_the_higher_priority_owns_a_shared_path_and_the_lower_is_shadowed():
    high = assignment(1, '[settings]\nFirewall = "Enabled"\n', priority=10)
    low = assignment(2, '[settings]\nFirewall = "Disabled"\nFirewall_Config = "NO_ICMP_PING"\n')
    aset = AssignmentSet([low, high])
    sel = aset.select(product_class=M8851, firmware=FW12, serial="S1")
    assert [a.id for a in sel] == [1, 2]  # merge order: priority first
    desired = aset.desired(M8851, FW12, sel)
    assert desired.values[FIREWALL].value == "Enabled" and desired.owner[FIREWALL] == 1
    low_part = desired.part(2)
    assert low_part is not None and low_part.paths == (PING,)
    assert low_part.shadowed == ((FIREWALL, 1),) and low_part.ties == ()
    assert aset.desired(M8851, FW12, sel) is desired  # memoised


def test_the_same_policy_differs_by_model_and_firmware():
    vpn = assignment(1, '[settings]\nVPN_Password = "s3cret-pass"\nFirewall = "Enabled"\n'
                        'TLS_Client_Min_Version = "TLS 1.2"\n')
    aset = AssignmentSet([vpn])
    big = aset.desired(M8851, FW12, (vpn,))
    small = aset.desired(M7832, FW12, (vpn,))
    old = aset.desired(M8851, "11.3(7)", (vpn,))
    assert VPN_PW in big.values and VPN_PW not in small.values
    assert tuple(k for k, _ in small.parts[0].skipped) == ("VPN_Password",)
    assert TLS_MIN in big.values and TLS_MIN not in old.values  # the 12.0 setting
    assert len({big.stamp, small.stamp, old.stamp}) == 3


def test_disabled_assignments_select_nothing_and_selectors_narrow():
    a = assignment(1, '[settings]\nFirewall = "Enabled"\n', select="product_class=CP-7832-3PCC")
    b = assignment(2, '[settings]\nFirewall = "Enabled"\n', select="tag=pilot")
    aset = AssignmentSet([a, b])
    assert aset.uses_tags
    assert aset.select(product_class=M8851, firmware=FW12, serial="S") == ()
    assert [x.id for x in aset.select(product_class=M7832, firmware=FW12, serial="S", tags=("pilot",))] == [1, 2]


# -- conflicts -------------------------------------------------------------------------


def _conflicts(candidate, others, devices):
    return find_conflicts(candidate, others, devices, plans=AssignmentSet([candidate, *others]))


def test_equal_priorities_with_different_values_conflict_on_a_device_both_select():
    a = assignment(1, '[settings]\nFirewall = "Enabled"\n', name="fw-on", select="product_class=CP-8851-3PCC")
    b = assignment(2, '[settings]\nFirewall = "Disabled"\n', name="fw-off", select="tag=lab")
    devices = [device("S1"), device("S2", tags=("lab",)), device("S3", M7832, tags=("lab",))]
    found = _conflicts(a, [b], devices)
    assert len(found) == 1
    c = found[0]
    assert (c.assignment, c.other, c.path) == ("fw-on", "fw-off", FIREWALL)
    assert (c.value, c.other_value) == ("Enabled", "Disabled")
    assert c.device is not None and c.device.serial_number == "S2"
    assert "fw-on" in c.line() and "fw-off" in c.line() and "S2" in c.line()


def test_priorities_order_them_and_disjoint_selectors_or_equal_values_do_not_conflict():
    a = assignment(1, '[settings]\nFirewall = "Enabled"\n')
    assert _conflicts(a, [assignment(2, '[settings]\nFirewall = "Disabled"\n', priority=5)], [device("S1")]) == []
    assert _conflicts(a, [assignment(3, '[settings]\nFirewall = "Enabled"\n')], [device("S1")]) == []
    disjoint = assignment(4, '[settings]\nFirewall = "Disabled"\n', select="product_class=CP-7832-3PCC")
    narrow = assignment(5, '[settings]\nFirewall = "Enabled"\n', select="product_class=CP-8851-3PCC")
    assert _conflicts(narrow, [disjoint], [device("S1"), device("S2", M7832)]) == []


def test_a_setting_the_shared_model_lacks_is_no_conflict():
    a = assignment(1, '[settings]\nVPN_Server = "vpn1.example.net"\n')
    b = assignment(2, '[settings]\nVPN_Server = "vpn2.example.net"\n')
    assert _conflicts(a, [b], [device("S1", M7832)]) == []
    assert [c.device.serial_number for c in _conflicts(a, [b], [device("S1", M7832), device("S2")])] == ["S2"]


def test_with_no_device_registered_a_selector_of_all_still_conflicts_and_secrets_are_masked():
    a = assignment(1, '[settings]\nProxy_Password = "first-secret"\n')
    b = assignment(2, '[settings]\nProxy_Password = "second-secret"\n', select="tag=lab")
    found = find_conflicts(a, [b], [], plans=AssignmentSet([a, b]), mask=lambda k, v: "********")
    assert len(found) == 1 and found[0].device is None
    assert "first-secret" not in found[0].line() and "none registered yet" in found[0].line()


# -- the session decision --------------------------------------------------------------


def _desired(*assignments, model=M8851):
    aset = AssignmentSet(assignments)
    return aset.desired(model, FW12, aset.select(product_class=model, firmware=FW12, serial="S1"))


def _sit(**kw):
    base = dict(device_id="D1", software_version=FW12, events=frozenset({"2 PERIODIC"}), known={}, rows={}, now=T0)
    base.update(kw)
    return Situation(**base)


def _row(aid=1, state="applied", revision=1, notified=1, at=T0, **kw):
    return DeviceAssignment("D1", aid, revision, state, at, notified_revision=notified, software_version=FW12, **kw)


HARD = '[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'


def test_a_new_device_gets_every_owned_value_and_active_notification():
    d = _desired(assignment(1, HARD))
    out = decide(d, _sit(events=frozenset({"0 BOOTSTRAP", "1 BOOT"})))
    assert [(s.part.assignment.id, [p.path for p in s.params]) for s in out.sends] == [(1, [FIREWALL, PING])]
    assert out.sends[0].row.state == "applied" and out.events == []  # new: no factory reset line
    assert set(out.notify_paths) == {FIREWALL, PING}


def test_a_compliant_notified_device_needs_nothing_and_writes_nothing():
    d = _desired(assignment(1, HARD))
    known = {FIREWALL: "Enabled", PING: "NO_ICMP_PING"}
    out = decide(d, _sit(known=known, rows={1: _row()}))
    assert (out.sends, out.notify, out.rows, out.events, out.settled) == ([], [], [], [], True)


def test_compliant_values_without_a_row_make_a_compliant_row():
    d = _desired(assignment(1, HARD))
    out = decide(d, _sit(known={FIREWALL: "Enabled", PING: "NO_ICMP_PING"}))
    assert [r.state for r in out.rows] == ["compliant"] and out.sends == [] and out.notify_paths


def test_a_value_change_is_drift_with_old_and_new_and_is_corrected():
    d = _desired(assignment(1, HARD))
    out = decide(d, _sit(events=frozenset({"4 VALUE CHANGE"}), known={FIREWALL: "Disabled", PING: "NO_ICMP_PING"},
                         reported={FIREWALL: "Disabled"}, rows={1: _row()}))
    assert [[p.path for p in s.params] for s in out.sends] == [[FIREWALL]]
    (line,) = out.sends[0].events
    assert (line.kind, line.old_value, line.new_value, line.event, line.action) == (
        "drift", "Enabled", "Disabled", "4 VALUE CHANGE", "corrected")
    assert out.events == []  # written with the outcome of the SetParameterValues


def test_audit_mode_reports_drift_and_sends_nothing():
    d = _desired(assignment(1, HARD, mode="audit"))
    out = decide(d, _sit(events=frozenset({"4 VALUE CHANGE"}), known={FIREWALL: "Disabled", PING: "NO_ICMP_PING"},
                         reported={FIREWALL: "Disabled"}, rows={1: _row(state="compliant")}))
    assert out.sends == []
    assert [(e.kind, e.action, e.new_value) for e in out.events] == [("drift", "reported", "Disabled")]
    assert [r.state for r in out.rows] == ["drifted"] and "Firewall" in (out.rows[0].detail or "")
    assert decide(d, _sit(rows={1: _row(state="compliant")})).rows[0].state == "unknown"


def test_a_job_in_the_same_session_wins_and_the_next_session_enforces_again():
    d = _desired(assignment(1, HARD))
    out = decide(d, _sit(known={FIREWALL: "Disabled", PING: "NO_ICMP_PING"},
                         job_values={FIREWALL: ("Disabled", 7)}, rows={1: _row()}))
    assert out.sends == [] and not out.settled
    assert [(r.state, r.job_id) for r in out.rows] == [("overridden", 7)]
    (line,) = out.events
    assert (line.kind, line.job_id, line.old_value, line.new_value, line.action) == (
        "job_conflict", 7, "Enabled", "Disabled", "job_won")


def test_a_faulted_revision_waits_unless_something_changed():
    d = _desired(assignment(1, HARD))
    faulted = _row(state="faulted", at=T0 - timedelta(seconds=60))
    out = decide(d, _sit(rows={1: faulted}))
    assert out.sends == [] and out.retry_at == faulted.updated_at + timedelta(seconds=FAULT_RETRY_S)
    assert decide(d, _sit(rows={1: faulted}, events=frozenset({"1 BOOT"}))).sends  # a reboot: try again
    later = _sit(rows={1: faulted}, now=T0 + timedelta(seconds=FAULT_RETRY_S))
    assert decide(d, later).sends
    newer = _desired(assignment(1, HARD, revision=2))
    assert decide(newer, _sit(rows={1: faulted})).sends


def test_a_factory_reset_is_history_and_notification_is_set_again():
    d = _desired(assignment(1, HARD))
    out = decide(d, _sit(events=frozenset({"0 BOOTSTRAP", "1 BOOT"}), rows={1: _row()}))
    assert [(e.kind, e.event) for e in out.events] == [("factory_reset", "0 BOOTSTRAP")]
    assert out.sends and out.notify_paths


def test_a_model_without_any_of_the_settings_is_skipped():
    d = _desired(assignment(1, '[settings]\nVPN_Server = "vpn.example.net"\n'), model=M7832)
    out = decide(d, _sit())
    assert [(r.state, r.skipped) for r in out.rows] == [("skipped", ("VPN_Server",))] and out.sends == []


# -- audit verdicts --------------------------------------------------------------------


def test_audit_items_say_compliant_drifted_missing_unknown_and_never_show_secrets():
    a = assignment(1, '[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'
                      'VPN_Password = "s3cret-pass"\nVPN_Server = "vpn.example.net"\n', name="vpn")
    big = _desired(a)
    read = {FIREWALL: "Enabled", PING: "", VPN_PW: "", "Device.X_CISCO_VPNSettings.VPNServer": "vpn.example.net"}
    items = {i["path"] or i["setting"]: i for i in audit_items(big, read, secret=lambda p: p == VPN_PW)}
    assert items[FIREWALL]["verdict"] == "compliant"
    assert items[PING]["verdict"] == "drifted" and items[PING]["value"] == ""
    assert items[VPN_PW]["verdict"] == "unknown" and "write-only" in items[VPN_PW]["detail"]
    assert items[VPN_PW]["desired"] == "********"
    reported = audit_items(big, {**read, VPN_PW: "other-pass"}, secret=lambda p: p == VPN_PW)
    vpn = next(i for i in reported if i["path"] == VPN_PW)
    assert vpn["verdict"] == "drifted" and vpn["value"] == "********"
    small = _desired(a, model=M7832)
    missing = [i["setting"] for i in audit_items(small, {}) if i["verdict"] == "missing"]
    assert sorted(missing) == ["VPN_Password", "VPN_Server"]
    summary = summarise([({"product_class": M8851}, list(items.values())),
                         ({"product_class": M7832}, audit_items(small, None))])
    assert summary["totals"]["compliant"] == 2 and summary["totals"]["drifted"] == 1
    assert summary["devices"] == {"compliant": 0, "drifted": 1, "missing": 0, "unknown": 1}
    row = next(s for s in summary["settings"] if s["setting"] == PING and s["product_class"] == M8851)
    assert row["drifted"] == 1 and row["drifted_values"] == {"": 1}
