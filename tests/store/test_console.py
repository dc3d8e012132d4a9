"""Console sessions and the console's reads (a device's jobs, outcomes over time), on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from acs_security.store import InvalidArgument, Store, make_device_id
from acs_security.store.jobrecords import TaskUpdate
from tests.store.conftest import CISCO_CLASS, CISCO_OUI, T0, FakeClock, inform


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _id(serial: str) -> str:
    return make_device_id(CISCO_OUI, CISCO_CLASS, serial)


def test_a_session_reads_back_with_its_token_and_ends_at_sign_out(store: Store) -> None:
    token = store.create_token("alice", "operator", _hash("tok-a"), T0)
    store.create_console_session(_hash("s1"), token.id, T0, T0 + timedelta(hours=8))
    rec = store.console_session(_hash("s1"))
    assert rec is not None
    assert (rec.token_name, rec.role, rec.token_revoked_at) == ("alice", "operator", None)
    assert (rec.created_at, rec.expires_at, rec.last_seen) == (T0, T0 + timedelta(hours=8), T0)
    assert "alice" in repr(rec) and _hash("s1") not in repr(rec)
    store.touch_console_session(_hash("s1"), T0 + timedelta(minutes=5))
    rec = store.console_session(_hash("s1"))
    assert rec is not None and rec.last_seen == T0 + timedelta(minutes=5)
    assert store.end_console_session(_hash("s1")) is True
    assert store.console_session(_hash("s1")) is None
    assert store.end_console_session(_hash("s1")) is False


def test_a_revoked_token_shows_in_its_sessions_at_once(store: Store) -> None:
    token = store.create_token("bob", "viewer", _hash("tok-b"), T0)
    store.create_console_session(_hash("s2"), token.id, T0, T0 + timedelta(hours=1))
    store.revoke_token("bob", T0 + timedelta(minutes=1))
    rec = store.console_session(_hash("s2"))
    assert rec is not None and rec.token_revoked_at == T0 + timedelta(minutes=1)


def test_expired_sessions_are_purged_when_a_new_one_is_made(store: Store) -> None:
    token = store.create_token("carol", "admin", _hash("tok-c"), T0)
    store.create_console_session(_hash("old"), token.id, T0, T0 + timedelta(hours=1))
    store.create_console_session(_hash("new"), token.id, T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    assert store.console_session(_hash("old")) is None
    assert store.count_console_sessions(token_id=token.id) == 1


def test_bad_session_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="64 lower-case hex"):
        store.console_session("not-a-hash")
    with pytest.raises(InvalidArgument, match="token_id"):
        store.create_console_session(_hash("x"), "1", T0, T0)  # type: ignore[arg-type]


def test_devices_by_ids_and_a_devices_jobs(store: Store, clock: FakeClock) -> None:
    store.record_informs([inform("FCH1"), inform("FCH2"), inform("FCH3")])
    store.set_tags(_id("FCH2"), ["pilot"])
    found = store.devices_by_ids([_id("FCH2"), _id("FCH1"), _id("NOPE")])
    assert [d.serial_number for d in found] == ["FCH1", "FCH2"]
    assert found[1].tags == ("pilot",)
    assert store.devices_by_ids([]) == []
    first = store.create_job(name="one", policy={}, selector="all", options={}, parameter_key_prefix="acs-",
                             deadline=T0 + timedelta(days=1), tasks=[(_id("FCH1"), 0), (_id("FCH2"), 0)])
    second = store.create_job(name="two", policy={}, selector="all", options={}, parameter_key_prefix="acs-",
                              deadline=T0 + timedelta(days=1), tasks=[(_id("FCH2"), 0)])
    store.update_tasks([TaskUpdate(second.id, _id("FCH2"), "faulted", 1, 1, False, T0, fault_code=9003,
                                   faults=({"name": "Device.X", "code": 9007, "string": "bad"},),
                                   finished_at=T0)])
    tasks = store.device_job_history(_id("FCH2"))
    assert [(d.job_id, d.job_name) for d in tasks] == [(second.id, "two"), (first.id, "one")]
    assert tasks[0].task.state == "faulted" and tasks[0].task.faults[0]["code"] == 9007
    assert store.device_job_history(_id("FCH3")) == []


def test_outcomes_are_counted_per_time_bucket(store: Store) -> None:
    serials = [f"FCH{i}" for i in range(6)]
    store.record_informs([inform(s) for s in serials])
    job = store.create_job(name="j", policy={}, selector="all", options={}, parameter_key_prefix="acs-",
                           deadline=T0 + timedelta(days=1), tasks=[(_id(s), 0) for s in serials])
    finish = {"FCH0": 1, "FCH1": 4, "FCH2": 11, "FCH3": 12, "FCH4": 25}  # seconds after T0
    updates = [TaskUpdate(job.id, _id(s), "faulted" if s == "FCH3" else "applied", 1, 1, False,
                          T0 + timedelta(seconds=sec), finished_at=T0 + timedelta(seconds=sec, milliseconds=400))
               for s, sec in finish.items()]
    store.update_tasks(updates)
    buckets = store.task_outcomes_over_time(job.id, origin=T0, bucket_seconds=10)
    assert buckets == {(0, "applied"): 2, (1, "applied"): 1, (1, "faulted"): 1, (2, "applied"): 1}
    with pytest.raises(InvalidArgument):
        store.task_outcomes_over_time(job.id, origin=T0, bucket_seconds=0)


def test_devices_are_counted_by_model_and_firmware(store: Store) -> None:
    store.record_informs([inform("FCH1"), inform("FCH2"), inform("FCH3", software_version=None),
                          inform("FCH4", product_class="CP-7841-3PCC")])
    assert store.device_models() == {(CISCO_CLASS, "12.0.1"): 2, (CISCO_CLASS, None): 1,
                                      ("CP-7841-3PCC", "12.0.1"): 1}
