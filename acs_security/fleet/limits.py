"""The job engine's server-wide limits (a module of its own so that the engine's parts can
name them without importing the engine)."""

from __future__ import annotations

from acs_security.connreq.policy import BackoffPolicy

__all__ = ["EngineLimits"]


class EngineLimits:
    """Server-wide limits and timings of connection requests (per job limits are JobOptions)."""

    def __init__(self, *, max_cr_in_flight: int = 200, cr_session_wait: float = 45.0,
                 max_cr_attempts: int = 3, tick: float = 0.2, keep_finished_jobs: int = 20,
                 backoff: BackoffPolicy | None = None, stun_keepalive: float = 120.0) -> None:
        self.max_cr_in_flight = max_cr_in_flight
        self.cr_session_wait = cr_session_wait
        self.max_cr_attempts = max_cr_attempts
        self.keep_finished_jobs = keep_finished_jobs
        self.tick = tick
        self.backoff = backoff or BackoffPolicy(base=5.0, cap=120.0)
        # How long a STUN binding stays usable when the phone's keep-alive period is not
        # known (fleet/reach.py).
        self.stun_keepalive = stun_keepalive
