"""One log line when the store's database becomes unavailable, one when it is back.

During an outage every session and every job step that needs the store fails; logging
each would flood the log with thousands of identical lines, and hide when the outage began
and how long it lasted. The store notes outages in its :class:`~acs_security.store.health.StoreHealth`
(from its worker threads); :class:`OutageLog` drains those transitions in the reactor
thread after each store result (DeferredStore's ``on_result``), and every second while an
outage lasts (so that its end is logged when calls have settled, store/health.py), and logs:

- ``store unavailable: ...`` once, when the first call fails, with the first error;
- ``store available again after N s`` once, when calls have succeeded again for the
  settling time (for a full database: writes), with the duration and the number of failed
  calls.

Meanwhile the CWMP endpoint answers 503 + Retry-After (server/cwmp_resource.py) and
counts them in ``acs_cwmp_http_503_total{reason="store_unavailable"}``; the metrics read
``acs_store_unavailable`` from the same health state, and the job engine holds its
connection requests while ``StoreHealth.unavailable`` (fleet/engine.py).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from acs_security.store.health import FULL, OutageEnded, OutageStarted, StoreHealth

__all__ = ["OutageLog"]

log = Logger(namespace="acs_security.store")


class OutageLog:
    """Logs a store's outage transitions; call :meth:`check` in the reactor thread.
    ``clock`` (an IReactorTime) drives the check every ``interval`` seconds during an outage;
    without one, only :meth:`check` calls do."""

    def __init__(self, health: StoreHealth, *, clock: Any = None, interval: float = 1.0) -> None:
        self._health = health
        self._clock = clock
        self._interval = interval
        self._loop: LoopingCall | None = None
        self._stopped = False

    def check(self) -> None:
        """Log what changed since the last check."""
        for transition in self._health.drain():
            if isinstance(transition, OutageStarted):
                outage = transition.outage
                what = "cannot grow (full)" if outage.kind == FULL else "cannot be reached"
                log.warn("store unavailable: the database {what}; CWMP sessions are answered 503 + "
                         "Retry-After until it is back; first error: {error}",
                         what=what, error=outage.error, kind=outage.kind)
            elif isinstance(transition, OutageEnded):
                outage = transition.outage
                log.warn("store available again after {duration:.1f} s ({failures} failed store "
                         "call(s) meanwhile)", duration=transition.duration, failures=outage.failures,
                         kind=outage.kind)
        self._pace()

    def _pace(self) -> None:
        ongoing = self._health.outage is not None
        if ongoing and self._loop is None and self._clock is not None and not self._stopped:
            self._loop = LoopingCall(self.check)
            self._loop.clock = self._clock
            self._loop.start(self._interval, now=False)
        elif not ongoing and self._loop is not None:
            self._stop_loop()

    def stop(self) -> None:
        """Stop the periodic check (server stop)."""
        self._stopped = True
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            if self._loop.running:
                self._loop.stop()
            self._loop = None
