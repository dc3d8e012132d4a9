"""A job's task counts stay right when they come from the store (several nodes, cluster mode).

The store's counts (set_counts at each tick) already hold the changes this node wrote; a
task this node added uncounted must not move them again. Before, an outcome written and
then applied locally was subtracted twice: "requested=-193" in the progress line near the
end of a 100,000-phone push.
"""

from __future__ import annotations

from datetime import UTC, datetime

from acs_security.fleet.live import JobOptions, LiveJob
from acs_security.fleet.tasks import TaskEvent, TaskState
from acs_security.policy.document import Policy
from acs_security.store.jobrecords import TaskRecord


def _job() -> LiveJob:
    return LiveJob(id=7, name="push", policy=Policy("p", {}), options=JobOptions(),
                   parameter_key="acs-sec-job-7", state="running", current_wave=0, wave_count=1,
                   deadline=1e9, created=0.0)


def _rec(device_id: str, state: str = "pending") -> TaskRecord:
    return TaskRecord(job_id=7, device_id=device_id, position=0, wave=0, state=state, attempts=0,
                      sent=0, cr_exhausted=False, fault_code=None, fault_string=None, faults=(),
                      detail=None, updated_at=datetime(2026, 1, 1, tzinfo=UTC), finished_at=None)


def test_uncounted_task_leaves_the_store_counts_alone() -> None:
    job = _job()
    task = job.add(_rec("d1"), count=False)
    job.apply(task, TaskEvent.CR_SENT, 1.0)
    # The store's snapshot after this node wrote the connection request and the outcome.
    job.set_counts({(0, "applied"): 1})
    job.apply(task, TaskEvent.SESSION, 2.0)
    job.apply(task, TaskEvent.APPLIED, 3.0)
    assert job.counts[TaskState.REQUESTED] == 0
    assert job.counts[TaskState.IN_SESSION] == 0
    assert job.counts[TaskState.APPLIED] == 1
    assert all(n >= 0 for n in job.wave_state_counts(0).values())
    # The uncounted task still leaves the requested index (the tick's O(requested) check).
    assert task not in job.requested


def test_counted_task_moves_the_counts() -> None:
    job = _job()
    task = job.add(_rec("d1"))
    assert job.counts[TaskState.PENDING] == 1
    job.apply(task, TaskEvent.CR_SENT, 1.0)
    assert job.counts[TaskState.PENDING] == 0 and job.counts[TaskState.REQUESTED] == 1
    assert task in job.requested
    job.apply(task, TaskEvent.SESSION, 2.0)
    job.apply(task, TaskEvent.APPLIED, 3.0)
    assert +job.counts == {TaskState.APPLIED: 1}


def test_the_eta_waits_for_the_last_phones_retry() -> None:
    """The rate alone says a fraction of a second is left when the last phone waits 30 s
    for the retry of its connection request ("about 0.1s left" at the demo's end)."""
    job = _job()
    tasks = [job.add(_rec(f"d{i}")) for i in range(11)]
    for i, task in enumerate(tasks[:10]):
        job.apply(task, TaskEvent.CR_SENT, float(i))
        job.apply(task, TaskEvent.SESSION, i + 0.1)
        job.apply(task, TaskEvent.APPLIED, i + 0.2)
    assert job.summary(10.0)["eta_s"] == 0.9  # 10 done in 9.2 s, one left
    tasks[10].next_attempt = 40.0
    assert job.summary(10.0)["eta_s"] == 30.0
    tasks[10].cr_exhausted = True  # no more requests: it waits for its periodic Inform
    assert job.summary(10.0)["eta_s"] == 0.9
