"""Job log lines: one per state change with counts, one per minute while a job runs."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from twisted.logger import ILogObserver, LogLevel, globalLogPublisher

from acs_security.fleet.joblog import job_event, maybe_progress
from acs_security.fleet.live import JobOptions, LiveJob
from acs_security.fleet.tasks import TaskState
from acs_security.policy.document import Policy


def _job() -> LiveJob:
    job = LiveJob(id=4, name="hard\u202eening", policy=Policy("p", {}), options=JobOptions(),
                  parameter_key="acs-sec-job-4", state="running", current_wave=1, wave_count=3,
                  deadline=1e9, created=0.0, node="n1")
    job.counts = Counter({TaskState.APPLIED: 230, TaskState.FAULTED: 5, TaskState.PENDING: 257})
    return job


def _capture() -> tuple[list[dict[str, Any]], Any]:
    seen: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "acs_security.jobs":
            seen.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, observe))
    return seen, observe


def test_job_event_carries_structured_fields_and_a_readable_line() -> None:
    seen, observe = _capture()
    try:
        job_event(_job(), "halted", detail="wave 1: 5 faulted of 10 decided", warn=True)
    finally:
        globalLogPublisher.removeObserver(observe)
    (event,) = seen
    assert event["log_level"] == LogLevel.warn
    assert event["job_id"] == 4 and event["job_event"] == "halted" and event["node"] == "n1"
    assert event["counts"] == {"applied": 230, "faulted": 5, "pending": 257}
    assert event["job_name"] == "hard\\u202eening"  # a name cannot reorder the log line
    assert event["text"] == "wave 1: 5 faulted of 10 decided; pending=257 applied=230 faulted=5"


def test_progress_is_logged_once_a_minute_per_running_job() -> None:
    seen, observe = _capture()
    last: dict[int, float] = {}
    job = _job()
    try:
        for t in range(0, 181, 1):  # three minutes of engine ticks, one per second
            maybe_progress(job, float(t), last)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert [e["job_event"] for e in seen] == ["progress"] * 3
    assert seen[0]["text"].startswith("235/492 done, wave 2/3")
