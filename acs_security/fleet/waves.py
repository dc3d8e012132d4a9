"""Waves of a fleet job: a canary group first, then waves of a given size, with a fault brake.

Pure arithmetic over counts. A wave is *settled* when none of its devices is being
contacted or in a session any more: every task is final, or waiting for the device's next
periodic Inform after its connection requests failed (an offline phone must not hold
back the whole fleet); a device that took a file transfer is in flight until its
TransferComplete. When a settled wave's fault rate (faulted / decided) passes the
job's threshold, the job halts and waits for an operator's ``resume``; a wave whose
faults already exceed the threshold of its whole size halts at once, without waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acs_security.fleet.tasks import SUCCESS, TaskState

if TYPE_CHECKING:
    from acs_security.fleet.live import LiveJob

__all__ = ["WaveOptions", "WaveVerdict", "assign_waves", "halt_reason", "job_verdict", "parse_canary", "wave_verdict"]


@dataclass(frozen=True, slots=True)
class WaveOptions:
    """``canary``: a device count (>= 1) or a fraction of the fleet (0 < f < 1); 0 for none.
    ``wave_size``: devices per wave after the canary; None for all at once.
    ``max_fault_rate``: 0..1, the brake."""

    canary: float = 0
    wave_size: int | None = None
    max_fault_rate: float = 0.2

    def __post_init__(self) -> None:
        if self.canary < 0 or (self.canary >= 1 and self.canary != int(self.canary)):
            raise ValueError(f"canary must be a count or a fraction in (0, 1), got {self.canary}")
        if self.wave_size is not None and self.wave_size < 1:
            raise ValueError(f"wave size must be at least 1, got {self.wave_size}")
        if not 0 <= self.max_fault_rate <= 1:
            raise ValueError(f"max fault rate must be within 0..1, got {self.max_fault_rate}")


def parse_canary(text: str) -> float:
    """``"10"`` (devices) or ``"5%"`` (of the fleet). Raises ValueError with the reason."""
    text = text.strip()
    if text.endswith("%"):
        pct = float(text[:-1])
        if not 0 < pct < 100:
            raise ValueError(f"canary percentage must be within (0, 100), got {text}")
        return pct / 100
    count = int(text)
    if count < 0:
        raise ValueError(f"canary count must be >= 0, got {text}")
    return float(count)


def assign_waves(total: int, options: WaveOptions) -> list[int]:
    """The wave number of each of ``total`` devices, in order (wave 0 is the canary if any)."""
    if total <= 0:
        return []
    canary = options.canary
    n_canary = math.ceil(total * canary) if 0 < canary < 1 else int(canary)
    n_canary = min(n_canary, total)
    waves: list[int] = [0] * n_canary
    first = 1 if n_canary else 0
    rest = total - n_canary
    size = options.wave_size or rest or 1
    for i in range(rest):
        waves.append(first + i // size)
    return waves


@dataclass(frozen=True, slots=True)
class WaveVerdict:
    state: str  # "open", "settled" or "halt"
    decided: int
    faulted: int
    fault_rate: float


def wave_verdict(
    counts: Mapping[TaskState, int], *, contactable: int, max_fault_rate: float
) -> WaveVerdict:
    """Judge one wave from its task counts.

    ``contactable`` is how many of its pending tasks still get connection requests (the
    rest wait for a periodic Inform). Raises nothing; unknown states count as in flight.
    """
    total = sum(counts.values())
    faulted = counts.get(TaskState.FAULTED, 0)
    decided = faulted + sum(counts.get(s, 0) for s in SUCCESS)
    rate = faulted / decided if decided else 0.0
    if total and faulted > max_fault_rate * total:
        return WaveVerdict("halt", decided, faulted, rate)
    in_flight = (
        counts.get(TaskState.REQUESTED, 0) + counts.get(TaskState.IN_SESSION, 0)
        + counts.get(TaskState.TRANSFERRING, 0) + contactable
    )
    if in_flight:
        return WaveVerdict("open", decided, faulted, rate)
    if decided and rate > max_fault_rate:
        return WaveVerdict("halt", decided, faulted, rate)
    return WaveVerdict("settled", decided, faulted, rate)


def job_verdict(job: LiveJob, contactable: int) -> WaveVerdict:
    """The current wave's verdict from the job's counts; a wave whose brake an operator
    released (resume) is judged without the brake."""
    counts = job.wave_state_counts()
    rate = 1.0 if job.current_wave <= job.brake_released else job.options.max_fault_rate
    return wave_verdict(counts, contactable=contactable, max_fault_rate=rate)


def halt_reason(job: LiveJob, verdict: WaveVerdict) -> str:
    return (f"wave {job.current_wave}: {verdict.faulted} faulted of {verdict.decided} "
            f"decided ({verdict.fault_rate:.0%} > {job.options.max_fault_rate:.0%})")
