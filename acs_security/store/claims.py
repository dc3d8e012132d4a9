"""Several nodes on one database: task claims with a lease, and job decisions as
conditional updates (a mixin of :class:`Store`, through JobsMixin).

A job runner claims a batch of a job's pending tasks for a while (``claim_until``); only
the claiming node sends those devices connection requests. Claims are renewed at every
sync; a node that dies stops renewing, its claims lapse and another node's next claim
takes the devices. On PostgreSQL the candidates are selected ``FOR UPDATE SKIP LOCKED``,
so two nodes claiming at once get disjoint batches without waiting for each other (SQLite
has one writer: its claims are serialised by the write lock).

Job-level decisions (open the next wave, halt, complete, cancel, resume, expire at the
deadline) are conditional updates: whichever node decides first wins and the others'
identical decision changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument, StoreConflict
from acs_security.store.jobrecords import task_from_row as _task
from acs_security.store.records import check_aware, check_text

__all__ = ["ClaimsMixin", "ACTIVE_TASK_STATES", "CONFLICT_RETRIES"]

ACTIVE_TASK_STATES = t.ACTIVE_TASK_STATES


# On every session's path with a job running: built once (building costs more than running).
_DEVICE_TASKS = (
    sa.select(t.tasks, t.jobs.c.state.label("job_state"), t.jobs.c.current_wave.label("job_wave"),
              t.jobs.c.brake_released.label("job_brake"))
    .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
    .where(t.tasks.c.device_id == sa.bindparam("d_device"))
    .order_by(t.tasks.c.job_id)
)


#: Times a transaction aborted by a deadlock (StoreConflict) is run in all.
CONFLICT_RETRIES = 5
#: Devices named in one UPDATE by key (SQLite's bound-parameter limit, statement size).
_KEY_CHUNK = 1000


class ClaimsMixin:
    _read: Any
    _write: Any
    _now: Any
    _grouped: Any

    def claim_tasks(self, job_id: int, node: str, *, max_wave: int, limit: int,
                    until: datetime, now: datetime) -> list[Any]:
        """Claim up to ``limit`` of the job's active tasks in waves <= ``max_wave`` that no
        live claim holds, whose next connection request is due and whose requests are not
        exhausted; returns their TaskRecords (claimed by ``node`` until ``until``)."""
        check_text("node", node, empty=False)
        check_aware("until", until)
        check_aware("now", now)
        if not 1 <= limit <= 10_000:
            raise InvalidArgument(f"limit must be 1-10000, got {limit}")
        c = t.tasks.c
        pick = (
            sa.select(c.job_id, c.device_id)
            .where(c.job_id == job_id, t.ACTIVE_TASKS_SQL, c.wave <= max_wave,
                   sa.not_(c.cr_exhausted),
                   sa.or_(c.claimed_by.is_(None), c.claim_until < now),
                   sa.or_(c.next_attempt.is_(None), c.next_attempt <= now))
            .order_by(c.position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._write("claim tasks") as conn:
            ids = [r.device_id for r in conn.execute(pick)]
            if not ids:
                return []
            conn.execute(sa.update(t.tasks)
                         .where(c.job_id == job_id, c.device_id.in_(ids))
                         .values(claimed_by=node, claim_until=until))
            rows = conn.execute(sa.select(t.tasks).where(c.job_id == job_id, c.device_id.in_(ids))
                                .order_by(c.position)).all()
        return [_task(r) for r in rows]

    def renew_claims(self, node: str, *, until: datetime) -> set[tuple[int, str]]:
        """Extend the node's claims on tasks still active; returns their (job id, device id)
        so the node can forget the ones another node finished.
        Raises StoreConflict, StoreUnavailable/StoreError."""
        check_aware("until", until)
        c = t.tasks.c
        keys = self._update_in_key_order("renew claims", sa.and_(c.claimed_by == node, t.ACTIVE_TASKS_SQL),
                                         {"claim_until": until})
        return set(keys)

    def release_claims(self, node: str) -> int:
        """Drop every claim of ``node`` (at start, a node's previous life's claims; at a
        clean stop, so others take the devices at once). Returns how many."""
        c = t.tasks.c
        return len(self._update_in_key_order("release claims", c.claimed_by == node,
                                             {"claimed_by": None, "claim_until": None}))

    def _update_in_key_order(self, what: str, where: Any, values: dict[str, Any]) -> list[tuple[int, str]]:
        """Update the task rows matching ``where``; returns their (job id, device id).

        The rows are locked in (job id, device id) order first (PostgreSQL: ``SELECT ... ORDER
        BY ... FOR UPDATE``; SQLite has no row locks), the order update_tasks writes in: an
        UPDATE by a condition locks in the table's order, and renewing claims that way
        deadlocked with the sessions' outcomes at 100,000 phones ("cannot renew claims:
        deadlock detected"). The UPDATE then names the locked rows by key: an ``IN
        (sub-select ... FOR UPDATE)`` form took 1-2 s for 178 claimed rows of a 100,000-task
        job and held the sessions' outcomes behind it. A deadlock PostgreSQL still reports is
        run again at once, as in update_tasks.
        Raises StoreConflict, StoreUnavailable/StoreError."""
        c = t.tasks.c
        lock = sa.select(c.job_id, c.device_id).where(where).order_by(c.job_id, c.device_id).with_for_update()
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self._write(what) as conn:
                    keys = [(r.job_id, r.device_id) for r in conn.execute(lock)]
                    by_job: dict[int, list[str]] = {}
                    for job_id, device_id in keys:
                        by_job.setdefault(job_id, []).append(device_id)
                    for job_id, devices in by_job.items():
                        for i in range(0, len(devices), _KEY_CHUNK):
                            conn.execute(sa.update(t.tasks)
                                         .where(c.job_id == job_id, c.device_id.in_(devices[i:i + _KEY_CHUNK]))
                                         .values(**values))
                    return keys
            except StoreConflict:
                if self._grouped() or attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def device_tasks(self, device_id: str) -> list[tuple[Any, str, int, int]]:
        """The device's active tasks of running or halted jobs, each with its job's state,
        current wave and released brake: what a session needs, from any node.

        One statement whose only condition on tasks is the device id (its index); states
        are filtered here. Conditions on the task state let a planner walk a job's tasks by
        (job_id, state) instead, one row per device of the job for every session (seen on
        SQLite: the cost grew with the fleet)."""
        with self._read("read a device's tasks") as conn:
            rows = conn.execute(_DEVICE_TASKS, {"d_device": device_id}).all()
        return [(_task(r), r.job_state, r.job_wave, r.job_brake) for r in rows
                if r.state in ACTIVE_TASK_STATES and r.job_state in ("running", "halted")]

    def transition_job(self, job_id: int, *, from_states: Sequence[str], expect_wave: int | None = None,
                       state: str | None = None, current_wave: int | None = None,
                       reason: str | None = None, brake_released: int | None = None,
                       finished: bool = False, clear_reason: bool = False) -> bool:
        """Change the job only if it is in one of ``from_states`` (and at ``expect_wave``):
        True if this call made the change, False if another node (or operator) got there
        first."""
        j = t.jobs.c
        now = self._now()
        values: dict[str, Any] = {"updated_at": now}
        if state is not None:
            values["state"] = state
        if current_wave is not None:
            values["current_wave"] = current_wave
        if reason is not None or clear_reason:
            values["reason"] = reason
        if brake_released is not None:
            values["brake_released"] = brake_released
        if finished:
            values["finished_at"] = now
        cond = [j.id == job_id, j.state.in_(list(from_states))]
        if expect_wave is not None:
            cond.append(j.current_wave == expect_wave)
        with self._write("change a job") as conn:
            return conn.execute(sa.update(t.jobs).where(*cond).values(**values)).rowcount == 1

    def end_tasks(self, job_id: int, *, state: str, detail: str, now: datetime,
                  from_states: Sequence[str] = ("pending", "requested")) -> int:
        """Give every task of the job still in ``from_states`` the final ``state`` (cancel,
        deadline) in one statement; tasks in a session keep theirs. Returns how many."""
        check_aware("now", now)
        c = t.tasks.c
        # In key order, as the sessions' outcomes lock (see _update_in_key_order).
        return len(self._update_in_key_order(
            "end tasks", sa.and_(c.job_id == job_id, c.state.in_(list(from_states))),
            {"state": state, "detail": detail, "updated_at": now, "finished_at": now,
             "claimed_by": None, "claim_until": None}))

    def contactable_tasks(self, job_id: int, wave: int) -> int:
        """Pending tasks of ``wave`` that still get connection requests (their device
        reported a ConnectionRequestURL, a UDP address or a Jabber ID)."""
        c, d = t.tasks.c, t.devices.c
        query = (
            sa.select(sa.func.count()).select_from(t.tasks.join(t.devices, d.id == c.device_id))
            .where(c.job_id == job_id, c.wave == wave, c.state == "pending", sa.not_(c.cr_exhausted),
                   sa.or_(d.connection_request_url.is_not(None), d.udp_connection_request_address.is_not(None),
                          d.xmpp_jid.is_not(None)))
        )
        with self._read("count contactable tasks") as conn:
            return int(conn.execute(query).scalar_one())

    def job_timing(self, job_id: int, created_at: datetime) -> tuple[int, datetime | None, float | None, float | None]:
        """(devices with an outcome, the last outcome's time, p50 and p99 seconds from the
        job's creation to an outcome), from the task rows, so any node reports the same."""
        c = t.tasks.c
        done = sa.and_(c.job_id == job_id, c.finished_at.is_not(None), c.state != "cancelled")
        with self._read("job timing") as conn:
            n, last = conn.execute(sa.select(sa.func.count(), sa.func.max(c.finished_at)).where(done)).one()
            if not n:
                return 0, None, None, None

            def nth(i: int) -> float:
                at = conn.execute(sa.select(c.finished_at).where(done).order_by(c.finished_at)
                                  .limit(1).offset(i)).scalar_one()
                return at.timestamp() - created_at.timestamp()

            return int(n), last, nth(n // 2), nth(min(n - 1, int(n * 0.99)))
