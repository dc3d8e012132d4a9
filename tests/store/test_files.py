"""Files served to one phone and configuration backups in the store (store/files.py), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from acs_security.secrets import EncryptingCodec, KeyRing
from acs_security.store import InvalidArgument, Store, UnknownDevice, open_store
from acs_security.store import schema as t
from acs_security.store.files import BackupRecord, FileRecord
from acs_security.store.jobs import TaskUpdate
from tests.store.conftest import T0, inform

CFG = ('<?xml version="1.0" encoding="UTF-8"?>\n<flat-profile>\n'
       "  <Proxy_Password>p4ss-word</Proxy_Password>\n</flat-profile>\n")


def _device(store: Store, serial: str = "F1") -> str:
    record = inform(serial)
    store.record_informs([record])
    return record.device_id


def _file(store: Store, file_id: int) -> FileRecord:
    """A file row the test made (get_file answers None for an unknown id)."""
    rec = store.get_file(file_id)
    assert rec is not None
    return rec


def _device_file(store: Store, device_id: str, **kwargs: Any) -> FileRecord:
    rec = store.device_file(device_id, **kwargs)
    assert rec is not None
    return rec


def _backup(store: Store, device_id: str, version: int | None = None) -> BackupRecord:
    rec = store.get_backup(device_id, version)
    assert rec is not None
    return rec


def _job(store: Store, device_id: str) -> int:
    job = store.create_job(name="p", policy={}, selector="all", options={}, parameter_key_prefix="k-",
                           deadline=T0 + timedelta(hours=1), tasks=[(device_id, 0)])
    return job.id


def _set_state(store: Store, job_id: int, device_id: str, state: str) -> None:
    store.update_tasks([TaskUpdate(job_id=job_id, device_id=device_id, state=state, attempts=0, sent=1,
                                   cr_exhausted=False, updated_at=T0)])


def test_a_file_is_offered_fetched_and_finished(store: Store, clock) -> None:
    device = _device(store)
    rec = store.create_file(device_id=device, kind="download", command_key="k-1", auth="digest",
                            expires_at=T0 + timedelta(minutes=15), content=CFG)
    assert rec.state == "offered" and rec.size == len(CFG.encode()) and rec.content == CFG
    assert "p4ss-word" not in repr(rec)
    assert _file(store, rec.id).content == CFG
    assert store.note_fetch(rec.id, now=T0, single_use=False) == "ok"
    assert store.note_fetch(rec.id, now=T0, single_use=False) == "ok"  # digest: fetched again
    got = _file(store, rec.id)
    assert got.state == "fetched" and got.fetches == 2 and got.fetched_at == T0
    assert _device_file(store, device, kind="download", command_key="k-1", live=True).id == rec.id
    assert store.finish_file(rec.id, state="completed") is True
    assert store.finish_file(rec.id, state="failed") is False  # over already
    assert store.note_fetch(rec.id, now=T0, single_use=False) == "gone"
    assert store.device_file(device, kind="download", live=True) is None
    assert _device_file(store, device, kind="download").state == "completed"


def test_live_files_of_a_key_prefix_are_found_and_like_wildcards_are_not(store: Store) -> None:
    device = _device(store)
    later = T0 + timedelta(minutes=15)
    a = store.create_file(device_id=device, kind="download", command_key="acs-des-1-r1.aaaaaa", auth="signed",
                          expires_at=later, content=CFG)
    b = store.create_file(device_id=device, kind="download", command_key="acs-des-2-r4.bbbbbb", auth="signed",
                          expires_at=later, content=CFG)
    store.create_file(device_id=device, kind="download", command_key="acs-sec-job-3.cccccc", auth="signed",
                      expires_at=later, content=CFG)
    store.create_file(device_id=device, kind="upload", command_key="acs-des-1-r1.dddddd", auth="signed",
                      expires_at=later)
    store.finish_file(a.id, state="completed")
    found = store.live_files(device, kind="download", key_prefix="acs-des-")
    assert [f.id for f in found] == [b.id] and found[0].content is None
    assert store.live_files(device, kind="download", key_prefix="acs_des%") == []  # no LIKE pattern
    assert store.live_files(_device(store, "F2"), kind="download", key_prefix="acs-des-") == []
    # Ended transfers of assignments beyond the newest ones are deleted; live ones and jobs' stay.
    ended = [store.create_file(device_id=device, kind="download", command_key=f"acs-des-1-r1.{i:06x}",
                               auth="signed", expires_at=later, content=CFG) for i in range(4)]
    for f in ended:
        store.finish_file(f.id, state="failed")
    assert store.prune_files(device, key_prefix="acs-des-", keep=2) == 3  # a and the two oldest of ended
    with store._read("read the rows") as conn:
        ids = {row.id for row in conn.execute(sa.select(t.device_files.c.id))}
    assert a.id not in ids and ended[0].id not in ids and ended[1].id not in ids
    assert {b.id, ended[2].id, ended[3].id} <= ids and len(ids) == 5


def test_a_signed_file_is_used_once_and_not_after_it_expires(store: Store) -> None:
    device = _device(store)
    rec = store.create_file(device_id=device, kind="download", command_key="k-1", auth="signed",
                            expires_at=T0 + timedelta(minutes=15), content=CFG)
    assert store.note_fetch(rec.id, now=T0, single_use=True) == "ok"
    assert store.note_fetch(rec.id, now=T0, single_use=True) == "used"
    other = store.create_file(device_id=device, kind="download", command_key="k-2", auth="signed",
                              expires_at=T0 + timedelta(minutes=15), content=CFG)
    assert store.note_fetch(other.id, now=T0 + timedelta(minutes=15), single_use=True) == "gone"
    assert store.note_fetch(999_999, now=T0, single_use=True) == "gone"


def test_bad_file_arguments_are_refused(store: Store) -> None:
    device = _device(store)
    later = T0 + timedelta(minutes=1)
    with pytest.raises(InvalidArgument, match="kind"):
        store.create_file(device_id=device, kind="firmware", command_key="k", auth="digest", expires_at=later)
    with pytest.raises(InvalidArgument, match="auth"):
        store.create_file(device_id=device, kind="upload", command_key="k", auth="basic", expires_at=later)
    with pytest.raises(InvalidArgument, match="content"):
        store.create_file(device_id=device, kind="download", command_key="k", auth="digest", expires_at=later)
    with pytest.raises(UnknownDevice):
        store.create_file(device_id="nobody", kind="upload", command_key="k", auth="digest", expires_at=later)


def test_file_contents_are_encoded_with_the_store_codec(store_url, clock) -> None:
    codec = EncryptingCodec(KeyRing((b"k" * 32,)))
    store = open_store(store_url, clock=clock, secret_codec=codec)
    try:
        device = _device(store)
        rec = store.create_file(device_id=device, kind="download", command_key="k", auth="digest",
                                expires_at=T0 + timedelta(minutes=1), content=CFG)
        backup, _ = store.store_backup(device_id=device, content=CFG, report={}, keep=5)
        with store.engine.connect() as conn:
            raw = conn.execute(sa.select(t.device_files.c.content)).scalar_one()
            blob = conn.execute(sa.select(t.config_blobs.c.content)).scalar_one()
        assert raw.startswith("acs1:") and "p4ss" not in raw and blob.startswith("acs1:")
        assert _file(store, rec.id).content == CFG
        assert _backup(store, device, backup.version).content == CFG
    finally:
        store.close()


def test_overdue_transfers_retry_unfetched_files_and_fault_silent_ones(store: Store) -> None:
    a, b, c = _device(store, "A"), _device(store, "B"), _device(store, "C")
    job = store.create_job(name="p", policy={}, selector="all", options={}, parameter_key_prefix="k-",
                           deadline=T0 + timedelta(hours=1), tasks=[(a, 0), (b, 0), (c, 0)])
    for device in (a, b, c):
        _set_state(store, job.id, device, "transferring")
    unfetched = store.create_file(device_id=a, kind="download", command_key=job.parameter_key, auth="signed",
                                  job_id=job.id, expires_at=T0 + timedelta(minutes=15), content=CFG)
    fetched = store.create_file(device_id=b, kind="download", command_key=job.parameter_key, auth="digest",
                                job_id=job.id, expires_at=T0 + timedelta(minutes=15), content=CFG)
    store.note_fetch(fetched.id, now=T0, single_use=False)
    store.create_file(device_id=c, kind="upload", command_key=job.parameter_key, auth="digest",
                      job_id=job.id, expires_at=T0 + timedelta(minutes=15))
    assert store.overdue_transfers(now=T0 + timedelta(minutes=10), transfer_timeout=3600) == []
    out = store.overdue_transfers(now=T0 + timedelta(minutes=16), transfer_timeout=3600)
    assert sorted((d, e) for _, d, e, _ in out) == [(a, "transfer_lost"), (c, "transfer_lost")]
    tasks = {r.device_id: r for r in store.list_tasks(job.id)}
    assert tasks[a].state == "pending" and "did not fetch its file" in (tasks[a].detail or "")
    assert tasks[c].state == "pending" and "upload place" in (tasks[c].detail or "")
    assert _file(store, unfetched.id).state == "expired"
    out = store.overdue_transfers(now=T0 + timedelta(hours=1, seconds=1), transfer_timeout=3600)
    assert out == [(job.id, b, "transfer_failed", "no TransferComplete within 3600 s of the Download")]
    tasks = {r.device_id: r for r in store.list_tasks(job.id)}
    assert tasks[b].state == "faulted" and tasks[b].finished_at is not None
    assert _file(store, fetched.id).state == "failed"
    # A task that is no longer waiting is left alone; the file ends all the same.
    again = store.create_file(device_id=a, kind="download", command_key=job.parameter_key, auth="signed",
                              job_id=job.id, expires_at=T0 + timedelta(minutes=1), content=CFG)
    assert store.overdue_transfers(now=T0 + timedelta(minutes=2), transfer_timeout=3600) == []
    assert _file(store, again.id).state == "expired"


def test_transferring_tasks_are_active(store: Store) -> None:
    device = _device(store)
    job_id = _job(store, device)
    _set_state(store, job_id, device, "transferring")
    assert [r.device_id for r in store.active_tasks()] == [device]
    assert [r[0].state for r in store.device_tasks(device)] == ["transferring"]
    # A final state is never overwritten; transferring is not final.
    _set_state(store, job_id, device, "applied")
    assert store.list_tasks(job_id)[0].state == "applied"


def test_backups_are_versioned_deduplicated_and_pruned(store: Store, clock) -> None:
    a, b = _device(store, "A"), _device(store, "B")
    v1, new = store.store_backup(device_id=a, content=CFG, report={"unknown": []}, keep=3)
    assert new and v1.version == 1 and v1.uploads == 1 and v1.size == len(CFG.encode())
    clock.advance(60)
    same, new = store.store_backup(device_id=a, content=CFG, report={"unknown": ["X"]}, keep=3)
    assert not new and same.version == 1 and same.uploads == 2 and same.confirmed_at > v1.confirmed_at
    assert same.report == {"unknown": ["X"]}
    # Another device with the same content shares the stored content.
    other, new = store.store_backup(device_id=b, content=CFG, report={}, keep=3)
    assert new and other.version == 1 and other.sha256 == v1.sha256
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.config_blobs)).scalar_one() == 1
    contents = [CFG.replace("p4ss-word", f"pw{i}") for i in range(2, 6)]
    for i, text in enumerate(contents, start=2):
        clock.advance(60)
        rec, new = store.store_backup(device_id=a, content=text, report={}, keep=3)
        assert new and rec.version == i
    assert [r.version for r in store.list_backups(device_id=a)] == [5, 4, 3]
    assert store.count_backups(device_id=a) == 3 and store.count_backups() == 4
    assert _backup(store, a).version == 5 and _backup(store, a).content == contents[-1]
    assert store.get_backup(a, 1) is None  # pruned
    assert _backup(store, b, 1).content == CFG  # still used by b
    with store.engine.connect() as conn:
        # Contents of pruned versions nobody uses are gone: 3 of a, 1 shared with b.
        assert conn.execute(sa.select(sa.func.count()).select_from(t.config_blobs)).scalar_one() == 4
    assert store.backup_versions([a, b, "nobody"]) == {a: 5, b: 1}


def test_an_upload_links_its_file_row(store: Store) -> None:
    device = _device(store)
    place = store.create_file(device_id=device, kind="upload", command_key="k-9", auth="digest",
                              expires_at=T0 + timedelta(minutes=15))
    rec, _ = store.store_backup(device_id=device, content=CFG, report={}, keep=5, file_id=place.id)
    got = _file(store, place.id)
    assert got.backup_id == rec.id and got.state == "fetched" and got.sha256 == rec.sha256
    assert got.content is None


def test_deleting_a_device_removes_its_files_and_backups(store: Store) -> None:
    device = _device(store)
    store.create_file(device_id=device, kind="upload", command_key="k", auth="digest",
                      expires_at=T0 + timedelta(minutes=15))
    store.store_backup(device_id=device, content=CFG, report={}, keep=5)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(t.devices).where(t.devices.c.id == device))
    assert store.list_backups() == [] and store.device_file(device, kind="upload") is None
