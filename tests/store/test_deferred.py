"""DeferredStore: group commit and the thread hop, without real threads.

A fake thread pool records each job and runs it when the test says so; the
reactor is a MemoryReactorClock whose callFromThread queues the hop back, so
each step (job runs, result crosses back to the reactor thread) is explicit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from acs_security.store import (
    DeferredStore,
    InformRecord,
    InvalidArgument,
    Store,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    UnknownDevice,
    UnknownStoreMethod,
    make_threadpool,
    open_store,
)
from tests.store.conftest import FakeClock, inform


class FakeThreadPool:
    """Has ThreadPool.callInThreadWithCallback's contract; runs jobs on demand."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[bool, Any], None], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def callInThreadWithCallback(self, on_result: Callable[[bool, Any], None], f: Callable[..., Any],  # noqa: N802 - Twisted's interface name
                                 *args: Any, **kwargs: Any) -> None:
        self.jobs.append((on_result, f, args, kwargs))

    def run_next(self) -> None:
        on_result, f, args, kwargs = self.jobs.pop(0)
        try:
            result = f(*args, **kwargs)
        except BaseException:  # noqa: BLE001 - as Twisted's thread pool: every failure goes to on_result
            on_result(False, Failure())
            return
        on_result(True, result)


class ThreadHopReactor(MemoryReactorClock):
    """MemoryReactorClock has no callFromThread; this one queues the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.from_thread: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:  # noqa: N802 - Twisted's interface name
        self.from_thread.append((f, args))

    def deliver(self) -> None:
        while self.from_thread:
            f, args = self.from_thread.pop(0)
            f(*args)


class RecordingStore(Store):
    """The real store, noting each record_informs batch; can be told to fail."""

    def __init__(self, base: Store) -> None:
        super().__init__(base.engine, clock=FakeClock())
        self.batches: list[list[str]] = []
        self.poison: str | None = None
        self.unavailable = False

    def record_informs(self, records: Sequence[InformRecord]) -> None:
        self.batches.append([r.serial_number for r in records])
        if self.unavailable:
            raise StoreUnavailable("cannot record informs: the database is unavailable")
        if self.poison is not None and any(r.serial_number == self.poison for r in records):
            raise StoreError("cannot record informs: constraint failed")
        super().record_informs(records)


@pytest.fixture
def real() -> Iterator[RecordingStore]:
    s = RecordingStore(open_store("sqlite://"))
    yield s
    s.close()


@pytest.fixture
def pool() -> FakeThreadPool:
    return FakeThreadPool()


@pytest.fixture
def reactor() -> ThreadHopReactor:
    return ThreadHopReactor()


@pytest.fixture
def dstore(real: RecordingStore, reactor: ThreadHopReactor, pool: FakeThreadPool) -> DeferredStore:
    return DeferredStore(real, reactor, pool)


def _results(deferreds: Sequence[Deferred[Any]]) -> list[Any]:
    out: list[Any] = []
    for d in deferreds:
        d.addBoth(out.append)
    return out


def _step(pool: FakeThreadPool, reactor: ThreadHopReactor) -> None:
    pool.run_next()
    reactor.deliver()


def test_an_inform_fires_only_after_its_commit_reaches_the_reactor_thread(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    fired = _results([dstore.record_inform(inform("A"))])
    assert len(pool.jobs) == 1 and fired == []
    pool.run_next()
    assert fired == []  # committed in the pool, not yet back on the reactor thread
    assert real.count_devices() == 1
    reactor.deliver()
    assert fired == [None]
    assert pool.jobs == []


def test_group_commit_batches_what_arrives_during_a_flush(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    first = _results([dstore.record_inform(inform("A"))])
    rest = _results([dstore.record_inform(inform(s)) for s in ("B", "C", "D")])
    assert len(pool.jobs) == 1  # B, C, D wait while A's transaction runs
    assert dstore.queued == 3
    _step(pool, reactor)
    assert first == [None] and rest == []
    assert len(pool.jobs) == 1  # exactly one more flush...
    _step(pool, reactor)
    assert real.batches == [["A"], ["B", "C", "D"]]  # ...with those 3 in one record_informs call
    assert rest == [None, None, None]
    assert pool.jobs == [] and dstore.queued == 0
    assert real.count_devices() == 4


def test_max_batch_splits_the_queue(
    real: RecordingStore, reactor: ThreadHopReactor, pool: FakeThreadPool
) -> None:
    dstore = DeferredStore(real, reactor, pool, max_batch=2)
    fired = _results([dstore.record_inform(inform(s)) for s in "ABCDEF"])
    while pool.jobs:
        _step(pool, reactor)
    assert real.batches == [["A"], ["B", "C"], ["D", "E"], ["F"]]
    assert fired == [None] * 6


def test_informs_queued_by_a_callback_join_the_next_flush(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    later: list[Deferred[Any]] = []

    def queue_b(_: object) -> None:
        later.append(dstore.record_inform(inform("B")))

    dstore.record_inform(inform("A")).addCallback(queue_b)
    dstore.record_inform(inform("C"))  # queued behind A
    _step(pool, reactor)
    _step(pool, reactor)
    assert real.batches == [["A"], ["C", "B"]]
    assert _results(later) == [None]


P = "Device.ManagementServer.PeriodicInformInterval"


def test_read_parameters_gives_the_values_as_the_inform_left_them_in_the_same_hop(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    dstore.record_inform(inform("A", params=((P, "300", "xsd:unsignedInt"),)))
    fired = _results([dstore.record_inform(inform("A", params=((P, "600", "xsd:unsignedInt"),)),
                                           reads=("device_parameters",)),
                      dstore.record_inform(inform("B"))])
    _step(pool, reactor)
    assert len(pool.jobs) == 1 and fired == []
    _step(pool, reactor)
    # One pool job, one batch: the commit and the read, newer value included; B read nothing.
    assert real.batches == [["A"], ["A", "B"]] and pool.jobs == []
    assert fired == [{"device_parameters": {P: ("600", "xsd:unsignedInt")}}, None]


def test_read_parameters_of_a_record_that_failed_is_not_attempted(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    dstore.record_inform(inform("A"))
    real.poison = "C"
    fired = _results([dstore.record_inform(inform(s), reads=("device_parameters", "device_tasks"))
                      for s in ("B", "C")])
    _step(pool, reactor)
    _step(pool, reactor)
    assert fired[0] == {"device_parameters": {}, "device_tasks": []}
    assert isinstance(fired[1], Failure) and fired[1].check(StoreError)


def test_a_read_that_fails_after_the_commit_still_acknowledges_the_inform(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The Inform is committed: answering it 503 would make the phone send its events again.
    # The session reads on its own instead (it gets None for its reads).
    def broken(device_id: str) -> Any:
        raise StoreUnavailable("cannot read a device's parameters: the database is unavailable")

    monkeypatch.setattr(real, "device_parameters", broken)
    fired = _results([dstore.record_inform(inform("A"), reads=("device_parameters",))])
    _step(pool, reactor)
    assert fired == [None]
    assert real.count_devices() == 1


def test_only_the_known_reads_run_with_an_inform(dstore: DeferredStore, pool: FakeThreadPool) -> None:
    fired = _results([dstore.record_inform(inform("A"), reads=("delete_device",))])
    assert isinstance(fired[0], Failure) and fired[0].check(InvalidArgument)
    assert pool.jobs == []


def test_a_bad_record_fails_alone(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    dstore.record_inform(inform("A"))
    real.poison = "C"
    fired = _results([dstore.record_inform(inform(s)) for s in ("B", "C", "D")])
    _step(pool, reactor)
    _step(pool, reactor)
    # The batch failed, then each record was retried alone.
    assert real.batches == [["A"], ["B", "C", "D"], ["B"], ["C"], ["D"]]
    assert fired[0] is None and fired[2] is None
    assert isinstance(fired[1], Failure) and fired[1].check(StoreError)
    assert "constraint failed" in fired[1].getErrorMessage()
    assert real.count_devices() == 3


def test_an_unavailable_database_fails_the_whole_batch_without_retries(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    dstore.record_inform(inform("A"))
    fired = _results([dstore.record_inform(inform(s)) for s in ("B", "C")])
    real.unavailable = True
    _step(pool, reactor)
    _step(pool, reactor)
    assert real.batches == [["A"], ["B", "C"]]
    assert all(isinstance(f, Failure) and f.check(StoreUnavailable) for f in fired)
    real.unavailable = False
    # The queue keeps working afterwards.
    again = _results([dstore.record_inform(inform("B"))])
    _step(pool, reactor)
    assert again == [None]


def test_record_inform_refuses_a_non_record(dstore: DeferredStore, pool: FakeThreadPool) -> None:
    fired = _results([dstore.record_inform("A")])  # type: ignore[arg-type]
    assert isinstance(fired[0], Failure) and fired[0].check(InvalidArgument)
    assert pool.jobs == []


def test_call_runs_a_store_method_in_the_pool(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    real.record_informs([inform("A")])
    device_id = inform("A").device_id
    fired = _results([dstore.call("get_device", device_id), dstore.call("count_devices", product_class="none")])
    assert fired == [] and len(pool.jobs) == 2
    _step(pool, reactor)
    _step(pool, reactor)
    assert fired[0].serial_number == "A" and fired[1] == 0


def test_call_errbacks_with_the_store_error(
    dstore: DeferredStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    fired = _results([dstore.call("set_tags", "00562B-nope", ["x"])])
    _step(pool, reactor)
    assert isinstance(fired[0], Failure) and fired[0].check(UnknownDevice)


@pytest.mark.parametrize("name", ["_write", "close", "engine", "backend", "no_such_method"])
def test_call_refuses_names_that_are_not_public_methods(dstore: DeferredStore, pool: FakeThreadPool, name: str) -> None:
    fired = _results([dstore.call(name)])
    assert isinstance(fired[0], Failure) and fired[0].check(UnknownStoreMethod)
    assert pool.jobs == []


def test_close_drains_the_queue_then_closes_the_store(
    dstore: DeferredStore, real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    informs = _results([dstore.record_inform(inform(s)) for s in ("A", "B")])
    calls = _results([dstore.call("count_devices")])
    closed = _results([dstore.close()])
    refused = _results([dstore.record_inform(inform("C")), dstore.call("count_devices")])
    assert all(isinstance(f, Failure) and f.check(StoreClosed) for f in refused)
    while pool.jobs:
        _step(pool, reactor)
    assert informs == [None, None]
    assert calls == [1]  # ran after A committed, before B
    assert real.batches == [["A"], ["B"]]
    assert closed == [None]
    with pytest.raises(StoreClosed):
        real.count_devices()
    assert _results([dstore.close()]) == [None]  # closing again is harmless


def test_default_hop_uses_reactor_call_from_thread(
    real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor
) -> None:
    dstore = DeferredStore(real, reactor, pool)
    fired = _results([dstore.record_inform(inform("A"))])
    pool.run_next()
    assert len(reactor.from_thread) == 1 and fired == []
    reactor.deliver()
    assert fired == [None]


def test_injected_hop_for_a_reactor_without_call_from_thread(real: RecordingStore, pool: FakeThreadPool) -> None:
    hops: list[tuple[Callable[..., Any], Any]] = []
    dstore = DeferredStore(real, MemoryReactorClock(), pool, call_from_thread=lambda f, r: hops.append((f, r)))
    fired = _results([dstore.record_inform(inform("A"))])
    pool.run_next()
    assert len(hops) == 1 and fired == []
    f, r = hops.pop()
    f(r)
    assert fired == [None]


def test_max_batch_must_be_positive(real: RecordingStore, pool: FakeThreadPool, reactor: ThreadHopReactor) -> None:
    with pytest.raises(InvalidArgument, match="max_batch"):
        DeferredStore(real, reactor, pool, max_batch=0)


def test_make_threadpool_sizes_for_the_backend(store: Store) -> None:
    pool = make_threadpool(store)
    assert pool.max == (1 if store.backend == "sqlite" else 4)
    assert not pool.started
