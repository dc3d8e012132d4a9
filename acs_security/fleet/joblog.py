"""One structured log line per job state change, and one per minute while a job runs.

An operator watching a 100,000-phone push reads the job's story from these lines, not from
100,000 session lines: submitted, each wave opening, a halt by the fault brake, resume,
cancel, completion, each with the counts per state. Every line carries the fields
``job_id``, ``job_name``, ``job_event``, ``counts`` (state -> devices) and ``node``, so that a
JSON log (``--log-json``) can be filtered and graphed; the text reads:

    job 3 hardening: wave_started wave 2/3; applied=200 faulted=4 pending=288
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.logger import Logger

from acs_security.display import printable
from acs_security.fleet.live import LiveJob
from acs_security.fleet.tasks import ACTIVE, TaskState

__all__ = ["PROGRESS_EVERY", "JOB_EVENTS", "job_event", "maybe_progress"]

log = Logger(namespace="acs_security.jobs")

#: Seconds between two progress lines of a running job.
PROGRESS_EVERY = 60.0
JOB_EVENTS = ("submitted", "wave_started", "halted", "resumed", "cancelled", "completed", "progress")
_ORDER = [s.value for s in TaskState]


def _counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{s}={counts[s]}" for s in _ORDER if counts.get(s))


def job_event(job: LiveJob, event: str, *, detail: str = "", warn: bool = False,
              node: str | None = None) -> None:
    """Log ``event`` (one of JOB_EVENTS) of ``job`` with its counts; ``warn`` for a halt."""
    counts = {s.value: n for s, n in job.counts.items() if n}
    text = "; ".join(p for p in (printable(detail), _counts_text(counts)) if p)
    emit = log.warn if warn else log.info
    emit("job {job_id} {job_name}: {job_event} {text}", job_id=job.id, job_name=printable(job.name),
         job_event=event, counts=counts, text=text, node=node if node is not None else job.node,
         wave=job.current_wave, wave_count=job.wave_count)


def maybe_progress(job: LiveJob, now: float, last: dict[int, float], *,
                   every: float = PROGRESS_EVERY) -> None:
    """A progress line for a running job when ``every`` seconds have passed since the last
    one (``last`` maps job id -> time of its last line; the first line comes ``every``
    seconds after the job was first seen running)."""
    seen = last.setdefault(job.id, now)
    if now - seen < every:
        return
    last[job.id] = now
    done = sum(n for s, n in job.counts.items() if s not in ACTIVE)
    total = sum(job.counts.values())
    job_event(job, "progress", detail=f"{done}/{total} done, wave {job.current_wave + 1}/{job.wave_count}")
