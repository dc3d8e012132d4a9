"""Desired state in the store (a mixin of :class:`Store`, like jobs.py): assignments, one
row per device and assignment, the devices' drift history and audit readings
(docs/decisions/0009-desired-state.md).

Sessions write through :meth:`DesiredMixin.record_desired` and :meth:`DesiredMixin.record_audit`,
one transaction each (group-committed by DeferredStore with the other session writes), so a
SetParameterValues outcome, the values the device now holds and the history line land
together. The store is the truth that every node reads: compliance numbers come from here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.desiredrecords import (
    ASSIGNMENT_MODES,
    EVENT_KINDS,
    ROW_STATES,
    AssignmentRecord,
    AuditReading,
    DeviceAssignment,
    DriftRecord,
    assignment_from_row,
    device_assignment_from_row,
    drift_from_row,
)
from acs_security.store.errors import InvalidArgument, StoreError
from acs_security.store.records import check_aware, check_text

__all__ = ["DesiredMixin", "DuplicateAssignment", "MAX_HISTORY_PAGE"]

MAX_HISTORY_PAGE = 10_000


class DuplicateAssignment(InvalidArgument):
    """An assignment of that name exists already (names are unique)."""


def _check_assignment(name: str, policy_name: str, selector: str, priority: int, mode: str) -> None:
    check_text("name", name, empty=False)
    check_text("policy_name", policy_name)
    check_text("selector", selector, empty=False)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1_000_000 <= priority <= 1_000_000:
        raise InvalidArgument(f"priority must be an integer from -1000000 to 1000000, got {priority!r}")
    if mode not in ASSIGNMENT_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(ASSIGNMENT_MODES)}")


def _page(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY_PAGE:
        raise InvalidArgument(f"limit must be an integer from 1 to {MAX_HISTORY_PAGE}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(f"offset must be a non-negative integer, got {offset!r}")


def _row_values(row: DeviceAssignment) -> dict[str, Any]:
    if not isinstance(row, DeviceAssignment):
        raise InvalidArgument(f"rows must be DeviceAssignment records, not {type(row).__name__}")
    if row.state not in ROW_STATES:
        raise InvalidArgument(f"state {row.state!r} is not one of {', '.join(ROW_STATES)}")
    check_aware("updated_at", row.updated_at)
    return {"device_id": row.device_id, "assignment_id": row.assignment_id, "revision": row.revision,
            "state": row.state, "detail": row.detail,
            "skipped": json.dumps(list(row.skipped)) if row.skipped else None,
            "faults": json.dumps(list(row.faults)) if row.faults else None,
            "notified_revision": row.notified_revision, "software_version": row.software_version,
            "job_id": row.job_id, "updated_at": row.updated_at, "node": row.node}


def _event_values(event: DriftRecord) -> dict[str, Any]:
    if not isinstance(event, DriftRecord):
        raise InvalidArgument(f"events must be DriftRecord records, not {type(event).__name__}")
    if event.kind not in EVENT_KINDS:
        raise InvalidArgument(f"event kind {event.kind!r} is not one of {', '.join(EVENT_KINDS)}")
    check_aware("detected_at", event.detected_at)
    for name in ("setting", "path", "old_value", "new_value"):
        value = getattr(event, name)
        if value is not None:
            check_text(name, value)
    return {"device_id": event.device_id, "assignment_id": event.assignment_id,
            "assignment_name": check_text("assignment_name", event.assignment_name), "kind": event.kind,
            "setting": event.setting, "path": event.path, "old_value": event.old_value,
            "new_value": event.new_value, "event": check_text("event", event.event),
            "action": check_text("action", event.action), "job_id": event.job_id,
            "detected_at": event.detected_at, "node": event.node}


class DesiredMixin:
    """Desired-state methods of the Store; uses its ``_read``/``_write`` plumbing."""

    _read: Any
    _write: Any
    _now: Any
    _insert: Any
    _require_device: Any
    _bind_time: Any
    _upsert_parameters: Any

    # -- assignments --------------------------------------------------------------------

    def create_assignment(self, *, name: str, policy: dict[str, Any], policy_name: str, selector: str,
                          priority: int = 0, mode: str = "enforce", enabled: bool = True) -> AssignmentRecord:
        """Insert an assignment at revision 1. Raises DuplicateAssignment, InvalidArgument,
        StoreError."""
        _check_assignment(name, policy_name, selector, priority, mode)
        now = self._now()
        a = t.assignments.c
        with self._write("create an assignment") as conn:
            if conn.execute(sa.select(a.id).where(a.name == name)).first() is not None:
                raise DuplicateAssignment(f"an assignment named {name!r} exists already")
            new_id = conn.execute(sa.insert(t.assignments).values(
                name=name, policy=json.dumps(policy), policy_name=policy_name, selector=selector,
                priority=priority, mode=mode, enabled=bool(enabled), revision=1, created_at=now,
                updated_at=now)).inserted_primary_key[0]
            row = conn.execute(sa.select(t.assignments).where(a.id == new_id)).one()
        return assignment_from_row(row)

    def update_assignment(self, assignment_id: int, *, policy: dict[str, Any], policy_name: str, selector: str,
                          priority: int, mode: str) -> AssignmentRecord | None:
        """A new revision: policy, selector, priority and mode replaced, revision + 1.
        None when the assignment does not exist. Raises InvalidArgument, StoreError."""
        name = "assignment"
        _check_assignment(name, policy_name, selector, priority, mode)
        a = t.assignments.c
        with self._write("update an assignment") as conn:
            changed = conn.execute(sa.update(t.assignments).where(a.id == int(assignment_id)).values(
                policy=json.dumps(policy), policy_name=policy_name, selector=selector, priority=priority,
                mode=mode, revision=a.revision + 1, updated_at=self._now())).rowcount
            if not changed:
                return None
            row = conn.execute(sa.select(t.assignments).where(a.id == int(assignment_id))).one()
        return assignment_from_row(row)

    def set_assignment_enabled(self, assignment_id: int, enabled: bool) -> AssignmentRecord | None:
        """Enable or disable (the revision stays: what is desired did not change). None when
        the assignment does not exist."""
        a = t.assignments.c
        with self._write("enable or disable an assignment") as conn:
            changed = conn.execute(sa.update(t.assignments).where(a.id == int(assignment_id)).values(
                enabled=bool(enabled), updated_at=self._now())).rowcount
            if not changed:
                return None
            row = conn.execute(sa.select(t.assignments).where(a.id == int(assignment_id))).one()
        return assignment_from_row(row)

    def delete_assignment(self, assignment_id: int) -> bool:
        """Delete an assignment and its per-device rows; the drift history stays (it names the
        assignment). True when it existed."""
        with self._write("delete an assignment") as conn:
            d = t.drift_events.c
            # Explicit rather than through ON DELETE SET NULL, which SQLite applies only with
            # foreign keys on.
            conn.execute(sa.update(t.drift_events).where(d.assignment_id == int(assignment_id))
                         .values(assignment_id=None))
            conn.execute(sa.delete(t.device_assignments)
                         .where(t.device_assignments.c.assignment_id == int(assignment_id)))
            return bool(conn.execute(sa.delete(t.assignments)
                                     .where(t.assignments.c.id == int(assignment_id))).rowcount)

    def get_assignment(self, assignment_id: int) -> AssignmentRecord | None:
        with self._read("read an assignment") as conn:
            row = conn.execute(sa.select(t.assignments).where(t.assignments.c.id == int(assignment_id))).first()
        return assignment_from_row(row) if row is not None else None

    def find_assignment(self, name: str) -> AssignmentRecord | None:
        check_text("name", name)
        with self._read("read an assignment") as conn:
            row = conn.execute(sa.select(t.assignments).where(t.assignments.c.name == name)).first()
        return assignment_from_row(row) if row is not None else None

    def list_assignments(self, *, enabled_only: bool = False) -> list[AssignmentRecord]:
        """Every assignment, by id."""
        query = sa.select(t.assignments).order_by(t.assignments.c.id)
        if enabled_only:
            query = query.where(t.assignments.c.enabled == sa.true())
        with self._read("list assignments") as conn:
            return [assignment_from_row(r) for r in conn.execute(query)]

    def assignment_generation(self) -> tuple[int, int, str]:
        """A cheap fingerprint of the assignments (count, largest id, last change): a node
        compares it every few seconds and reloads the assignments only when it moved."""
        a = t.assignments.c
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(a.id), 0), sa.func.max(a.updated_at))
        with self._read("read the assignments' generation") as conn:
            count, top, last = conn.execute(query).one()
        return int(count), int(top), last.isoformat() if last is not None else ""

    # -- per device and assignment ------------------------------------------------------

    def desired_device_state(self, device_id: str) -> tuple[dict[str, tuple[str, str]],
                                                            dict[int, DeviceAssignment], dict[str, str | None]]:
        """What a session needs to judge a device: its known values (name -> (value, type)),
        its rows by assignment id, and the newest value each path drifted to (history), in
        one read."""
        check_text("device_id", device_id, empty=False)
        p, r, d = t.device_parameters.c, t.device_assignments.c, t.drift_events.c
        with self._read("read a device's desired state") as conn:
            params = {name: (value, xsi) for name, value, xsi in conn.execute(
                sa.select(p.name, p.value, p.type).where(p.device_id == device_id))}
            rows = {row.assignment_id: device_assignment_from_row(row) for row in conn.execute(
                sa.select(t.device_assignments).where(r.device_id == device_id))}
            last: dict[str, str | None] = {}
            if rows:
                query = (sa.select(d.path, d.new_value).where(d.device_id == device_id, d.kind == "drift",
                                                              d.path.is_not(None))
                         .order_by(d.id.desc()).limit(500))
                for path, value in conn.execute(query):
                    last.setdefault(path, value)
        return params, rows, last

    def record_desired(self, device_id: str, *, rows: Sequence[DeviceAssignment] = (),
                       events: Sequence[DriftRecord] = (),
                       params: Sequence[tuple[str, str, str]] = ()) -> None:
        """One transaction: upsert rows, append history, upsert known values (name, value,
        type). Raises UnknownDevice, InvalidArgument, StoreError; nothing is written then."""
        prepared = self._prepare_desired(device_id, rows, events, params)
        if not any(prepared):
            return
        with self._write("record desired state") as conn:
            self._require_device(conn, device_id)
            self._write_desired(conn, *prepared)

    def _prepare_desired(self, device_id: str, rows: Sequence[DeviceAssignment], events: Sequence[DriftRecord],
                         params: Sequence[tuple[str, str, str]]) -> tuple[list[Any], list[Any], list[Any]]:
        row_values = [_row_values(row) for row in rows]
        event_values = [_event_values(e) for e in events]
        for row in rows:
            if row.device_id != device_id:
                raise InvalidArgument("every row must be of the device recorded")
        for e in events:
            if e.device_id != device_id:
                raise InvalidArgument("every event must be of the device recorded")
        bound = self._bind_time(self._now())
        param_rows: dict[str, tuple[str, str, str, str, Any]] = {}
        for param in params:
            if not isinstance(param, tuple) or len(param) != 3:
                raise InvalidArgument("each parameter must be a (name, value, type) tuple")
            name, value, xsi_type = param
            check_text("parameter name", name, empty=False)
            check_text(f"value of {name}", value)
            check_text(f"type of {name}", xsi_type)
            param_rows[name] = (device_id, name, value, xsi_type, bound)
        return row_values, event_values, list(param_rows.values())

    def _write_desired(self, conn: Any, row_values: list[Any], event_values: list[Any], param_rows: list[Any]) -> None:
        if row_values:
            ins = self._insert(t.device_assignments)
            cols = ("revision", "state", "detail", "skipped", "faults", "notified_revision",
                    "software_version", "job_id", "updated_at", "node")
            conn.execute(ins.on_conflict_do_update(
                index_elements=[t.device_assignments.c.device_id, t.device_assignments.c.assignment_id],
                set_={c: getattr(ins.excluded, c) for c in cols}), row_values)
        if event_values:
            conn.execute(sa.insert(t.drift_events), event_values)
        self._upsert_parameters(conn, param_rows)

    def device_rows(self, device_id: str) -> list[DeviceAssignment]:
        """The device's rows, by assignment id."""
        check_text("device_id", device_id, empty=False)
        r = t.device_assignments.c
        with self._read("read a device's assignments") as conn:
            return [device_assignment_from_row(row) for row in conn.execute(
                sa.select(t.device_assignments).where(r.device_id == device_id).order_by(r.assignment_id))]

    def assignment_rows(self, assignment_id: int) -> list[DeviceAssignment]:
        """Every device row of one assignment (compliance reports)."""
        r = t.device_assignments.c
        with self._read("read an assignment's devices") as conn:
            return [device_assignment_from_row(row) for row in conn.execute(
                sa.select(t.device_assignments).where(r.assignment_id == int(assignment_id))
                .order_by(r.device_id))]

    def assignment_state_counts(self) -> dict[tuple[int, str], int]:
        """{(assignment id, state): devices} over rows of each assignment's current revision
        (rows of an older revision are not counted: those devices are not yet judged)."""
        r, a = t.device_assignments.c, t.assignments.c
        query = (sa.select(r.assignment_id, r.state, sa.func.count())
                 .join(t.assignments, a.id == r.assignment_id)
                 .where(r.revision == a.revision).group_by(r.assignment_id, r.state))
        with self._read("count devices by assignment state") as conn:
            return {(aid, state): int(n) for aid, state, n in conn.execute(query)}

    # -- history ------------------------------------------------------------------------

    def drift_history(self, device_id: str, *, limit: int = 100, offset: int = 0) -> list[DriftRecord]:
        """The device's desired-state history, newest first."""
        check_text("device_id", device_id, empty=False)
        _page(limit, offset)
        d = t.drift_events.c
        query = (sa.select(t.drift_events).where(d.device_id == device_id).order_by(d.id.desc())
                 .limit(limit).offset(offset))
        with self._read("read drift history") as conn:
            return [drift_from_row(row) for row in conn.execute(query)]

    def count_drift(self, device_id: str) -> int:
        check_text("device_id", device_id, empty=False)
        d = t.drift_events.c
        with self._read("count drift history") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.drift_events)
                                    .where(d.device_id == device_id)).scalar_one())

    def job_conflicts(self, job_id: int) -> list[DriftRecord]:
        """History lines of sessions where job ``job_id`` won against an assignment."""
        d = t.drift_events.c
        query = (sa.select(t.drift_events).where(d.job_id == int(job_id), d.kind == "job_conflict")
                 .order_by(d.id))
        with self._read("read a job's conflicts") as conn:
            return [drift_from_row(row) for row in conn.execute(query)]

    def drift_counts(self, since: datetime) -> dict[tuple[int | None, str], int]:
        """{(assignment id, action): n} of drift lines detected since ``since``."""
        check_aware("since", since)
        d = t.drift_events.c
        query = (sa.select(d.assignment_id, d.action, sa.func.count())
                 .where(d.kind == "drift", d.detected_at >= since).group_by(d.assignment_id, d.action))
        with self._read("count drift") as conn:
            return {(aid, action): int(n) for aid, action, n in conn.execute(query)}

    # -- audits -------------------------------------------------------------------------

    def record_audit(self, job_id: int, device_id: str, *, items: Sequence[dict[str, Any]],
                     read_at: datetime, events: Sequence[DriftRecord] = (),
                     params: Sequence[tuple[str, str, str]] = ()) -> None:
        """One transaction: the audit's reading of a device (replacing an earlier one of the
        same job), its drift lines and the values read. Raises UnknownDevice,
        InvalidArgument, StoreError."""
        check_aware("read_at", read_at)
        text = json.dumps(list(items))
        prepared = self._prepare_desired(device_id, (), events, params)
        with self._write("record an audit reading") as conn:
            self._require_device(conn, device_id)
            ar = t.audit_results.c
            conn.execute(sa.delete(t.audit_results).where(ar.job_id == int(job_id), ar.device_id == device_id))
            conn.execute(sa.insert(t.audit_results).values(job_id=int(job_id), device_id=device_id,
                                                           result=text, read_at=read_at))
            self._write_desired(conn, *prepared)

    def audit_readings(self, job_id: int) -> list[AuditReading]:
        ar = t.audit_results.c
        with self._read("read audit readings") as conn:
            rows = conn.execute(sa.select(t.audit_results).where(ar.job_id == int(job_id))
                                .order_by(ar.device_id)).all()
        out = []
        for row in rows:
            try:
                items = tuple(json.loads(row.result))
            except ValueError:
                raise StoreError(f"audit reading of job {job_id}, device {row.device_id} is not JSON") from None
            out.append(AuditReading(row.job_id, row.device_id, items, row.read_at))
        return out

    # -- tags ---------------------------------------------------------------------------

    def all_device_tags(self) -> dict[str, tuple[str, ...]]:
        """{device id: tags} of every tagged device (selectors with tag= need them)."""
        tg = t.device_tags.c
        out: dict[str, list[str]] = {}
        with self._read("read device tags") as conn:
            for device_id, tag in conn.execute(sa.select(tg.device_id, tg.tag).order_by(tg.device_id, tg.tag)):
                out.setdefault(device_id, []).append(tag)
        return {k: tuple(v) for k, v in out.items()}
