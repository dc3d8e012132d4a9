"""Task claims and conditional job decisions (store/claims.py) on SQLite and PostgreSQL:
what lets several ACS nodes share one job without doing a device twice."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa

from acs_security.store import Store, open_store
from acs_security.store import schema as t
from acs_security.store.jobs import TaskUpdate
from tests.store.conftest import T0, _postgres_schema_url, inform


def _job(store: Store, n: int = 6, waves: list[int] | None = None) -> tuple[int, list[str]]:
    records = [inform(f"S{i:03d}", connection_request_url=None if i == n - 1 else "http://192.0.2.1/cr")
               for i in range(n)]
    store.record_informs(records)
    ids = [r.device_id for r in records]
    waves = waves or [0] * n
    job = store.create_job(name="p", policy={}, selector="all", options={}, parameter_key_prefix="k-",
                           deadline=T0 + timedelta(hours=1), tasks=list(zip(ids, waves, strict=True)))
    return job.id, ids


def _update(job_id: int, device_id: str, state: str, node: str = "a") -> TaskUpdate:
    return TaskUpdate(job_id=job_id, device_id=device_id, state=state, attempts=0, sent=1,
                      cr_exhausted=False, updated_at=T0, node=node,
                      finished_at=T0 if state not in ("pending", "requested", "in_session") else None)


def test_claims_are_disjoint_lapse_and_are_released(store: Store) -> None:
    job_id, ids = _job(store)
    until = T0 + timedelta(seconds=30)
    a = store.claim_tasks(job_id, "a", max_wave=0, limit=4, until=until, now=T0)
    b = store.claim_tasks(job_id, "b", max_wave=0, limit=4, until=until, now=T0)
    assert [r.device_id for r in a] == ids[:4] and [r.device_id for r in b] == ids[4:]
    assert store.claim_tasks(job_id, "c", max_wave=0, limit=4, until=until, now=T0) == []
    # a renews, b does not: after the lease only b's devices go to c.
    assert store.renew_claims("a", until=T0 + timedelta(seconds=90)) == {(job_id, d) for d in ids[:4]}
    later = T0 + timedelta(seconds=31)
    c = store.claim_tasks(job_id, "c", max_wave=0, limit=10, until=later + timedelta(seconds=30), now=later)
    assert [r.device_id for r in c] == ids[4:]
    # A final task is no longer renewed (the claimant forgets it); released claims return.
    store.update_tasks([_update(job_id, ids[0], "applied")])
    assert (job_id, ids[0]) not in store.renew_claims("a", until=T0 + timedelta(seconds=90))
    assert store.release_claims("a") == 4
    d = store.claim_tasks(job_id, "d", max_wave=0, limit=10, until=later + timedelta(seconds=30), now=later)
    assert [r.device_id for r in d] == ids[1:4]


def test_claims_respect_waves_retry_times_and_exhausted_requests(store: Store) -> None:
    job_id, ids = _job(store, waves=[0, 0, 1, 1, 2, 2])
    store.update_tasks([
        TaskUpdate(job_id=job_id, device_id=ids[0], state="pending", attempts=1, sent=0, cr_exhausted=False,
                   updated_at=T0, next_attempt=T0 + timedelta(seconds=20)),
        TaskUpdate(job_id=job_id, device_id=ids[1], state="pending", attempts=3, sent=0, cr_exhausted=True,
                   updated_at=T0),
    ])
    until = T0 + timedelta(seconds=30)
    got = store.claim_tasks(job_id, "a", max_wave=1, limit=10, until=until, now=T0)
    assert [r.device_id for r in got] == ids[2:4]
    got = store.claim_tasks(job_id, "b", max_wave=1, limit=10, until=until, now=T0 + timedelta(seconds=21))
    assert [r.device_id for r in got] == [ids[0]] and got[0].next_attempt == T0 + timedelta(seconds=20)


def test_a_final_state_is_never_overwritten_but_a_device_outcome_beats_absence(store: Store) -> None:
    job_id, ids = _job(store)
    store.update_tasks([_update(job_id, ids[0], "applied", "a"), _update(job_id, ids[1], "unreachable", "a")])
    # Another node, late: its stale "pending" and "faulted" must not replace "applied";
    # the device's own "applied" replaces the deadline's "unreachable".
    store.update_tasks([_update(job_id, ids[0], "pending", "b")])
    store.update_tasks([_update(job_id, ids[0], "faulted", "b"), _update(job_id, ids[1], "applied", "b")])
    rows = {r.device_id: r for r in store.list_tasks(job_id, limit=10)}
    assert (rows[ids[0]].state, rows[ids[0]].node) == ("applied", "a")
    assert (rows[ids[1]].state, rows[ids[1]].node) == ("applied", "b")


def test_job_decisions_are_conditional(store: Store) -> None:
    job_id, ids = _job(store, waves=[0, 0, 1, 1, 1, 1])
    assert store.transition_job(job_id, from_states=["running"], expect_wave=0, current_wave=1)
    assert not store.transition_job(job_id, from_states=["running"], expect_wave=0, current_wave=1)
    assert store.transition_job(job_id, from_states=["running"], expect_wave=1, state="halted", reason="r")
    assert not store.transition_job(job_id, from_states=["running"], state="completed", finished=True)
    assert store.transition_job(job_id, from_states=["halted"], state="running", brake_released=1,
                                clear_reason=True)
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.current_wave, job.brake_released, job.reason) == ("running", 1, 1, None)
    store.update_tasks([_update(job_id, ids[0], "in_session")])
    assert store.contactable_tasks(job_id, 1) == 3  # the last device reported no URL
    assert store.end_tasks(job_id, state="cancelled", detail="cancelled by operator", now=T0) == 5
    counts = store.task_counts(job_id)
    assert counts == {"in_session": 1, "cancelled": 5}
    assert store.device_tasks(ids[1]) == []
    [(rec, state, wave, brake)] = store.device_tasks(ids[0])
    assert (rec.state, state, wave, brake) == ("in_session", "running", 1, 1)


def test_job_timing_from_the_task_rows(store: Store) -> None:
    job_id, ids = _job(store)
    job = store.get_job(job_id)
    assert job is not None
    created = job.created_at
    store.update_tasks([
        TaskUpdate(job_id=job_id, device_id=d, state="applied", attempts=0, sent=1, cr_exhausted=False,
                   updated_at=T0, finished_at=created + timedelta(seconds=i + 1))
        for i, d in enumerate(ids[:4])])
    done, last, p50, p99 = store.job_timing(job_id, created)
    assert (done, last, p50, p99) == (4, created + timedelta(seconds=4), 3.0, 4.0)


@pytest.fixture
def pg_store_url(postgres_url: str):
    yield from _postgres_schema_url(postgres_url)


@pytest.mark.postgres
def test_postgresql_claims_skip_rows_another_node_is_claiming(pg_store_url: str) -> None:
    store_url = pg_store_url
    store = open_store(store_url)
    try:
        _skip_locked(store, store_url)
    finally:
        store.close()


def _skip_locked(store: Store, store_url: str) -> None:
    job_id, ids = _job(store)
    url = sa.engine.make_url(store_url)
    options = url.query.get("options")
    assert options is None or isinstance(options, str)  # one options= parameter in the URL
    # Another node's claim in progress: its transaction holds the first two rows.
    with psycopg.connect(url.set(drivername="postgresql", query={}).render_as_string(hide_password=False),
                         options=options) as other:
        other.execute("SELECT device_id FROM tasks WHERE job_id = %s AND device_id = ANY(%s) FOR UPDATE",
                      (job_id, ids[:2]))
        got = store.claim_tasks(job_id, "b", max_wave=0, limit=3, until=T0 + timedelta(seconds=30), now=T0)
        assert [r.device_id for r in got] == ids[2:5]
    with store.engine.connect() as conn:
        owners = dict(conn.execute(sa.select(t.tasks.c.device_id, t.tasks.c.claimed_by)).all())
    assert [owners[d] for d in ids] == [None, None, "b", "b", "b", None]
