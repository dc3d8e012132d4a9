"""The records of fleet jobs and tasks, and their reading from rows.

Shared by the job methods (store/jobs.py) and the claim methods (store/claims.py) of the
Store, and by the engine, which keeps working copies of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["REACH_PARAMETERS", "JobRecord", "TargetDevice", "TaskRecord", "TaskUpdate", "job_from_row",
           "reach_facts", "task_from_row"]

_MS = "Device.ManagementServer."
#: The device parameters the choice of a connection-request method reads (TR-181
#: Device.ManagementServer., TR-111 part 2): whether the phone found itself behind NAT,
#: and how often it refreshes its STUN binding.
REACH_PARAMETERS = (_MS + "NATDetected", _MS + "STUNMinimumKeepAlivePeriod", _MS + "STUNMaximumKeepAlivePeriod")


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
    # How the last connection request before the device's session went (http, udp, xmpp);
    # None: none was sent (store migration step 10).
    reached_by: str | None = None


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
    # The method of the last connection request sent (None keeps the stored one).
    reached_by: str | None = None


@dataclass(frozen=True, slots=True)
class TargetDevice:
    """What the engine needs of a targeted device, the choice of a connection-request
    method included (fleet/reach.py): the address its last Inform came from, its
    NATDetected, when the STUN server last saw its UDP address (Unix seconds), its STUN
    keep-alive period and its Jabber ID."""

    device_id: str
    product_class: str
    software_version: str | None
    serial_number: str
    connection_request_url: str | None
    udp_connection_request_address: str | None
    parameter_key: str | None
    tags: tuple[str, ...] = ()
    remote_address: str | None = None
    nat_detected: bool | None = None
    udp_seen: float | None = None
    keepalive_s: int | None = None
    xmpp_jid: str | None = None


def reach_facts(values: dict[str, str]) -> dict[str, Any]:
    """``nat_detected`` and ``keepalive_s`` of a TargetDevice from the device's known values
    of REACH_PARAMETERS. The keep-alive period is the longest the phone may wait between
    two Binding Requests: STUNMaximumKeepAlivePeriod, else the minimum (TR-181: -1 means no
    maximum); values that are not numbers are ignored."""
    nat = values.get(_MS + "NATDetected")
    nat_detected = None if nat is None else nat.strip().lower() in ("true", "1")
    keepalive = None
    for name in (_MS + "STUNMaximumKeepAlivePeriod", _MS + "STUNMinimumKeepAlivePeriod"):
        text = values.get(name, "").strip()
        if text.lstrip("-").isdigit() and int(text) > 0:
            keepalive = int(text)
            break
    return {"nat_detected": nat_detected, "keepalive_s": keepalive}


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
        next_attempt=row.next_attempt, reached_by=row.reached_by,
    )
