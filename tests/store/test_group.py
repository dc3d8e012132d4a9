"""Group commit of the writes a session waits for: Store.group and DeferredStore's grouping of
set_device_parameters / update_tasks calls (one transaction for every call that queued)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.python.failure import Failure

from acs_security.store import DeferredStore, InvalidArgument, Store, UnknownDevice, open_store
from tests.store.conftest import inform
from tests.store.test_deferred import FakeThreadPool, ThreadHopReactor, _results, _step


class CountingStore(Store):
    """The real store, counting the transactions it opens."""

    def __init__(self, base: Store) -> None:
        super().__init__(base.engine)
        self.transactions = 0

    def group(self, what: str = "write a group of changes") -> Any:
        self.transactions += 1
        return super().group(what)

    def _write(self, what: str) -> Any:
        if getattr(self._group, "conn", None) is None:
            self.transactions += 1
        return super()._write(what)


@pytest.fixture
def real() -> Iterator[CountingStore]:
    s = CountingStore(open_store("sqlite://"))
    s.record_informs([inform("A"), inform("B"), inform("C")])
    s.transactions = 0
    yield s
    s.close()


def test_calls_in_a_group_share_one_transaction(store: Store) -> None:
    store.record_informs([inform("A"), inform("B")])
    a, b = inform("A").device_id, inform("B").device_id
    with store.group():
        store.set_device_parameters(a, [("Device.X.One", "1", "string")])
        store.set_device_parameters(b, [("Device.X.Two", "2", "string")])
    assert store.device_parameters(a)["Device.X.One"] == ("1", "string")
    assert store.device_parameters(b)["Device.X.Two"] == ("2", "string")


def test_an_error_rolls_the_whole_group_back_and_the_store_stays_usable(store: Store) -> None:
    store.record_informs([inform("A")])
    a = inform("A").device_id
    with pytest.raises(UnknownDevice), store.group():
        store.set_device_parameters(a, [("Device.X.One", "1", "string")])
        store.set_device_parameters("00562B-CP%2D8841%2D3PCC-NOPE", [("Device.X", "1", "string")])
    assert "Device.X.One" not in store.device_parameters(a)
    store.set_device_parameters(a, [("Device.X.One", "1", "string")])  # no group left open
    assert store.device_parameters(a)["Device.X.One"] == ("1", "string")


def test_a_group_is_not_reentrant(store: Store) -> None:
    with store.group():  # noqa: SIM117 - the nesting is what is tested
        with pytest.raises(InvalidArgument):
            with store.group():
                pass


def test_deferred_calls_that_queue_during_a_group_commit_together(real: CountingStore) -> None:
    pool, reactor = FakeThreadPool(), ThreadHopReactor()
    dstore = DeferredStore(real, reactor, pool)
    ids = [inform(s).device_id for s in "ABC"]
    fired = _results([dstore.call("set_device_parameters", d, [("Device.X.V", d[-1], "string")])
                      for d in ids])
    assert len(pool.jobs) == 1  # the first group runs; the other two wait for it
    _step(pool, reactor)
    assert fired == [None] and real.transactions == 1
    assert len(pool.jobs) == 1
    _step(pool, reactor)
    assert fired == [None, None, None] and real.transactions == 2  # B and C: one commit
    assert [real.device_parameters(d)["Device.X.V"][0] for d in ids] == ["A", "B", "C"]


def test_a_bad_call_in_a_group_fails_alone(real: CountingStore) -> None:
    pool, reactor = FakeThreadPool(), ThreadHopReactor()
    dstore = DeferredStore(real, reactor, pool)
    a, c = inform("A").device_id, inform("C").device_id
    first = _results([dstore.call("set_device_parameters", a, [("Device.X.V", "0", "string")])])
    rest = _results([
        dstore.call("set_device_parameters", a, [("Device.X.V", "1", "string")]),
        dstore.call("set_device_parameters", "00562B-CP%2D8841%2D3PCC-NOPE", [("Device.X.V", "2", "string")]),
        dstore.call("set_device_parameters", c, [("Device.X.V", "3", "string")]),
    ])
    _step(pool, reactor)
    _step(pool, reactor)
    assert first == [None]
    assert rest[0] is None and rest[2] is None
    assert isinstance(rest[1], Failure) and rest[1].check(UnknownDevice)
    assert real.device_parameters(a)["Device.X.V"][0] == "1"
    assert real.device_parameters(c)["Device.X.V"][0] == "3"


def test_group_is_not_a_deferred_call(real: CountingStore) -> None:
    dstore = DeferredStore(real, ThreadHopReactor(), FakeThreadPool())
    fired = _results([dstore.call("group")])
    assert isinstance(fired[0], Failure)
