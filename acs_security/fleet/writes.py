"""Group commit of task changes: many devices' outcomes in one transaction.

``mark`` records a change to write soon; ``durable`` also returns a Deferred that fires
once a transaction holding that change has committed. While one transaction runs, the
next batch gathers, so under load each commit carries hundreds of outcomes and the
store's cost per device stays flat.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.store.jobs import TaskUpdate

__all__ = ["TaskWriter"]

log = Logger(namespace="acs_security.fleet")


class TaskWriter:
    def __init__(self, store: Any, *, max_batch: int = 2000) -> None:
        self._store = store
        self._max = max_batch
        self._dirty: dict[tuple[int, str], TaskUpdate] = {}
        self._waiters: list[Deferred[None]] = []
        self._busy = False

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def mark(self, update: TaskUpdate) -> None:
        self._dirty[(update.job_id, update.device_id)] = update

    def durable(self, update: TaskUpdate) -> Deferred[None]:
        self.mark(update)
        return self.flush()

    def flush(self) -> Deferred[None]:
        """A Deferred that fires after everything marked so far is committed."""
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        self._kick()
        return d

    def kick(self) -> None:
        """Start writing what is marked, if nothing is being written (no waiting)."""
        if self._dirty:
            self._kick()

    def _kick(self) -> None:
        if self._busy:
            return
        if not self._dirty:
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                w.callback(None)
            return
        keys = list(self._dirty)[: self._max]
        batch = [self._dirty.pop(k) for k in keys]
        waiters = self._waiters if not self._dirty else []
        if waiters:
            self._waiters = []
        self._busy = True

        def done(result: Any) -> None:
            self._busy = False
            if isinstance(result, Failure):
                log.failure("writing {n} task changes failed", result, n=len(batch))
                # Keep the changes for the next attempt unless newer ones replaced them.
                for u in batch:
                    self._dirty.setdefault((u.job_id, u.device_id), u)
                for w in waiters:
                    w.errback(result)
            else:
                for w in waiters:
                    w.callback(None)
            if self._waiters or (self._dirty and not isinstance(result, Failure)):
                self._kick()

        self._store.call("update_tasks", batch).addBoth(done)
