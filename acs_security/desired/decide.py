"""What one session does for a device's assignments (pure: facts in, a decision out).

Given the device's desired state (compiled.py), the values the ACS knows for it, its rows
(what was last established per assignment), the Inform's events and reported values, and
what a job set earlier in the same session, :func:`decide` says:

- which SetParameterValues to send, one per assignment in enforce mode whose owned values
  differ from the known ones (TR-069 A.3.2.1; the ParameterKey names assignment and
  revision);
- which paths to set to active notification (SetParameterAttributes Notification=2,
  TR-069 A.3.2.4), once per device and revision (again after a factory reset, which clears
  attributes);
- the rows to write now, and the history lines: drift (a controlled value the Inform reports
  changed, ``4 VALUE CHANGE``, Table 7), a job that won the session, a factory reset
  (``0 BOOTSTRAP``);
- whether the device is settled for this desired state (the session side then remembers
  it and skips the store until something changes).

Rules that need a reason:
- A job (one-off push) on the same device wins for the session (issue 14): a path the job
  set is not sent, the row says ``overridden`` and the history names the job; the next
  session enforces again.
- A SetParameterValues that faulted is not repeated in every periodic session: it is retried
  after :data:`FAULT_RETRY_S`, at the next BOOT/BOOTSTRAP, after a firmware change or for a
  new revision.
- In audit mode nothing is sent: a known value that differs makes the row ``drifted``, an
  unknown one ``unknown`` (an audit reads it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from acs_security.desired.compiled import Desired, Part, same_value
from acs_security.mapping import Tr069Param
from acs_security.store.desiredrecords import DeviceAssignment, DriftRecord

__all__ = ["Situation", "Send", "Decision", "decide", "FAULT_RETRY_S", "MASK", "SETTLED_STATES"]

#: Seconds before a SetParameterValues the device faulted is tried again (without a new
#: reason such as a reboot, a new revision or new firmware).
FAULT_RETRY_S = 3600.0
MASK = "********"
BOOTSTRAP, BOOT, VALUE_CHANGE = "0 BOOTSTRAP", "1 BOOT", "4 VALUE CHANGE"
#: Row states of a device that complies with the assignment's current revision.
SETTLED_STATES = ("applied", "compliant")


@dataclass(frozen=True, slots=True)
class Situation:
    """The facts of one session for :func:`decide`."""

    device_id: str
    software_version: str | None
    events: frozenset[str]
    known: Mapping[str, str]
    rows: Mapping[int, DeviceAssignment]
    now: datetime
    reported: Mapping[str, str] = field(default_factory=dict)  # controlled paths in the Inform
    job_values: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)  # path -> (value, job)
    last_drift: Mapping[str, str | None] = field(default_factory=dict)
    node: str | None = None
    secret: Callable[[str], bool] = lambda path: False
    setting_of: Callable[[str], str] = lambda path: path


@dataclass(frozen=True, slots=True)
class Send:
    """One SetParameterValues of one assignment: its row on success, and its drift lines
    (action ``corrected``, or ``correction_failed`` when the device faults)."""

    part: Part
    params: tuple[Tr069Param, ...]
    row: DeviceAssignment  # state applied
    events: tuple[DriftRecord, ...] = ()


@dataclass
class Decision:
    sends: list[Send] = field(default_factory=list)
    notify: list[Part] = field(default_factory=list)
    rows: list[DeviceAssignment] = field(default_factory=list)
    events: list[DriftRecord] = field(default_factory=list)
    settled: bool = True
    retry_at: datetime | None = None

    @property
    def notify_paths(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for part in self.notify:
            for path in part.paths:
                seen.setdefault(path, None)
        return tuple(seen)


def _masked(sit: Situation, path: str, value: str | None) -> str | None:
    if value is None:
        return None
    return (MASK if value else "") if sit.secret(path) else value


def _names(sit: Situation, paths: list[str], limit: int = 5) -> str:
    names = [sit.setting_of(p) for p in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def _changed(new: DeviceAssignment, old: DeviceAssignment | None) -> bool:
    if old is None:
        return True
    return (new.revision, new.state, new.detail, new.skipped, new.faults, new.notified_revision,
            new.software_version, new.job_id) != (old.revision, old.state, old.detail, old.skipped, old.faults,
                                                  old.notified_revision, old.software_version, old.job_id)


def decide(desired: Desired, sit: Situation) -> Decision:
    """The session's work for the device's assignments (see the module doc)."""
    out = Decision()
    bootstrap = BOOTSTRAP in sit.events
    booted = bootstrap or BOOT in sit.events
    value_change = VALUE_CHANGE in sit.events
    for part in desired.parts:
        a = part.assignment
        prev = sit.rows.get(a.id)
        current = prev is not None and prev.revision == a.revision
        notified = prev.notified_revision if prev is not None and not bootstrap else -1
        base = DeviceAssignment(
            device_id=sit.device_id, assignment_id=a.id, revision=a.revision, state="unknown",
            updated_at=sit.now, skipped=tuple(key for key, _ in part.skipped), notified_revision=notified,
            software_version=sit.software_version, node=sit.node)
        history = _history(part, sit, prev, current, bootstrap, value_change)
        if part.error is not None:
            row = replace(base, state="faulted", detail=part.error)
            out.events.extend(history)
            if _changed(row, prev):
                out.rows.append(row)
            continue
        if not part.every and part.skipped:
            row = replace(base, state="skipped", detail="every setting of the policy is absent on this model/firmware")
            out.events.extend(history)
            if _changed(row, prev):
                out.rows.append(row)
            continue
        differ = [p for p in part.params if not same_value(p.xsi_type, sit.known.get(p.path), p.value)]
        job_won = [(p, sit.job_values[p.path]) for p in differ if p.path in sit.job_values]
        differ = [p for p in differ if p.path not in sit.job_values]
        conflicts = [_job_line(part, sit, p, value, job) for p, (value, job) in job_won]
        job_id = job_won[0][1][1] if job_won else None
        if notified != a.revision and part.params:
            out.notify.append(part)
        if job_won:
            out.settled = False  # the next session enforces again
        if a.enforce:
            drift = [e for e in history if e.kind == "drift"]
            other = [e for e in history if e.kind != "drift"]
            out.events.extend(other + conflicts)
            if differ:
                faulted_again = (prev is not None and prev.state == "faulted" and current and not booted
                                 and not drift and prev.software_version == sit.software_version
                                 and sit.now < prev.updated_at + timedelta(seconds=FAULT_RETRY_S))
                if faulted_again:
                    assert prev is not None
                    retry = prev.updated_at + timedelta(seconds=FAULT_RETRY_S)
                    out.retry_at = retry if out.retry_at is None else min(out.retry_at, retry)
                    row = replace(prev, notified_revision=notified)
                    if _changed(row, prev):
                        out.rows.append(row)
                    continue
                detail = f"applied {len(differ)} setting(s): {_names(sit, [p.path for p in differ])}"
                if part.skipped:
                    detail += f"; {len(part.skipped)} absent on this model/firmware"
                applied = replace(base, state="applied", detail=detail)
                out.sends.append(Send(part, tuple(differ), applied, tuple(drift)))
                continue
            out.events.extend(drift)  # reported changed, yet known equal: corrected meanwhile
            if job_won:
                row = replace(base, state="overridden", job_id=job_id,
                              detail=f"job {job_id} set {_names(sit, [p.path for p, _ in job_won])} this session")
            elif current and prev is not None and prev.state in SETTLED_STATES:
                row = replace(base, state=prev.state, detail=prev.detail)
            else:
                row = replace(base, state="compliant", detail=_skipped_detail(part))
            if _changed(row, prev):
                out.rows.append(row)
            continue
        # audit mode: report only
        out.events.extend(history + conflicts)
        unknown = [p for p in differ if sit.known.get(p.path) is None]
        drifted = [p for p in differ if sit.known.get(p.path) is not None]
        if job_won:
            row = replace(base, state="overridden", job_id=job_id,
                          detail=f"job {job_id} set {_names(sit, [p.path for p, _ in job_won])} this session")
        elif drifted:
            row = replace(base, state="drifted",
                          detail=f"{len(drifted)} setting(s) differ: {_names(sit, [p.path for p in drifted])}")
        elif unknown:
            row = replace(base, state="unknown",
                          detail=f"{len(unknown)} setting(s) not known: run an audit")
        else:
            row = replace(base, state="compliant", detail=_skipped_detail(part))
        if _changed(row, prev):
            out.rows.append(row)
    return out


def _skipped_detail(part: Part) -> str | None:
    if part.skipped:
        return f"{len(part.skipped)} setting(s) absent on this model/firmware"
    return None


def _history(part: Part, sit: Situation, prev: DeviceAssignment | None, current: bool,
             bootstrap: bool, value_change: bool) -> list[DriftRecord]:
    a = part.assignment
    lines: list[DriftRecord] = []
    action = "corrected" if a.enforce else "reported"
    if bootstrap and prev is not None:
        lines.append(DriftRecord(
            device_id=sit.device_id, assignment_id=a.id, assignment_name=a.name, kind="factory_reset",
            event=BOOTSTRAP, action=action, detected_at=sit.now, node=sit.node))
    if value_change and sit.reported:
        for p in part.params:
            reported = sit.reported.get(p.path)
            if reported is None or same_value(p.xsi_type, reported, p.value):
                continue
            if current and prev is not None and prev.state in SETTLED_STATES:
                old: str | None = p.value
            else:
                old = sit.last_drift.get(p.path)
            lines.append(DriftRecord(
                device_id=sit.device_id, assignment_id=a.id, assignment_name=a.name, kind="drift",
                event=VALUE_CHANGE, action=action, detected_at=sit.now, setting=sit.setting_of(p.path),
                path=p.path, old_value=_masked(sit, p.path, old), new_value=_masked(sit, p.path, reported),
                node=sit.node))
    return lines


def _job_line(part: Part, sit: Situation, p: Tr069Param, value: str, job: int | None) -> DriftRecord:
    a = part.assignment
    return DriftRecord(
        device_id=sit.device_id, assignment_id=a.id, assignment_name=a.name, kind="job_conflict",
        event=f"job {job}" if job is not None else "job", action="job_won", detected_at=sit.now,
        setting=sit.setting_of(p.path), path=p.path, old_value=_masked(sit, p.path, p.value),
        new_value=_masked(sit, p.path, value), job_id=job, node=sit.node)
