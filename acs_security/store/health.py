"""Whether the store's database is reachable, as the store's own calls find it. Pure.

The store calls :meth:`StoreHealth.failed` when a call fails because the database cannot
be reached or cannot take a write (errors.StoreUnavailable), and :meth:`StoreHealth.ok`
when a call succeeds. From those it keeps at most one *outage* at a time, and a queue of
transitions (an outage began, an outage ended after so long) that the server drains from
its reactor thread to log ONE line when an outage starts and ONE when it ends, however
many calls failed in between (server/outages.py); the metrics read the same state.

An outage ends once calls have succeeded for ``settle`` seconds (5) without a failure:
right after a database comes back, calls still in flight on dead connections fail for a
moment, and a full database takes some writes (those that fit in pages it has) and not
others; without the settling time each would end the outage and the next failure begin
another, a pair of log lines per session. Its duration runs from the first failure to the
first success after the last failure.

Two kinds of outage, because they end differently:
- ``unreachable``: connections fail (database down, connections refused or terminated);
  any successful call starts the settling;
- ``full``: the database cannot grow (SQLite ``SQLITE_FULL``: a full disk or
  ``max_page_count``; PostgreSQL ``53100 disk_full``). Reads go on succeeding while writes
  fail, so only a successful write starts the settling.

Thread-safe: store calls run in a thread pool. :meth:`ok` on a healthy store takes no lock
(it runs on every store call).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FULL", "UNREACHABLE", "Outage", "OutageEnded", "OutageStarted", "StoreHealth", "outage_kind"]

UNREACHABLE = "unreachable"
FULL = "full"
# SQLite result code SQLITE_FULL (https://www.sqlite.org/rescode.html#full) and the
# PostgreSQL SQLSTATE disk_full (class 53, insufficient resources).
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_MAX_TRANSITIONS = 1000  # undrained transitions kept (the oldest go first)


@dataclass(frozen=True, slots=True)
class Outage:
    kind: str  # UNREACHABLE or FULL
    since: float  # the health clock's time of the first failure
    error: str  # the first failure's message (no password: the store's messages have none)
    failures: int = 1  # failed calls so far


@dataclass(frozen=True, slots=True)
class OutageStarted:
    outage: Outage


@dataclass(frozen=True, slots=True)
class OutageEnded:
    outage: Outage  # as it was when it ended (failures counted)
    duration: float  # seconds from the first failure to the first success after it


#: PostgreSQL SQLSTATEs of a transaction aborted to let another one go on (Appendix A of
#: the PostgreSQL manual: deadlock_detected, serialization_failure): run it again.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a deadlock or serialization failure."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if getattr(cause, "sqlstate", None) in CONFLICT_SQLSTATES:
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False


def outage_kind(exc: BaseException) -> str:
    """FULL when ``exc`` (or what it wraps) says the database cannot grow, else UNREACHABLE."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL:
            return FULL
        if getattr(cause, "sqlstate", None) == _PG_DISK_FULL:
            return FULL
        if "database or disk is full" in str(cause):
            return FULL
        cause = getattr(cause, "orig", None) or cause.__cause__
    return UNREACHABLE


class StoreHealth:
    """The current outage, if any, and the transitions not yet drained."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, settle: float = 5.0) -> None:
        self._clock = clock
        self._settle = settle
        self._lock = threading.Lock()
        self._outage: Outage | None = None
        # During an outage: the first success after its last failure (None: still failing).
        self._recovered_at: float | None = None
        self._transitions: deque[OutageStarted | OutageEnded] = deque(maxlen=_MAX_TRANSITIONS)
        #: Outages begun and the seconds of those ended, since the store opened.
        self.outages = 0
        self.outage_seconds = 0.0

    @property
    def outage(self) -> Outage | None:
        """The outage in progress (settling included), or None."""
        return self._outage

    @property
    def unavailable(self) -> bool:
        """True while the outage's calls still fail (not yet settling)."""
        return self._outage is not None and self._recovered_at is None

    def seconds_unavailable(self) -> float:
        """Seconds of every outage so far, the one in progress included."""
        current, recovered = self._outage, self._recovered_at
        if current is None:
            return self.outage_seconds
        until = recovered if recovered is not None else self._clock()
        return self.outage_seconds + max(0.0, until - current.since)

    def failed(self, kind: str, error: str) -> None:
        """A call failed: the database is unreachable or full."""
        with self._lock:
            now = self._clock()
            self._settle_locked(now)
            current = self._outage
            self._recovered_at = None
            if current is None:
                self._outage = Outage(kind, now, error)
                self.outages += 1
                self._transitions.append(OutageStarted(self._outage))
            else:
                # A full database that then stops answering is unreachable: connections
                # failing is the broader fault, and a read then starts the settling.
                kind = UNREACHABLE if UNREACHABLE in (kind, current.kind) else FULL
                self._outage = Outage(kind, current.since, current.error, current.failures + 1)

    def ok(self, *, wrote: bool) -> None:
        """A call succeeded; ``wrote``: it committed a write."""
        current = self._outage
        if current is None:
            return
        if current.kind == FULL and not wrote and self._recovered_at is None:
            return
        with self._lock:
            now = self._clock()
            if self._outage is not None and self._recovered_at is None:
                if self._outage.kind == FULL and not wrote:
                    return
                self._recovered_at = now
            self._settle_locked(now)

    def _settle_locked(self, now: float) -> None:
        current, recovered = self._outage, self._recovered_at
        if current is None or recovered is None or now - recovered < self._settle:
            return
        duration = max(0.0, recovered - current.since)
        self._outage = self._recovered_at = None
        self.outage_seconds += duration
        self._transitions.append(OutageEnded(current, duration))

    def drain(self) -> list[OutageStarted | OutageEnded]:
        """The transitions since the last drain, oldest first (an outage whose settling
        time has passed ends here)."""
        if self._outage is None and not self._transitions:
            return []
        with self._lock:
            self._settle_locked(self._clock())
            out = list(self._transitions)
            self._transitions.clear()
        return out
