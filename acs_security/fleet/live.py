"""The job engine's working copy of jobs and tasks (pure: no I/O, times are floats passed in).

Counts per state are kept incrementally, per job and per wave, so a summary of a
100,000-device job costs nothing; the store remains the durable record.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from acs_security.fleet.tasks import ACTIVE, TERMINAL, TaskEvent, TaskState, next_state
from acs_security.policy.document import Policy
from acs_security.store.jobs import JobRecord, TargetDevice, TaskRecord, TaskUpdate

__all__ = ["LiveJob", "LiveTask", "JobOptions", "PARAMETER_KEY_PREFIX", "FILE_CONTENTS"]

#: A job's ParameterKey (and the CommandKey of its transfers) is this prefix and its id.
PARAMETER_KEY_PREFIX = "acs-sec-job-"
#: What a push's cfg.xml holds: the policy's settings, or the phone's whole known configuration.
FILE_CONTENTS = ("policy", "full")


@dataclass(frozen=True, slots=True)
class JobOptions:
    canary: float = 0
    wave_size: int | None = None
    max_fault_rate: float = 0.2
    force_all: bool = False
    readback: bool = False
    max_cr_in_flight: int = 200
    max_in_progress: int = 1000
    # How settings travel (policy/plan.py METHODS) and what a cfg.xml file holds.
    method: str = "auto"
    file_content: str = "policy"

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobOptions:
        known = {k: data[k] for k in cls.__slots__ if k in data}  # type: ignore[attr-defined]
        return cls(**known)


@dataclass(eq=False, slots=True)
class LiveTask:
    job: LiveJob
    device_id: str
    position: int
    wave: int
    state: TaskState = TaskState.PENDING
    attempts: int = 0
    sent: int = 0
    cr_exhausted: bool = False
    next_attempt: float = 0.0
    requested_at: float | None = None
    fault_code: int | None = None
    fault_string: str | None = None
    faults: tuple[dict[str, Any], ...] = ()
    detail: str | None = None
    finished_at: float | None = None
    # Several nodes (fleet/cluster.py): whether this node's job runner holds the task's
    # claim (False: only a session on this node touches it), and whether this node has
    # let go of it (another node finished or took it).
    claimed: bool = True
    gone: bool = False
    # Whether the task is in the job's counts. Several nodes: the counts are the store's
    # (set_counts at each tick), which already hold this node's written changes; a task
    # added uncounted must not move them again, or a change is subtracted twice (the
    # store's snapshot and the local apply): requested=-193 near the end of a large push.
    counted: bool = True
    # The method of the last connection request sent (connreq/methods.py ReachMethod value).
    reached_by: str | None = None

    def update(self, now: float) -> TaskUpdate:
        return TaskUpdate(
            job_id=self.job.id, device_id=self.device_id, state=self.state.value,
            attempts=self.attempts, sent=self.sent, cr_exhausted=self.cr_exhausted,
            updated_at=_dt(now), fault_code=self.fault_code, fault_string=self.fault_string,
            faults=self.faults, detail=self.detail,
            finished_at=_dt(self.finished_at) if self.finished_at is not None else None,
            node=self.job.node, next_attempt=_dt(self.next_attempt) if self.next_attempt else None,
            reached_by=self.reached_by,
        )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(eq=False)
class LiveJob:
    id: int
    name: str
    policy: Policy
    options: JobOptions
    parameter_key: str
    state: str
    current_wave: int
    wave_count: int
    deadline: float
    created: float
    reason: str | None = None
    tasks: dict[str, LiveTask] = field(default_factory=dict)
    counts: Counter[TaskState] = field(default_factory=Counter)
    wave_counts: dict[int, Counter[TaskState]] = field(default_factory=dict)
    # Pending tasks in the order their connection requests go out (retries at the back).
    queue: deque[LiveTask] = field(default_factory=deque)
    # Tasks waiting for their device to call in after a connection request, so that the
    # engine's tick checks those, not every task of the job (O(requested), not O(devices)).
    requested: dict[LiveTask, None] = field(default_factory=dict)
    # The last wave whose fault brake an operator released with resume (-1: none).
    brake_released: int = -1
    first_outcome: float | None = None
    last_outcome: float | None = None
    durations: list[float] = field(default_factory=list)
    # The node name written with every task change (None: leave the column as it is).
    node: str | None = None
    # push: the policy's SetParameterValues (fleet/session_side.py); audit: GetParameterValues
    # of the settings assignments control (acs_security/desired/audit_side.py), whose spec
    # ({"assignments": [ids] or None}) is ``audit``.
    kind: str = "push"
    audit: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, rec: JobRecord) -> LiveJob:
        return cls(
            id=rec.id, name=rec.name, policy=Policy.from_json(rec.policy),
            options=JobOptions.from_json(rec.options), parameter_key=rec.parameter_key,
            state=rec.state, current_wave=rec.current_wave, wave_count=rec.wave_count,
            deadline=rec.deadline.timestamp(), created=rec.created_at.timestamp(), reason=rec.reason,
            brake_released=rec.brake_released, kind=rec.kind,
            audit=rec.options.get("audit") if isinstance(rec.options.get("audit"), dict) else None,
        )

    def refresh(self, rec: JobRecord) -> None:
        """Take the job's state from the store (another node or an operator changed it)."""
        self.state, self.current_wave, self.reason = rec.state, rec.current_wave, rec.reason
        self.brake_released = rec.brake_released

    def add(self, rec: TaskRecord, *, count: bool = True, queue: bool = True,
            claimed: bool = True) -> LiveTask:
        state = TaskState(rec.state)
        # A restart loses the connection requests and sessions that were in progress:
        # those devices are pending again (their ParameterKey tells at the next Inform
        # whether the change already landed).
        if state in (TaskState.REQUESTED, TaskState.IN_SESSION):
            state = TaskState.PENDING
        task = LiveTask(self, rec.device_id, rec.position, rec.wave, state, rec.attempts, rec.sent,
                        rec.cr_exhausted, fault_code=rec.fault_code, fault_string=rec.fault_string,
                        faults=rec.faults, detail=rec.detail, claimed=claimed, counted=count)
        if rec.next_attempt is not None:
            task.next_attempt = rec.next_attempt.timestamp()
        self.tasks[rec.device_id] = task
        if count:
            self._count(task, +1)
        if queue and state is TaskState.PENDING:
            self.queue.append(task)
        return task

    def forget(self, task: LiveTask) -> None:
        """Let go of a task another node finished or holds (counts come from the store)."""
        task.gone = True
        if self.tasks.get(task.device_id) is task:
            del self.tasks[task.device_id]
        self.requested.pop(task, None)

    def set_counts(self, by_wave: dict[tuple[int, str], int]) -> None:
        """Replace the counts with the store's (several nodes change one job's tasks)."""
        self.counts = Counter()
        self.wave_counts = {}
        for (wave, state), n in by_wave.items():
            st = TaskState(state)
            self.counts[st] += n
            self.wave_counts.setdefault(wave, Counter())[st] += n

    def _count(self, task: LiveTask, delta: int) -> None:
        self.counts[task.state] += delta
        self.wave_counts.setdefault(task.wave, Counter())[task.state] += delta

    def apply(self, task: LiveTask, event: TaskEvent, now: float) -> TaskState:
        """Move ``task`` by ``event`` (raises InvalidTransition) and keep the counts right."""
        new = next_state(task.state, event)
        if task.counted:
            self._count(task, -1)
        if task.state is TaskState.REQUESTED:
            self.requested.pop(task, None)
        task.state = new
        if task.counted:
            self._count(task, +1)
        if new is TaskState.REQUESTED:
            self.requested[task] = None
        if new is TaskState.PENDING and event is not TaskEvent.CR_FAILED and task.claimed:
            self.queue.append(task)
        if new in TERMINAL:
            task.finished_at = now
            if new is not TaskState.CANCELLED:
                self.first_outcome = self.first_outcome if self.first_outcome is not None else now
                self.last_outcome = now
                self.durations.append(now - self.created)
        return new

    @property
    def active(self) -> int:
        return sum(self.counts[s] for s in ACTIVE)

    @property
    def in_progress(self) -> int:
        return self.counts[TaskState.REQUESTED] + self.counts[TaskState.IN_SESSION]

    def wave_state_counts(self, wave: int | None = None) -> Counter[TaskState]:
        """Task counts by state of ``wave`` (default: the current wave); empty when none."""
        return self.wave_counts.get(self.current_wave if wave is None else wave) or Counter()

    def open_wave(self, wave: int) -> bool:
        return wave <= self.current_wave

    def contactable(self, wave: int, devices: dict[str, TargetDevice]) -> int:
        """Pending tasks of ``wave`` that still get connection requests."""
        n = 0
        for task in self.tasks.values():
            if (task.wave == wave and task.state is TaskState.PENDING and not task.cr_exhausted
                    and _reachable(devices.get(task.device_id))):
                n += 1
        return n

    def summary(self, now: float) -> dict[str, Any]:
        counts = {s.value: self.counts.get(s, 0) for s in TaskState}
        done = sum(self.counts[s] for s in TERMINAL if s is not TaskState.CANCELLED)
        elapsed = max(1e-9, (self.last_outcome or now) - self.created)
        rate = done / elapsed if done else 0.0
        remaining = self.active
        eta = remaining / rate if rate and self.state == "running" else None
        if eta is not None and remaining <= _ETA_SCAN_LIMIT:
            # Near the end the rate says "a second left" while the last phones wait for a
            # retry of their connection request: the job cannot end before the last one.
            waits = [t.next_attempt - now for t in self.tasks.values()
                     if t.state is TaskState.PENDING and not t.cr_exhausted and t.next_attempt > now]
            if waits:
                eta = max(eta, max(waits))
        durations = sorted(self.durations)
        return {
            "counts": counts,
            "total": len(self.tasks),
            "done": done,
            "rate_per_s": round(rate, 2),
            "eta_s": round(eta, 1) if eta is not None else None,
            "p50_s": round(durations[len(durations) // 2], 3) if durations else None,
            "p99_s": round(durations[min(len(durations) - 1, int(len(durations) * 0.99))], 3) if durations else None,
        }


# Tasks left below which the ETA also looks at their retry times (a scan of the job's tasks).
_ETA_SCAN_LIMIT = 5_000


def _reachable(device: TargetDevice | None) -> bool:
    return device is not None and bool(device.connection_request_url or device.udp_connection_request_address
                                       or device.xmpp_jid)
