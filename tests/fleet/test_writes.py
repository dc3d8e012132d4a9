"""TaskWriter: a waiter fires only after a transaction holding its change committed, once.

The fake store holds each ``update_tasks`` transaction open until the test commits or
fails it, so the interleavings that the reactor produces under load can be replayed
exactly: a change marked while an earlier batch is being written must not be reported
durable when that earlier batch commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from acs_security.fleet.writes import TaskWriter
from acs_security.store.errors import StoreUnavailable
from acs_security.store.jobs import TaskUpdate

T = datetime(2026, 1, 1, tzinfo=UTC)


def upd(device: str, version: int, job: int = 1) -> TaskUpdate:
    # ``attempts`` carries a version number, so the test can tell which change committed.
    return TaskUpdate(job_id=job, device_id=device, state="applied", attempts=version, sent=1,
                      cr_exhausted=False, updated_at=T)


class HeldStore:
    """update_tasks transactions that stay open until commit() or fail()."""

    def __init__(self) -> None:
        self.open: list[tuple[list[TaskUpdate], Deferred[None]]] = []
        self.committed: dict[tuple[int, str], int] = {}
        self.transactions = 0

    def call(self, name: str, batch: list[TaskUpdate]) -> Deferred[None]:
        assert name == "update_tasks"
        assert not self.open, "two transactions at once"
        d: Deferred[None] = Deferred()
        self.open.append((list(batch), d))
        self.transactions += 1
        return d

    def commit(self) -> None:
        batch, d = self.open.pop(0)
        for u in batch:
            key = (u.job_id, u.device_id)
            # Versions of one task only move forward.
            assert u.attempts >= self.committed.get(key, 0)
            self.committed[key] = u.attempts
        d.callback(None)

    def fail(self) -> None:
        _, d = self.open.pop(0)
        d.errback(Failure(StoreUnavailable("database unreachable")))


def outcome(d: Deferred[None]) -> list[Any]:
    got: list[Any] = []
    d.addBoth(got.append)
    return got


def test_waiter_added_during_a_write_waits_for_its_own_commit() -> None:
    store = HeldStore()
    w = TaskWriter(store)
    first = outcome(w.durable(upd("a", 1)))
    assert len(store.open) == 1 and not first
    # While the first transaction is open, another change and its waiter arrive.
    second = outcome(w.durable(upd("b", 1)))
    store.commit()
    assert first == [None]
    assert second == [], "fired when an earlier batch committed, before its change was written"
    assert store.committed == {(1, "a"): 1}
    store.commit()
    assert second == [None]
    assert store.committed == {(1, "a"): 1, (1, "b"): 1}


def test_flush_with_nothing_pending_fires_at_once_and_only_once() -> None:
    store = HeldStore()
    w = TaskWriter(store)
    assert outcome(w.flush()) == [None]
    d = outcome(w.durable(upd("a", 1)))
    store.commit()
    assert d == [None]
    assert outcome(w.flush()) == [None]
    assert store.transactions == 1


def test_empty_waiter_list_is_not_shared_with_a_running_write() -> None:
    """The demo's AlreadyCalledError: a plain mark (no waiter) starts a write through
    kick(); a durable() during that write must fire once, after its own commit."""
    store = HeldStore()
    w = TaskWriter(store)
    w.mark(upd("a", 1))
    w.kick()
    d = outcome(w.durable(upd("b", 1)))
    store.commit()  # raised AlreadyCalledError before the fix, or fired d early
    assert d == []
    store.commit()
    assert d == [None]
    assert not store.open


def test_newer_change_of_a_task_in_flight_is_written_again() -> None:
    store = HeldStore()
    w = TaskWriter(store)
    a1 = outcome(w.durable(upd("a", 1)))
    a2 = outcome(w.durable(upd("a", 2)))
    store.commit()
    assert a1 == [None] and a2 == []
    store.commit()
    assert a2 == [None]
    assert store.committed[(1, "a")] == 2


def test_failed_write_fails_its_waiters_and_keeps_the_changes() -> None:
    clock = Clock()
    store = HeldStore()
    w = TaskWriter(store, clock=clock, retry=1.0)
    d1 = outcome(w.durable(upd("a", 1)))
    d2 = outcome(w.durable(upd("b", 1)))
    store.fail()
    assert len(d1) == 1 and isinstance(d1[0], Failure) and d1[0].check(StoreUnavailable)
    assert len(d2) == 1 and isinstance(d2[0], Failure)
    assert w.pending == 2
    # kick() waits for the retry delay; flush() tries at once.
    w.kick()
    assert not store.open
    clock.advance(1.0)
    w.kick()
    assert len(store.open) == 1
    store.commit()
    assert store.committed == {(1, "a"): 1, (1, "b"): 1}


def test_failed_batch_with_a_newer_change_keeps_the_newer_value_and_the_older_number() -> None:
    store = HeldStore()
    w = TaskWriter(store)
    d1 = outcome(w.durable(upd("a", 1)))
    w.mark(upd("a", 2))  # marked while version 1 is in flight
    store.fail()
    assert isinstance(d1[0], Failure)
    # A waiter for version 1 must wait for whatever replaces it to commit.
    d = outcome(w.flush())
    assert d == []
    store.commit()
    assert d == [None]
    assert store.committed == {(1, "a"): 2}


def test_batches_are_bounded_and_waiters_wait_for_the_last_one() -> None:
    store = HeldStore()
    w = TaskWriter(store, max_batch=2)
    for i in range(5):
        w.mark(upd(f"d{i}", 1))
    d = outcome(w.flush())
    for _ in range(3):
        assert d == []
        store.commit()
    assert d == [None]
    assert len(store.committed) == 5


# -- random interleavings --------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), st.integers(0, 3)),
        st.tuples(st.just("durable"), st.integers(0, 3)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("kick"), st.just(0)),
        st.tuples(st.just("commit"), st.just(0)),
        st.tuples(st.just("fail"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops, st.integers(1, 3))
def test_random_interleavings_never_acknowledge_early_and_fire_each_waiter_once(
        script: list[tuple[str, int]], max_batch: int) -> None:
    store = HeldStore()
    w = TaskWriter(store, max_batch=max_batch)
    version = 0
    latest: dict[tuple[int, str], int] = {}
    waiters: list[tuple[dict[tuple[int, str], int], list[Any]]] = []
    # Checked in the callback, reported after: an assert inside a callback would only
    # turn the Deferred's result into a failure.
    early: list[tuple[tuple[int, str], int, int]] = []

    def wait(d: Deferred[None]) -> None:
        snapshot = dict(latest)
        got: list[Any] = []

        def fired(result: Any) -> None:
            got.append(result)
            if not isinstance(result, Failure):
                # Every change marked before the waiter, or a later one, is committed.
                early.extend((key, v, store.committed.get(key, 0)) for key, v in snapshot.items()
                             if store.committed.get(key, 0) < v)

        d.addBoth(fired)
        waiters.append((snapshot, got))

    for op, n in script:
        if op in ("mark", "durable"):
            version += 1
            u = upd(f"d{n}", version)
            latest[(1, u.device_id)] = version
            if op == "mark":
                w.mark(u)
            else:
                wait(w.durable(u))
        elif op == "flush":
            wait(w.flush())
        elif op == "kick":
            w.kick()
        elif op == "commit" and store.open:
            store.commit()
        elif op == "fail" and store.open:
            store.fail()
    # Drain: every waiter ends up fired exactly once, and every change is in the store.
    for _ in range(100):
        if store.open:
            store.commit()
        elif w.pending:
            w.kick()
        else:
            break
    wait(w.flush())
    assert not store.open
    assert early == [], "a waiter fired before its change was committed"
    for _, got in waiters:
        assert len(got) == 1
    assert store.committed == latest


@pytest.mark.parametrize("fail_first", [False, True])
def test_nothing_fires_twice_under_repeated_flushes(fail_first: bool) -> None:
    store = HeldStore()
    w = TaskWriter(store)
    results = [outcome(w.durable(upd("a", 1)))]
    results += [outcome(w.flush()) for _ in range(3)]
    if fail_first:
        store.fail()
        results += [outcome(w.flush())]
    store.commit()
    assert all(len(r) == 1 for r in results)
