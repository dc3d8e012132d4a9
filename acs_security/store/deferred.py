"""The Twisted side of the store: Store calls in a thread pool, as Deferreds.

Informs are group-committed: while one record_informs() transaction runs, the
informs that arrive queue up and go in the next transaction together. A
CWMP session answers InformResponse only after its inform is durable: the
InformResponse acknowledges the Inform (TR-069 A.3.3.1), after which the CPE
does not report those events again, so the ACS must not lose them. Commit
latency is thus on every session's path; group commit keeps the number of
commits (fsyncs) per second flat as sessions grow.

A session that is going to plan a push reads the device's stored values, and in cluster
mode its tasks; it asks for them with its Inform (``record_inform(record, reads=(...))``,
names of INFORM_READS), and they are read in the same pool job, right after the batch
commits, instead of one more thread hop and query each per session (issue 17;
docs/performance.md "Push sessions: one store hop").

Writes that a session waits for (``set_device_parameters`` after a
SetParameterValues, the job engine's ``update_tasks``) are group-committed the
same way: while one group runs, the calls that arrive queue up and go in the next
transaction together (``Store.group``). A failing group is retried call by call,
so one bad call fails alone.

Thread pool sizing (make_threadpool): SQLite has one writer at a time, and
writes from several threads only contend for the file lock, so use 1 thread;
PostgreSQL takes concurrent transactions, so 4 (the 2-core target machine).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from acs_security.store.errors import (
    InvalidArgument,
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    UnknownStoreMethod,
)
from acs_security.store.jobs import CONFLICT_RETRIES
from acs_security.store.records import InformRecord
from acs_security.store.sql import Store

__all__ = ["DeferredStore", "make_threadpool"]

log = Logger(namespace="acs_security.store")

# Public Store methods reachable through DeferredStore.call() (close has its own).
_CALLABLE: frozenset[str] = frozenset(
    name for name in dir(Store)
    if not name.startswith("_") and callable(getattr(Store, name)) and name not in ("close", "group")
)


def make_threadpool(store: Store) -> ThreadPool:
    """A thread pool sized for the store's backend: 1 thread for SQLite, 4 for
    PostgreSQL. The caller starts it and stops it (e.g. at reactor shutdown)."""
    size = 1 if store.backend == "sqlite" else 4
    return ThreadPool(minthreads=1, maxthreads=size, name=f"acs-store-{store.backend}")


#: Store write methods whose calls are group-committed (see the module doc).
#: Device session leases (several nodes) are taken and given back on every session's path:
#: grouped, concurrent sessions share one transaction instead of one each.
#: A digest nonce's use is recorded once per authenticated session, on the session's path too.
GROUPED: frozenset[str] = frozenset({"set_device_parameters", "update_tasks", "claim_device_session",
                                     "renew_device_session", "release_device_session",
                                     "use_digest_nonce",
                                     # A file transfer's rows (store/files.py): its offer, each
                                     # fetch, its end, on the path of many sessions at once.
                                     "create_file", "note_fetch", "finish_file",
                                     # desired state: a session's outcome and an audit's reading
                                     "record_desired", "record_audit"})


def _commit_group(store: Store, calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]]
                  ) -> list[tuple[bool, Any]]:
    """Runs in the pool: the calls in one transaction; (ok, result or error) per call. A group
    that PostgreSQL aborted to break a deadlock (StoreConflict) runs again at once, up to
    CONFLICT_RETRIES times in all. If the group fails for a reason other than an unreachable
    database, each call runs again in a transaction of its own, so that a bad call fails alone."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            with store.group():
                results = [getattr(store, name)(*args, **kwargs) for name, args, kwargs in calls]
            return [(True, r) for r in results]
        except StoreUnavailable:
            raise
        except StoreConflict:
            if attempt < CONFLICT_RETRIES - 1:
                continue
            if len(calls) == 1:
                raise
        except StoreError:
            if len(calls) == 1:
                raise
        break
    out: list[tuple[bool, Any]] = []
    for name, args, kwargs in calls:
        try:
            out.append((True, getattr(store, name)(*args, **kwargs)))
        except StoreError as exc:
            out.append((False, exc))
    return out


#: Store reads that a session may have run with its Inform's commit (record_inform's
#: ``reads``): each takes the device id.
INFORM_READS: frozenset[str] = frozenset({"device_parameters", "device_tasks"})


def _commit(store: Store, records: Sequence[InformRecord], reads: Sequence[tuple[str, ...]]
            ) -> list[tuple[bool, Any]]:
    """Runs in the pool: one transaction for the batch, then the reads each record asked for
    (``reads``): (ok, None or {read: result} or error) per record. If the
    batch fails for a reason other than an unreachable database, retry record by record so
    that one bad record fails alone instead of failing every caller."""
    try:
        store.record_informs(records)
        committed = [True] * len(records)
        results: list[tuple[bool, Any]] = [(True, None)] * len(records)
    except StoreUnavailable:
        raise
    except StoreError:
        if len(records) == 1:
            raise
        committed, results = [], []
        for record in records:
            try:
                store.record_informs([record])
                committed.append(True)
                results.append((True, None))
            except StoreError as exc:
                committed.append(False)
                results.append((False, exc))
    for i, (record, read, ok) in enumerate(zip(records, reads, committed, strict=True)):
        if read and ok:
            try:
                # Read after the commit: the device as the Inform left it.
                results[i] = (True, {name: getattr(store, name)(record.device_id) for name in read})
            except StoreError:
                # The Inform is committed, so it is acknowledged: a failed read leaves the
                # session to read on its own (and meet the store's state then).
                results[i] = (True, None)
    return results


class DeferredStore:
    """Runs a Store's calls in a thread pool and returns Deferreds; informs are group-committed."""

    def __init__(
        self,
        store: Store,
        reactor: Any,
        threadpool: Any,
        *,
        max_batch: int = 500,
        call_from_thread: Callable[..., None] | None = None,
        on_result: Callable[[], None] | None = None,
    ) -> None:
        """``threadpool`` needs ``callInThreadWithCallback`` (a started
        ThreadPool). Results come back to the reactor thread through
        ``call_from_thread`` (default ``reactor.callFromThread``; tests inject
        one because MemoryReactor does not provide it). ``on_result`` is called in
        the reactor thread as each result arrives, before it is delivered (the server
        reports the store's outages from there, server/outages.py).
        Raises InvalidArgument if max_batch < 1."""
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidArgument(f"max_batch must be a positive integer, got {max_batch!r}")
        self._store = store
        self._threadpool = threadpool
        self._call_from_thread: Callable[..., None] = (
            call_from_thread if call_from_thread is not None else reactor.callFromThread
        )
        self._max_batch = max_batch
        self._on_result = on_result
        self._queue: deque[tuple[InformRecord, tuple[str, ...], Deferred[Any]]] = deque()
        self._flushing = False
        self._group_queue: deque[tuple[str, tuple[Any, ...], dict[str, Any], Deferred[Any]]] = deque()
        self._group_running = False
        self._calls_running = 0
        self._closing = False
        self._store_closing = False
        self._closed_done = False
        self._close_waiters: list[Deferred[None]] = []
        self._close_failure: Failure | None = None

    @property
    def store(self) -> Store:
        return self._store

    @property
    def queued(self) -> int:
        """Informs waiting for the next flush (a gauge for metrics)."""
        return len(self._queue)

    def _run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()

        def on_result(success: bool, result: Any) -> None:
            # Called in the worker thread: hop back to the reactor thread.
            self._call_from_thread(partial(self._deliver, d, success), result)

        self._threadpool.callInThreadWithCallback(on_result, f, *args, **kwargs)
        return d

    def _deliver(self, d: Deferred[Any], success: bool, result: Any) -> None:
        if self._on_result is not None:
            try:
                self._on_result()
            except Exception:  # noqa: BLE001 - an observer's bug must not lose a result
                log.failure("store result observer failed")
        if success:
            d.callback(result)
        else:
            d.errback(result)

    # -- informs ----------------------------------------------------------

    def record_inform(self, record: InformRecord, *, reads: Sequence[str] = ()
                      ) -> Deferred[dict[str, Any] | None]:
        """Queue an inform; the Deferred fires once THIS record is committed, or errbacks
        with the StoreError that prevented it (StoreClosed after close(), InvalidArgument
        for a non-InformRecord or a read not in INFORM_READS). It fires with None, or with
        ``reads`` a dict of each read's result (``Store.<read>(device_id)``), run in the same
        pool job after the commit (the module doc)."""
        if self._closing:
            return fail(StoreClosed("cannot record an inform: the store is closing"))
        if not isinstance(record, InformRecord):
            return fail(InvalidArgument(f"record_inform takes an InformRecord, not {type(record).__name__}"))
        unknown = set(reads) - INFORM_READS
        if unknown:
            return fail(InvalidArgument(f"record_inform cannot read {sorted(unknown)}"))
        d: Deferred[dict[str, Any] | None] = Deferred()
        self._queue.append((record, tuple(reads), d))
        self._flush()
        return d

    def _flush(self) -> None:
        if self._flushing:
            return  # the running flush picks the queue up when it finishes
        if not self._queue:
            self._maybe_finish_close()
            return
        batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
        self._flushing = True
        self._run(_commit, self._store, [record for record, _, _ in batch],
                  [read for _, read, _ in batch]).addBoth(self._flushed, batch)

    def _flushed(self, result: list[tuple[bool, Any]] | Failure,
                 batch: list[tuple[InformRecord, tuple[str, ...], Deferred[Any]]]) -> None:
        try:
            if isinstance(result, Failure):
                for *_, d in batch:
                    d.errback(result)
            else:
                for (*_, d), (ok, value) in zip(batch, result, strict=True):
                    if ok:
                        d.callback(value)
                    else:
                        d.errback(value)
        finally:
            # Informs queued meanwhile (even by the callbacks above) go now.
            self._flushing = False
            self._flush()

    # -- other calls ------------------------------------------------------

    def call(self, method_name: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Run ``Store.<method_name>(*args, **kwargs)`` in the pool. The
        Deferred fires with its result or errbacks with its error;
        UnknownStoreMethod for a name that is not a public Store method,
        StoreClosed after close()."""
        if method_name not in _CALLABLE:
            return fail(UnknownStoreMethod(f"Store has no public method {method_name!r}"))
        if self._closing:
            return fail(StoreClosed(f"cannot call {method_name}: the store is closing"))
        self._calls_running += 1
        if method_name in GROUPED:
            d: Deferred[Any] = Deferred()
            self._group_queue.append((method_name, args, kwargs, d))
            self._flush_group()
        else:
            d = self._run(getattr(self._store, method_name), *args, **kwargs)

        def done(result: Any) -> Any:
            self._calls_running -= 1
            self._maybe_finish_close()
            return result

        return d.addBoth(done)

    def _flush_group(self) -> None:
        if self._group_running or not self._group_queue:
            return
        batch = [self._group_queue.popleft()
                 for _ in range(min(self._max_batch, len(self._group_queue)))]
        self._group_running = True
        calls = [(name, args, kwargs) for name, args, kwargs, _ in batch]
        self._run(_commit_group, self._store, calls).addBoth(self._group_done, batch)

    def _group_done(self, result: list[tuple[bool, Any]] | Failure,
                    batch: list[tuple[str, tuple[Any, ...], dict[str, Any], Deferred[Any]]]) -> None:
        try:
            if isinstance(result, Failure):
                for *_, d in batch:
                    d.errback(result)
            else:
                for (*_, d), (ok, value) in zip(batch, result, strict=True):
                    if ok:
                        d.callback(value)
                    else:
                        d.errback(value)
        finally:
            self._group_running = False
            self._flush_group()

    # -- lifecycle --------------------------------------------------------

    def close(self) -> Deferred[None]:
        """Refuse new work, let queued informs and running calls finish, then
        close the Store in the pool. Fires when closed (errbacks if
        Store.close failed); may be called more than once."""
        self._closing = True
        if self._closed_done:
            return fail(self._close_failure) if self._close_failure is not None else succeed(None)
        waiter: Deferred[None] = Deferred()
        self._close_waiters.append(waiter)
        self._maybe_finish_close()
        return waiter

    def _maybe_finish_close(self) -> None:
        if not self._closing or self._store_closing:
            return
        if self._flushing or self._queue or self._calls_running:
            return
        self._store_closing = True
        self._run(self._store.close).addBoth(self._closed)

    def _closed(self, result: Any) -> None:
        self._closed_done = True
        self._close_failure = result if isinstance(result, Failure) else None
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            if self._close_failure is not None:
                waiter.errback(self._close_failure)
            else:
                waiter.callback(None)
