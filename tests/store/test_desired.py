"""Desired state in the store (migration step 6), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from acs_security.secret_rotation import scan_secrets
from acs_security.secrets import EncryptingCodec, KeyRing, SecretStore
from acs_security.store import InvalidArgument, UnknownDevice
from acs_security.store.desired import DuplicateAssignment
from acs_security.store.desiredrecords import DeviceAssignment, DriftRecord
from tests.store.conftest import T0, inform

POLICY = {"name": "fw", "description": "", "settings": {"Firewall": "Enabled"}, "extension_settings": {},
          "extensions": "all"}


def _assignment(store, name="fw-on", **kw):
    args = dict(name=name, policy=POLICY, policy_name="fw.toml", selector="all", priority=0, mode="enforce")
    args.update(kw)
    return store.create_assignment(**args)


def test_assignments_are_revisioned_unique_by_name_and_enabled_apart(store, clock):
    a = _assignment(store)
    assert (a.revision, a.enabled, a.mode) == (1, True, "enforce")
    with pytest.raises(DuplicateAssignment):
        _assignment(store)
    before = store.assignment_generation()
    clock.advance(5)
    b = store.update_assignment(a.id, policy=POLICY, policy_name="fw.toml", selector="tag=x", priority=3,
                                mode="audit")
    assert (b.revision, b.selector, b.priority, b.mode) == (2, "tag=x", 3, "audit")
    assert store.assignment_generation() != before
    c = store.set_assignment_enabled(a.id, False)
    assert (c.enabled, c.revision) == (False, 2)  # what is desired did not change
    assert store.list_assignments(enabled_only=True) == []
    assert store.find_assignment("fw-on").id == a.id
    assert store.update_assignment(999, policy=POLICY, policy_name="", selector="all", priority=0,
                                   mode="enforce") is None
    with pytest.raises(InvalidArgument, match="mode"):
        _assignment(store, name="x", mode="sometimes")
    with pytest.raises(InvalidArgument, match="selector"):
        _assignment(store, name="y", selector="")


def test_a_session_outcome_history_and_values_land_together(store, clock):
    store.record_informs([inform("S1")])
    device_id = store.list_devices()[0].device_id
    a = _assignment(store)
    row = DeviceAssignment(device_id, a.id, 1, "applied", T0, detail="applied 1 setting(s)", skipped=("X",),
                           notified_revision=1, software_version="12.0.1", node="n1")
    line = DriftRecord(device_id, a.id, a.name, "drift", "4 VALUE CHANGE", "corrected", T0, setting="Firewall",
                       path="Device.X_CISCO_SecuritySettings.Firewall", old_value="Enabled", new_value="Disabled")
    store.record_desired(device_id, rows=[row], events=[line],
                         params=[("Device.X_CISCO_SecuritySettings.Firewall", "Enabled", "string")])
    params, rows, last = store.desired_device_state(device_id)
    assert params["Device.X_CISCO_SecuritySettings.Firewall"] == ("Enabled", "string")
    assert rows[a.id] == row
    assert last == {"Device.X_CISCO_SecuritySettings.Firewall": "Disabled"}
    store.record_desired(device_id, rows=[DeviceAssignment(device_id, a.id, 1, "compliant", T0 + timedelta(1))])
    assert store.device_rows(device_id)[0].state == "compliant"
    assert store.assignment_state_counts() == {(a.id, "compliant"): 1}
    history = store.drift_history(device_id)
    assert [(h.kind, h.old_value, h.new_value) for h in history] == [("drift", "Enabled", "Disabled")]
    with pytest.raises(UnknownDevice):
        store.record_desired("00000C-nobody", events=[DriftRecord(
            "00000C-nobody", a.id, a.name, "drift", "e", "reported", T0)])
    with pytest.raises(InvalidArgument):
        store.record_desired(device_id, rows=[DeviceAssignment(device_id, a.id, 1, "happy", T0)])
    # Deleting the assignment keeps the device's history, naming it.
    assert store.delete_assignment(a.id)
    assert store.device_rows(device_id) == []
    kept = store.drift_history(device_id)
    assert [(h.assignment_id, h.assignment_name) for h in kept] == [(None, "fw-on")]


def test_job_conflicts_and_audit_readings(store):
    store.record_informs([inform("S1"), inform("S2")])
    d1, d2 = (d.device_id for d in store.list_devices())
    a = _assignment(store)
    job = store.create_job(name="audit", policy={"name": "audit", "settings": {}}, selector="all", options={},
                           parameter_key_prefix="acs-sec-job-", deadline=T0 + timedelta(hours=1),
                           tasks=[(d1, 0), (d2, 0)], kind="audit")
    assert store.get_job(job.id).kind == "audit"
    store.record_audit(job.id, d1, items=[{"setting": "Firewall", "verdict": "drifted", "value": "Disabled"}],
                       read_at=T0, params=[("Device.X_CISCO_SecuritySettings.Firewall", "Disabled", "string")],
                       events=[DriftRecord(d1, a.id, a.name, "job_conflict", f"job {job.id}", "job_won", T0,
                                           job_id=job.id)])
    store.record_audit(job.id, d1, items=[{"setting": "Firewall", "verdict": "compliant"}], read_at=T0)
    (reading,) = store.audit_readings(job.id)
    assert reading.device_id == d1 and reading.items == ({"setting": "Firewall", "verdict": "compliant"},)
    assert store.device_parameters(d1)["Device.X_CISCO_SecuritySettings.Firewall"][0] == "Disabled"
    assert [c.device_id for c in store.job_conflicts(job.id)] == [d1]
    with pytest.raises(InvalidArgument, match="kind"):
        store.create_job(name="x", policy={"name": "x"}, selector="all", options={}, parameter_key_prefix="k-",
                         deadline=T0, tasks=[(d1, 0)], kind="reboot")
    store.set_tags(d2, ["lab", "pilot"])
    assert store.all_device_tags() == {d2: ("lab", "pilot")}


def test_secret_settings_of_assignments_are_sealed_at_rest(store):
    codec = EncryptingCodec(KeyRing((b"k" * 32,)))
    sealed = SecretStore(store, codec)
    policy = {**POLICY, "settings": {"Firewall": "Enabled", "Proxy_Password": "hunter2-secret"}}
    a = sealed.create_assignment(name="proxy", policy=policy, policy_name="p.toml", selector="all", priority=0,
                                 mode="enforce")
    assert a.policy["settings"]["Proxy_Password"] == "hunter2-secret"
    raw = store.get_assignment(a.id)
    assert "Proxy_Password" not in raw.policy["settings"] and "hunter2" not in str(raw.policy)
    assert sealed.list_assignments()[0].policy["settings"]["Proxy_Password"] == "hunter2-secret"
    assert sum(scan_secrets(store.engine).get("assignments", {}).values()) == 1
