"""The records of fleet jobs and tasks, and their reading from rows.

Shared by the job methods (store/jobs.py) and the claim methods (store/claims.py) of the
Store, and by the engine, which keeps working copies of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["JobRecord", "TargetDevice", "TaskRecord", "TaskUpdate", "job_from_row", "task_from_row"]


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    name: str
    policy: dict[str, Any]
    selector: str
    options: dict[str, Any]
    parameter_key: str
    state: str
    current_wave: int
    wave_count: int
    total: int
    reason: str | None
    created_at: datetime
    updated_at: datetime
    deadline: datetime
    finished_at: datetime | None
    brake_released: int = -1
    # push, or audit (GetParameterValues of assigned settings; store migration step 6).
    kind: str = "push"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    job_id: int
    device_id: str
    position: int
    wave: int
    state: str
    attempts: int
    sent: int
    cr_exhausted: bool
    fault_code: int | None
    fault_string: str | None
    faults: tuple[dict[str, Any], ...]
    detail: str | None
    updated_at: datetime
    finished_at: datetime | None
    node: str | None = None
    next_attempt: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """The new values of one task row (every column the engine changes)."""

    job_id: int
    device_id: str
    state: str
    attempts: int
    sent: int
    cr_exhausted: bool
    updated_at: datetime
    fault_code: int | None = None
    fault_string: str | None = None
    faults: tuple[dict[str, Any], ...] = field(default=())
    detail: str | None = None
    finished_at: datetime | None = None
    # The node that made the change (None keeps the stored one) and when the next
    # connection request may go (None: now).
    node: str | None = None
    next_attempt: datetime | None = None


@dataclass(frozen=True, slots=True)
class TargetDevice:
    """What the engine needs of a targeted device."""

    device_id: str
    product_class: str
    software_version: str | None
    serial_number: str
    connection_request_url: str | None
    udp_connection_request_address: str | None
    parameter_key: str | None
    tags: tuple[str, ...] = ()


def job_from_row(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id, name=row.name, policy=json.loads(row.policy), selector=row.selector,
        options=json.loads(row.options), parameter_key=row.parameter_key, state=row.state,
        current_wave=row.current_wave, wave_count=row.wave_count, total=row.total,
        reason=row.reason, created_at=row.created_at, updated_at=row.updated_at,
        deadline=row.deadline, finished_at=row.finished_at, brake_released=row.brake_released,
        kind=row.kind,
    )


def task_from_row(row: Any) -> TaskRecord:
    return TaskRecord(
        job_id=row.job_id, device_id=row.device_id, position=row.position, wave=row.wave,
        state=row.state, attempts=row.attempts, sent=row.sent, cr_exhausted=bool(row.cr_exhausted),
        fault_code=row.fault_code, fault_string=row.fault_string,
        faults=tuple(json.loads(row.faults)) if row.faults else (), detail=row.detail,
        updated_at=row.updated_at, finished_at=row.finished_at, node=row.node,
        next_attempt=row.next_attempt,
    )
