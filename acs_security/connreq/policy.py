"""Retry timing for connection requests: capped exponential backoff with jitter.

Pure: the random draw comes in as an argument. Jitter spreads retries so that a fleet of
phones that were all busy at once is not asked again all at once (the "thundering herd"
that made the phones busy). Retry-After from a 503 (RFC 9110 section 10.2.3) takes
precedence over the schedule when the phone gives it.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

__all__ = ["BackoffPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delay before retry ``attempt`` (1 = first retry): ``min(cap, base * factor**(attempt-1))``,
    then reduced by up to ``jitter`` of itself (so it never exceeds the cap).
    ``max_retry_after`` bounds how long a phone's Retry-After may make the ACS wait
    before giving up on this round (the job engine can come back later).
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap <= 0:
            raise ValueError("base and cap must be positive")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must not be negative")

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before retry ``attempt``; ``rand`` is uniform in [0, 1).

        Raises:
            ValueError: attempt below 1 or rand outside [0, 1).
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        if not 0 <= rand < 1:
            raise ValueError("rand must be in [0, 1)")
        # Exponent capped so huge attempt numbers cannot overflow a float.
        raw = self.base * self.factor ** min(attempt - 1, 64)
        return min(self.cap, raw) * (1 - self.jitter * rand)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), or None
    when absent or unreadable (RFC 9110 section 10.2.3). Never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None
