"""Fleet jobs and their per-device tasks in the store (a mixin of :class:`Store`).

A job is durable: its policy, target selector, options and one task row per device with
its state, attempts, faults and timestamps. The job engine keeps a working copy in
memory and writes task changes in batches (:meth:`JobsMixin.update_tasks`), each batch
one transaction, so a push to 100,000 phones costs a few hundred commits, not 100,000.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.claims import ACTIVE_TASK_STATES, CONFLICT_RETRIES, ClaimsMixin
from acs_security.store.errors import InvalidArgument, StoreConflict, StoreError
from acs_security.store.jobrecords import REACH_PARAMETERS, JobRecord, TargetDevice, TaskRecord, TaskUpdate, reach_facts
from acs_security.store.jobrecords import job_from_row as _job
from acs_security.store.jobrecords import task_from_row as _task
from acs_security.store.records import check_aware, check_text

__all__ = ["JobRecord", "TaskRecord", "TaskUpdate", "JobsMixin", "TASK_UPDATE", "CONFLICT_RETRIES", "TargetDevice",
           "JOB_KINDS", "JOB_STATES"]

JOB_STATES = ("running", "halted", "cancelled", "completed")
JOB_KINDS = ("push", "audit", "backup")
# Outcomes the device itself reported: they may replace a verdict of absence (unreachable,
# cancelled) that another node wrote meanwhile, since the phone did take the change.
_DEVICE_OUTCOMES = ("applied", "applied_pending_reboot", "faulted")
_ABSENCE_VERDICTS = ("unreachable", "cancelled")
MAX_TASK_PAGE = 10_000


def _one_of(expr: Any, values: Sequence[str]) -> Any:
    """``expr IN (...)`` written as ORs of inline constants: an executemany (one statement,
    many rows) cannot expand an IN list (SQLAlchemy), and these values are our own names."""
    return sa.or_(*(expr == sa.literal_column(f"'{v}'") for v in values))


def _task_update() -> Any:
    """update_tasks' statement, built once (building it cost more than running it for a
    small batch). A final state is never overwritten (several nodes may judge one task:
    the first verdict stands), except that an outcome the device reported replaces a
    verdict of absence written meanwhile."""
    c = t.tasks.c
    state: Any = sa.bindparam("b_state")
    guard = sa.or_(t.ACTIVE_TASKS_SQL,
                   sa.and_(_one_of(c.state, _ABSENCE_VERDICTS), _one_of(state, _DEVICE_OUTCOMES)))
    return (
        sa.update(t.tasks)
        .where(c.job_id == sa.bindparam("b_job"), c.device_id == sa.bindparam("b_device"), guard)
        .values(
            node=sa.func.coalesce(sa.bindparam("b_node", type_=sa.Text), c.node),
            next_attempt=sa.bindparam("b_next", type_=t.UTCDateTime),
            state=state, attempts=sa.bindparam("b_attempts"),
            sent=sa.bindparam("b_sent"), cr_exhausted=sa.bindparam("b_exhausted"),
            fault_code=sa.bindparam("b_fault_code"), fault_string=sa.bindparam("b_fault_string"),
            faults=sa.bindparam("b_faults"), detail=sa.bindparam("b_detail"),
            updated_at=sa.bindparam("b_updated", type_=t.UTCDateTime),
            finished_at=sa.bindparam("b_finished", type_=t.UTCDateTime),
            reached_by=sa.func.coalesce(sa.bindparam("b_reached", type_=sa.Text), c.reached_by),
        )
    )


TASK_UPDATE = _task_update()


class JobsMixin(ClaimsMixin):
    """Job and task methods of the Store; uses the Store's ``_read``/``_write`` plumbing."""

    _read: Any
    _write: Any
    _now: Any
    _grouped: Any
    _drv: Any

    def target_devices(self, ids: Sequence[str] | None = None) -> list[TargetDevice]:
        """Every registered device (or those of ``ids``) with what targeting and connection
        requests need.

        One query for the identity columns and one for the tags; the selector is applied
        by the caller (globs and firmware ranges are not SQL). Raises StoreError."""
        d = t.devices.c
        tag_query = sa.select(t.device_tags.c.device_id, t.device_tags.c.tag)
        b = t.udp_bindings.c
        # The STUN server's last sight of the device's UDP address (TR-111 part 2).
        query = (sa.select(d.id, d.product_class, d.software_version, d.serial_number,
                           d.connection_request_url, d.udp_connection_request_address,
                           d.parameter_key, d.remote_address, d.xmpp_jid, b.last_seen)
                 .select_from(t.devices.outerjoin(t.udp_bindings, b.address == d.udp_connection_request_address))
                 .order_by(d.id))
        if ids is not None:
            tag_query = tag_query.where(t.device_tags.c.device_id.in_(list(ids)))
            query = query.where(d.id.in_(list(ids)))
        p = t.device_parameters.c
        param_query = sa.select(p.device_id, p.name, p.value).where(p.name.in_(list(REACH_PARAMETERS)))
        if ids is not None:
            param_query = param_query.where(p.device_id.in_(list(ids)))
        with self._read("list target devices") as conn:
            tags: dict[str, list[str]] = {}
            for device_id, tag in conn.execute(tag_query):
                tags.setdefault(device_id, []).append(tag)
            reach: dict[str, dict[str, str]] = {}
            for device_id, name, value in conn.execute(param_query):
                reach.setdefault(device_id, {})[name] = value
            rows = conn.execute(query).all()
        return [
            TargetDevice(r.id, r.product_class, r.software_version, r.serial_number,
                         r.connection_request_url, r.udp_connection_request_address,
                         r.parameter_key, tuple(sorted(tags.get(r.id, ()))),
                         remote_address=r.remote_address,
                         udp_seen=r.last_seen.timestamp() if r.last_seen is not None else None,
                         xmpp_jid=r.xmpp_jid, **reach_facts(reach.get(r.id, {})))
            for r in rows
        ]

    def create_job(
        self,
        *,
        name: str,
        policy: dict[str, Any],
        selector: str,
        options: dict[str, Any],
        parameter_key_prefix: str,
        deadline: datetime,
        tasks: Sequence[tuple[str, int]],
        kind: str = "push",
    ) -> JobRecord:
        """Insert a job and one pending task per (device id, wave), in one transaction.

        The ParameterKey is ``parameter_key_prefix`` + the job id (TR-069: at most 32
        characters). ``kind``: push, audit or backup (an Upload of each phone's cfg.xml,
        docs/files.md). Raises InvalidArgument for bad values, StoreError."""
        check_text("name", name, empty=False)
        if kind not in JOB_KINDS:
            raise InvalidArgument(f"job kind {kind!r} is not one of {', '.join(JOB_KINDS)}")
        check_aware("deadline", deadline)
        if not tasks:
            raise InvalidArgument("a job needs at least one device")
        now = self._now()
        waves = max(w for _, w in tasks) + 1
        with self._write("create a job") as conn:
            job_id = conn.execute(
                sa.insert(t.jobs).values(
                    name=name, policy=json.dumps(policy), selector=selector,
                    options=json.dumps(options), parameter_key=f"new-{secrets.token_hex(8)}",  # replaced below
                    state="running", current_wave=0, wave_count=waves, total=len(tasks),
                    created_at=now, updated_at=now, deadline=deadline, kind=kind,
                )
            ).inserted_primary_key[0]
            key = f"{parameter_key_prefix}{job_id}"
            if len(key) > 32:
                raise InvalidArgument(f"ParameterKey {key!r} is longer than 32 characters (TR-069 A.3.2.1)")
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(parameter_key=key))
            conn.execute(
                sa.insert(t.tasks),
                [
                    {"job_id": job_id, "device_id": device_id, "position": i, "wave": wave,
                     "state": "pending", "attempts": 0, "sent": 0, "cr_exhausted": False,
                     "updated_at": now}
                    for i, (device_id, wave) in enumerate(tasks)
                ],
            )
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).one()
        return _job(row)

    def get_job(self, job_id: int) -> JobRecord | None:
        with self._read("read a job") as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == int(job_id))).first()
        return _job(row) if row is not None else None

    def list_jobs(self, *, limit: int = 100, offset: int = 0, states: Sequence[str] | None = None) -> list[JobRecord]:
        query = sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit).offset(offset)
        if states is not None:
            query = query.where(t.jobs.c.state.in_(list(states)))
        with self._read("list jobs") as conn:
            return [_job(r) for r in conn.execute(query)]

    def count_jobs(self, *, states: Sequence[str] | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(t.jobs)
        if states is not None:
            query = query.where(t.jobs.c.state.in_(list(states)))
        with self._read("count jobs") as conn:
            return int(conn.execute(query).scalar_one())

    def set_job_state(self, job_id: int, state: str, *, current_wave: int | None = None,
                      reason: str | None = None, finished: bool = False) -> None:
        if state not in JOB_STATES:
            raise InvalidArgument(f"job state {state!r} is not one of {', '.join(JOB_STATES)}")
        now = self._now()
        values: dict[str, Any] = {"state": state, "updated_at": now, "reason": reason}
        if current_wave is not None:
            values["current_wave"] = current_wave
        if finished:
            values["finished_at"] = now
        with self._write("update a job") as conn:
            if conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(**values)).rowcount == 0:
                raise StoreError(f"no job {job_id}")

    def task_counts(self, job_id: int, *, by_wave: bool = False) -> dict[Any, int]:
        """{state: n}, or {(wave, state): n} with ``by_wave``."""
        c = t.tasks.c
        cols = [c.wave, c.state] if by_wave else [c.state]
        query = sa.select(*cols, sa.func.count()).where(c.job_id == job_id).group_by(*cols)
        with self._read("count tasks") as conn:
            rows = conn.execute(query).all()
        if by_wave:
            return {(r[0], r[1]): r[2] for r in rows}
        return {r[0]: r[1] for r in rows}

    def list_tasks(self, job_id: int, *, states: Sequence[str] | None = None, limit: int = 100,
                   offset: int = 0, device_id: str | None = None) -> list[TaskRecord]:
        if not 1 <= limit <= MAX_TASK_PAGE:
            raise InvalidArgument(f"limit must be 1-{MAX_TASK_PAGE}, got {limit}")
        c = t.tasks.c
        query = sa.select(t.tasks).where(c.job_id == job_id).order_by(c.position).limit(limit).offset(offset)
        if states is not None:
            query = query.where(c.state.in_(list(states)))
        if device_id is not None:
            query = query.where(c.device_id == device_id)
        with self._read("list tasks") as conn:
            return [_task(r) for r in conn.execute(query)]

    def count_tasks(self, job_id: int, *, states: Sequence[str] | None = None) -> int:
        c = t.tasks.c
        query = sa.select(sa.func.count()).select_from(t.tasks).where(c.job_id == job_id)
        if states is not None:
            query = query.where(c.state.in_(list(states)))
        with self._read("count tasks") as conn:
            return int(conn.execute(query).scalar_one())

    def update_tasks(self, updates: Sequence[TaskUpdate]) -> None:
        """Write a batch of task changes in one transaction (later updates of the same task win).

        Rows are updated in (job id, device id) order, the order every other batch takes,
        so that two batches (the engine's and the sessions', or two nodes') lock task rows
        in one order. A deadlock PostgreSQL still reports (40P01: with a transaction that
        locks in another order) is retried at once, up to CONFLICT_RETRIES times; inside a
        group() the whole group is aborted, so the conflict goes up to the group's caller
        (DeferredStore retries the group). Raises StoreConflict, StoreUnavailable/StoreError.
        """
        if not updates:
            return
        latest: dict[tuple[int, str], TaskUpdate] = {}
        for u in updates:
            latest[(u.job_id, u.device_id)] = u
        rows = [
            {"b_job": u.job_id, "b_device": u.device_id, "b_state": u.state, "b_attempts": u.attempts,
             "b_sent": u.sent, "b_exhausted": u.cr_exhausted, "b_fault_code": u.fault_code,
             "b_fault_string": u.fault_string, "b_faults": json.dumps(list(u.faults)) if u.faults else None,
             "b_detail": u.detail, "b_updated": u.updated_at, "b_finished": u.finished_at,
             "b_node": u.node, "b_next": u.next_attempt, "b_reached": u.reached_by}
            for u in (latest[key] for key in sorted(latest))
        ]
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self._write("update tasks") as conn:
                    if self._drv is not None:  # SQLite: on the DBAPI cursor (driver.py)
                        self._drv["task_update"].execute_many(conn, rows)
                    else:
                        conn.execute(TASK_UPDATE, rows)
                return
            except StoreConflict:
                if self._grouped() or attempt == CONFLICT_RETRIES - 1:
                    raise

    def active_tasks(self, *, job_states: Sequence[str] = ("running", "halted")) -> list[TaskRecord]:
        """Tasks not yet final, of jobs in ``job_states`` (what a restarted engine resumes)."""
        c = t.tasks.c
        query = (
            sa.select(t.tasks)
            .join(t.jobs, t.jobs.c.id == c.job_id)
            .where(t.jobs.c.state.in_(list(job_states)), c.state.in_(ACTIVE_TASK_STATES))
            .order_by(c.job_id, c.position)
        )
        with self._read("list active tasks") as conn:
            return [_task(r) for r in conn.execute(query)]
