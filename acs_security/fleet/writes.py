"""Group commit of task changes: many devices' outcomes in one transaction.

``mark`` records a change to write soon; ``durable`` also returns a Deferred that fires
once a transaction holding that change (or a later change of the same task) has
committed. While one transaction runs, the next batch gathers, so under load each commit
carries hundreds of outcomes and the store's cost per device stays flat.

How a waiter knows its change is in: every mark takes the next sequence number, and each
task waiting to be written (or being written) remembers the *earliest* sequence number
among its uncommitted changes. A waiter created after mark number S is satisfied when no
uncommitted change numbered S or lower is left, i.e. when the lowest remembered number is
above S. Waiters are kept in creation order (ascending S), so a commit releases a prefix of
them; each Deferred is popped once and so fires once. Only one transaction runs at a time,
and it always holds the lowest-numbered changes, so a failed transaction fails exactly the
waiters that depend on it (all those pending); its changes go back to be written again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.store.errors import StoreUnavailable
from acs_security.store.jobs import TaskUpdate

__all__ = ["TaskWriter"]

log = Logger(namespace="acs_security.fleet")

_Key = tuple[int, str]


class TaskWriter:
    """``store.call("update_tasks", batch)`` returns a Deferred; ``clock`` (optional, an
    IReactorTime) spaces out retries after a failed write: ``kick`` does nothing until
    ``retry`` seconds (doubling up to ``retry_cap``) have passed, while ``flush`` and
    ``durable`` always try at once, since a session waits for them."""

    def __init__(self, store: Any, *, max_batch: int = 2000, clock: Any = None,
                 retry: float = 0.5, retry_cap: float = 10.0) -> None:
        self._store = store
        self._max = max_batch
        self._clock = clock
        self._retry = retry
        self._retry_cap = retry_cap
        self._seq = 0
        # Task -> (its newest change, earliest uncommitted sequence number); in ascending
        # order of that number (new tasks go at the end; a newer change keeps its place).
        self._dirty: dict[_Key, tuple[TaskUpdate, int]] = {}
        self._inflight_min: int | None = None
        self._waiters: deque[tuple[int, Deferred[None]]] = deque()
        self._failures = 0
        self._retry_at = 0.0

    @property
    def pending(self) -> int:
        return len(self._dirty)

    @property
    def busy(self) -> bool:
        return self._inflight_min is not None

    def mark(self, update: TaskUpdate) -> None:
        self._seq += 1
        key = (update.job_id, update.device_id)
        prev = self._dirty.get(key)
        self._dirty[key] = (update, prev[1] if prev is not None else self._seq)

    def durable(self, update: TaskUpdate) -> Deferred[None]:
        self.mark(update)
        return self.flush()

    def flush(self) -> Deferred[None]:
        """A Deferred that fires after everything marked so far is committed, or errbacks
        with the store's failure if the transaction that held it failed (the changes stay
        marked and are written again later)."""
        d: Deferred[None] = Deferred()
        if self._low_water() > self._seq:
            d.callback(None)
            return d
        self._waiters.append((self._seq, d))
        self._write()
        return d

    def retry_now(self) -> None:
        """The store is back (server/outages.py): write what is marked now, not after the
        retry back-off."""
        self._retry_at = 0.0
        if self._dirty:
            self._write()

    def kick(self) -> None:
        """Start writing what is marked, if nothing is being written (no waiting)."""
        if not self._dirty:
            return
        if self._failures and self._clock is not None and self._clock.seconds() < self._retry_at:
            return
        self._write()

    def _low_water(self) -> float:
        """The lowest sequence number not yet committed (infinity when all are)."""
        low: float = float("inf")
        if self._inflight_min is not None:
            low = self._inflight_min
        if self._dirty:
            low = min(low, next(iter(self._dirty.values()))[1])
        return low

    def _write(self) -> None:
        if self._inflight_min is not None or not self._dirty:
            return
        keys = list(self._dirty)[: self._max]
        batch = [(k, *self._dirty.pop(k)) for k in keys]
        self._inflight_min = batch[0][2]
        self._store.call("update_tasks", [u for _, u, _ in batch]).addBoth(self._done, batch)

    def _done(self, result: Any, batch: list[tuple[_Key, TaskUpdate, int]]) -> None:
        self._inflight_min = None
        if isinstance(result, Failure):
            self._failed(result, batch)
            return
        if self._failures:
            log.info("task changes are written again after {n} failed attempt(s)", n=self._failures)
            self._failures = 0
        low = self._low_water()
        fire: list[Deferred[None]] = []
        while self._waiters and self._waiters[0][0] < low:
            fire.append(self._waiters.popleft()[1])
        for w in fire:
            w.callback(None)
        if self._dirty:
            self._write()

    def _failed(self, failure: Failure, batch: list[tuple[_Key, TaskUpdate, int]]) -> None:
        # The batch's changes go back first (they hold the lowest numbers); a newer change
        # of the same task, marked meanwhile, replaces the value but keeps the old number,
        # since the old change is still not committed.
        restored: dict[_Key, tuple[TaskUpdate, int]] = {}
        for key, update, seq in batch:
            newer = self._dirty.pop(key, None)
            restored[key] = (newer[0] if newer is not None else update, seq)
        restored.update(self._dirty)
        self._dirty = restored
        self._failures += 1
        delay = min(self._retry_cap, self._retry * 2 ** (self._failures - 1))
        if self._clock is not None:
            self._retry_at = self._clock.seconds() + delay
        if self._failures == 1:
            # A store outage is logged once by the server (server/outages.py).
            emit = log.debug if failure.check(StoreUnavailable) else log.warn
            emit("writing {n} task changes failed: {error}; they are kept and written again",
                 n=len(batch), error=failure.getErrorMessage())
        # Every pending waiter depends on this batch (it held the lowest numbers).
        waiters, self._waiters = self._waiters, deque()
        for _, w in waiters:
            w.errback(failure)

