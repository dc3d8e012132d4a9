"""Refusal log lines, rate limited (ratelog.py): the Twisted side.

The CWMP endpoint and the management API (REST and SOAP) report each refusal here with the
source address, a short reason and a function that writes the refusal's own log line.
:class:`RefusalLog` calls it for the first ``burst`` refusals of a source per ``window``
seconds and counts the others; when a source's window ends it writes one summary line
(``37 more refusals from 203.0.113.9 in 60 s: auth: no credentials x30, ...``) at warning
level, waking up on the clock passed in. Settings ``refusal_log_burst`` and
``refusal_log_window`` (docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from acs_security.display import printable
from acs_security.server.ratelog import RefusalLimiter, Summary

__all__ = ["RefusalLog", "api_refusal_key"]

log = Logger(namespace="acs_security.refusals")


def api_refusal_key(exc: Exception) -> str:
    """The reason of an API refusal (auth.py Unauthorized / Forbidden) as summaries count it:
    the kind and the message, which names no token and comes from a small fixed set."""
    kind = "unauthorized" if getattr(exc, "status", None) == 401 else "forbidden"
    return f"{kind}: {getattr(exc, 'detail', '')}"[:100]


class RefusalLog:
    """One per server, shared by its faces, so that a source's lines are counted together."""

    def __init__(self, clock: IReactorTime, *, burst: int = 10, window: float = 60.0,
                 max_sources: int = 10_000, logger: Logger | None = None) -> None:
        self._clock = clock
        self._limiter = RefusalLimiter(burst=burst, window=window, max_sources=max_sources)
        self._log = logger or log
        self._timer: IDelayedCall | None = None

    def refused(self, source: str | None, reason: str, line: Callable[[], Any]) -> bool:
        """Count one refusal from ``source`` for ``reason``; call ``line()`` (which writes the
        refusal's log line) unless the source has had its share. True when it was called."""
        now = self._clock.seconds()
        self._flush(now)
        if self._limiter.admit(source, reason, now):
            line()
            return True
        self._schedule(now)
        return False

    def stop(self) -> None:
        """Write the pending summaries now and cancel the timer (server shutdown)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._flush(float("inf"))

    def _flush(self, now: float) -> None:
        for summary in self._limiter.due(now):
            self._write(summary)

    def _write(self, summary: Summary) -> None:
        self._log.warn("{summary}", summary=printable(summary.text()), source=summary.source,
                       refusals=summary.count, reasons=dict(summary.reasons))

    def _schedule(self, now: float) -> None:
        if self._timer is not None and self._timer.active():
            return
        due = self._limiter.next_due()
        if due is not None:
            self._timer = self._clock.callLater(max(0.0, due - now), self._wake)

    def _wake(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        self._flush(now)
        self._schedule(now)
