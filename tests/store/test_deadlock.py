"""A deadlock on the tasks table is retried at once, not taken for an outage.

Two real PostgreSQL connections lock two task rows in opposite orders: update_tasks
(rows in (job id, device id) order) and another transaction (the reverse). PostgreSQL
aborts one of them with SQLSTATE 40P01 (deadlock_detected); update_tasks' transaction
is the one whose deadlock check fires first (the other connection waits 30 s before
checking), so it must run again and land, with the store's health untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa

from acs_security.store import Store, StoreConflict, open_store
from acs_security.store.deferred import _commit_group
from acs_security.store.health import is_conflict
from acs_security.store.jobs import TaskUpdate
from tests.store.conftest import T0, _postgres_schema_url, inform

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    yield from _postgres_schema_url(postgres_url)


def _job(store: Store) -> tuple[int, str, str]:
    a, b = inform("FCH0001"), inform("FCH0002")
    store.record_informs([a, b])
    first, second = sorted((a.device_id, b.device_id))
    # Rows inserted against key order: a statement that locks in the table's order takes
    # the second row first.
    job = store.create_job(name="p", policy={}, selector="all", options={}, parameter_key_prefix="k-",
                           deadline=T0 + timedelta(hours=1), tasks=[(second, 0), (first, 0)])
    assert len(store.claim_tasks(job.id, "n1", max_wave=0, limit=10, until=T0 + timedelta(seconds=30),
                                 now=T0)) == 2
    return job.id, first, second


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wait_for_lock_wait(admin: psycopg.Connection, pid: int) -> None:
    # Wait (a condition, not a time) until update_tasks' connection waits on our row lock.
    for _ in range(2000):
        row = admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError("update_tasks never waited on the row lock")


def _blocked_pid(admin: psycopg.Connection, other_pid: int) -> int:
    for _ in range(2000):
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                            (other_pid,)).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.01)
    raise AssertionError("nothing waited on the other transaction")


def _deadlock(pg_url: str, write: object, *, other_first: bool = False
              ) -> tuple[list[BaseException], Store, int, str, str]:
    store = open_store(pg_url)
    job_id, first, second = _job(store)
    errors: list[BaseException] = []
    url = _libpq(pg_url)
    with psycopg.connect(url) as other, psycopg.connect(url, autocommit=True) as admin:
        other.execute("SET deadlock_timeout = '30s'")
        # The other transaction holds one row (the second, or with other_first the first)...
        lock_order = (first, second) if other_first else (second, first)
        other.execute("UPDATE tasks SET detail = 'other' WHERE job_id = %s AND device_id = %s",
                      (job_id, lock_order[0]))
        other_pid = other.info.backend_pid

        def run() -> None:
            try:
                write(store, job_id, first, second)  # type: ignore[operator]
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        # ...update_tasks waits for it...
        _wait_for_lock_wait(admin, _blocked_pid(admin, other_pid))
        # ...and the other transaction now asks for the other row. Unless update_tasks
        # holds it, a cycle: update_tasks' backend detects it after its deadlock_timeout
        # (1 s) and is aborted.
        other.execute("UPDATE tasks SET detail = 'other' WHERE job_id = %s AND device_id = %s",
                      (job_id, lock_order[1]))
        other.commit()
        thread.join(60)
        assert not thread.is_alive()
    return errors, store, job_id, first, second


def _updates(job_id: int, *devices: str) -> list[TaskUpdate]:
    return [TaskUpdate(job_id, d, "applied", 1, 1, False, T0, detail="store", finished_at=T0)
            for d in devices]


def test_update_tasks_retries_a_deadlock_at_once(pg_url: str) -> None:
    # update_tasks locks the first row, then waits for the second the other holds.
    errors, store, job_id, first, second = _deadlock(
        pg_url, lambda s, j, a, b: s.update_tasks(_updates(j, a, b)))
    try:
        assert errors == []
        tasks = {t.device_id: t for t in store.list_tasks(job_id)}
        assert {tasks[first].state, tasks[second].state} == {"applied"}
        assert {tasks[first].detail, tasks[second].detail} == {"store"}
        assert store.health.outages == 0
    finally:
        store.close()


def test_a_grouped_update_aborted_by_a_deadlock_runs_again(pg_url: str) -> None:
    results: list[list[tuple[bool, object]]] = []

    def grouped(s: Store, j: int, a: str, b: str) -> None:
        results.append(_commit_group(s, [("update_tasks", (_updates(j, a, b),), {})]))

    errors, store, job_id, first, second = _deadlock(pg_url, grouped)
    try:
        assert errors == []
        assert results == [[(True, None)]]
        assert {t.detail for t in store.list_tasks(job_id)} == {"store"}
        assert store.health.outages == 0
    finally:
        store.close()


def test_update_tasks_locks_rows_in_key_order(pg_url: str) -> None:
    # Given the rows in reverse order, inside a group (where update_tasks does not retry):
    # sorted, it waits for the first row holding nothing, so the other transaction (in
    # key order) finishes and no deadlock happens; unsorted, it held the second: a cycle.
    def grouped(s: Store, j: int, a: str, b: str) -> None:
        with s.group():
            s.update_tasks(_updates(j, b, a))

    errors, store, job_id, _, _ = _deadlock(pg_url, grouped, other_first=True)
    try:
        assert errors == []
        assert {t.detail for t in store.list_tasks(job_id)} == {"store"}
    finally:
        store.close()


def test_renew_claims_locks_rows_in_key_order(pg_url: str) -> None:
    # The other transaction locks in key order; renewing inside a group (no retry) must
    # wait for the first row holding nothing. In the table's order it held the second.
    def grouped(s: Store, j: int, a: str, b: str) -> None:
        with s.group():
            assert s.renew_claims("n1", until=T0 + timedelta(seconds=60)) == {(j, a), (j, b)}

    errors, store, _, _, _ = _deadlock(pg_url, grouped, other_first=True)
    try:
        assert errors == []
    finally:
        store.close()


@pytest.mark.parametrize("write", ["end_tasks", "release_claims"])
def test_ending_tasks_and_releasing_claims_lock_rows_in_key_order(pg_url: str, write: str) -> None:
    # A cancel (end_tasks) and a node's stop (release_claims) meet the sessions' outcomes
    # too: inside a group (no retry) each must wait for the first row, holding nothing.
    done: list[int] = []

    def grouped(s: Store, j: int, a: str, b: str) -> None:
        with s.group():
            if write == "end_tasks":
                done.append(s.end_tasks(j, state="cancelled", detail="cancelled", now=T0))
            else:
                done.append(s.release_claims("n1"))

    errors, store, job_id, _, _ = _deadlock(pg_url, grouped, other_first=True)
    try:
        assert errors == [] and done == [2]
        tasks = store.list_tasks(job_id)
        if write == "end_tasks":
            assert {t.state for t in tasks} == {"cancelled"}
        else:
            # released: another node takes both at once, though the claims had 30 s left
            assert len(store.claim_tasks(job_id, "n2", max_wave=0, limit=10, until=T0 + timedelta(seconds=30),
                                         now=T0)) == 2
    finally:
        store.close()


def test_renew_claims_retries_a_deadlock_at_once(pg_url: str) -> None:
    renewed: list[set[tuple[int, str]]] = []
    errors, store, job_id, first, second = _deadlock(
        pg_url, lambda s, j, a, b: renewed.append(s.renew_claims("n1", until=T0 + timedelta(seconds=60))))
    try:
        assert errors == []
        assert renewed == [{(job_id, first), (job_id, second)}]
        assert store.health.outages == 0
    finally:
        store.close()


def test_a_deadlock_is_a_conflict_not_an_outage(pg_url: str) -> None:
    # The classification alone, on the exception psycopg raises for 40P01.
    exc = psycopg.errors.DeadlockDetected("deadlock detected")
    assert is_conflict(sa.exc.OperationalError("UPDATE", {}, exc))
    assert not is_conflict(sa.exc.OperationalError("UPDATE", {}, psycopg.OperationalError("down")))
    assert issubclass(StoreConflict, Exception)
