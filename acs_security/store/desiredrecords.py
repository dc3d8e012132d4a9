"""The records of desired state in the store: assignments, per device and assignment rows,
drift events, audit readings (decision 0009). Read from rows here, written by
store/desired.py; the session side and the service layer use them as plain values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ASSIGNMENT_MODES",
    "ROW_STATES",
    "EVENT_KINDS",
    "AssignmentRecord",
    "DeviceAssignment",
    "DriftRecord",
    "AuditReading",
    "assignment_from_row",
    "device_assignment_from_row",
    "drift_from_row",
]

#: enforce: differences are corrected in the session; audit: reported only.
ASSIGNMENT_MODES = ("enforce", "audit")
#: What a device is for one assignment (device_assignments.state).
ROW_STATES = ("applied", "compliant", "drifted", "faulted", "skipped", "overridden", "unknown")
#: What a history row records (drift_events.kind).
EVENT_KINDS = ("drift", "job_conflict", "factory_reset")


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    id: int
    name: str
    policy: dict[str, Any]
    policy_name: str
    selector: str
    priority: int
    mode: str
    enabled: bool
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceAssignment:
    """One device under one assignment, as last established (written whole, read whole)."""

    device_id: str
    assignment_id: int
    revision: int
    state: str
    updated_at: datetime
    detail: str | None = None
    skipped: tuple[str, ...] = ()
    faults: tuple[dict[str, Any], ...] = ()
    notified_revision: int = -1
    software_version: str | None = None
    job_id: int | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class DriftRecord:
    """One line of a device's desired-state history. Values of secret settings arrive
    masked: the store never holds them here."""

    device_id: str
    assignment_id: int | None
    assignment_name: str
    kind: str
    event: str
    action: str
    detected_at: datetime
    setting: str | None = None
    path: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    job_id: int | None = None
    node: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditReading:
    """What an audit read from one device: per-setting verdicts (values masked)."""

    job_id: int
    device_id: str
    items: tuple[dict[str, Any], ...]
    read_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


def assignment_from_row(row: Any) -> AssignmentRecord:
    return AssignmentRecord(
        id=row.id, name=row.name, policy=json.loads(row.policy), policy_name=row.policy_name,
        selector=row.selector, priority=row.priority, mode=row.mode, enabled=bool(row.enabled),
        revision=row.revision, created_at=row.created_at, updated_at=row.updated_at)


def device_assignment_from_row(row: Any) -> DeviceAssignment:
    return DeviceAssignment(
        device_id=row.device_id, assignment_id=row.assignment_id, revision=row.revision,
        state=row.state, updated_at=row.updated_at, detail=row.detail,
        skipped=tuple(json.loads(row.skipped)) if row.skipped else (),
        faults=tuple(json.loads(row.faults)) if row.faults else (),
        notified_revision=row.notified_revision, software_version=row.software_version,
        job_id=row.job_id, node=row.node)


def drift_from_row(row: Any) -> DriftRecord:
    return DriftRecord(
        id=row.id, device_id=row.device_id, assignment_id=row.assignment_id,
        assignment_name=row.assignment_name, kind=row.kind, event=row.event, action=row.action,
        detected_at=row.detected_at, setting=row.setting, path=row.path, old_value=row.old_value,
        new_value=row.new_value, job_id=row.job_id, node=row.node)
