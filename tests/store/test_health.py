"""The store's outages (store/health.py): the pure bookkeeping with a hand-moved clock, then
the real thing: a SQLite database that cannot grow, PostgreSQL connections terminated
under the store (it reconnects by itself), and the connections' application_name."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from acs_security.store import StoreUnavailable, open_store
from acs_security.store.engine import application_name
from acs_security.store.health import FULL, UNREACHABLE, OutageEnded, OutageStarted, StoreHealth, outage_kind
from tests.store.conftest import inform


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def test_one_outage_however_many_calls_fail_and_its_end_after_calls_settle(ticks):
    health = StoreHealth(ticks, settle=5.0)
    health.ok(wrote=True)
    assert health.drain() == [] and health.outage is None and not health.unavailable
    health.failed(UNREACHABLE, "cannot x: down")
    ticks.now = 101.0
    health.failed(UNREACHABLE, "cannot y: down")
    [started] = health.drain()
    assert isinstance(started, OutageStarted) and started.outage.since == 100.0
    assert started.outage.error == "cannot x: down" and health.unavailable
    ticks.now = 104.0
    health.ok(wrote=False)  # the database answers again: settling
    assert not health.unavailable and health.outage is not None
    ticks.now = 105.0
    health.failed(UNREACHABLE, "cannot z: down")  # a straggler: the same outage goes on
    assert health.unavailable and health.drain() == []
    ticks.now = 106.0
    health.ok(wrote=False)
    ticks.now = 110.0
    health.ok(wrote=False)
    assert health.drain() == [] and health.outage is not None  # 4 s of successes: not yet
    ticks.now = 111.0
    [ended] = health.drain()  # drained after the settling time, without a call
    assert isinstance(ended, OutageEnded) and ended.duration == 6.0  # first failure to last recovery
    assert ended.outage.failures == 3 and health.outage is None
    assert health.outages == 1 and health.seconds_unavailable() == 6.0


def test_a_full_database_ends_only_with_a_write(ticks):
    health = StoreHealth(ticks, settle=1.0)
    health.failed(FULL, "cannot record informs: full")
    ticks.now = 120.0
    health.ok(wrote=False)  # reads go on while writes fail
    assert health.unavailable and [type(t) for t in health.drain()] == [OutageStarted]
    health.ok(wrote=True)
    ticks.now = 121.0
    [ended] = health.drain()
    assert ended.duration == 20.0 and ended.outage.kind == FULL


def test_a_full_database_that_stops_answering_is_unreachable(ticks):
    health = StoreHealth(ticks, settle=1.0)
    health.failed(FULL, "full")
    health.failed(UNREACHABLE, "down")
    assert health.outage is not None and health.outage.kind == UNREACHABLE
    health.ok(wrote=False)
    ticks.now += 1
    assert [type(t) for t in health.drain()] == [OutageStarted, OutageEnded]


def test_outage_kinds_from_driver_errors():
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert outage_kind(full) == FULL
    wrapped = sa.exc.OperationalError("INSERT", {}, full)
    assert outage_kind(wrapped) == FULL
    assert outage_kind(psycopg.errors.DiskFull("could not extend file")) == FULL
    assert outage_kind(sa.exc.OperationalError("SELECT", {}, psycopg.OperationalError("connection refused"))) \
        == UNREACHABLE
    try:
        raise StoreUnavailable("cannot x") from wrapped
    except StoreUnavailable as exc:
        assert outage_kind(exc) == FULL


def test_sqlite_that_cannot_grow_is_a_full_outage_until_a_write_succeeds(tmp_path, ticks):
    store = open_store(f"sqlite:///{tmp_path}/acs.db")
    store.health = StoreHealth(ticks, settle=5.0)
    store.record_informs([inform("A0", params=(("Device.X.1", "v", "string"),))])
    limited = {"on": True}

    def limit(dbapi_connection: Any, _record: Any) -> None:
        if limited["on"]:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
            cursor.close()

    event.listen(store.engine, "connect", limit)
    store.engine.dispose()
    try:
        many = tuple((f"Device.X.{i}", "v" * 200, "string") for i in range(200))
        with pytest.raises(StoreUnavailable, match="is full: database or disk is full"):
            store.record_informs([inform(f"B{i}", params=many) for i in range(20)])
        assert store.health.outage is not None and store.health.outage.kind == FULL
        assert store.count_devices() == 1  # reads work, and do not end the outage
        assert store.health.unavailable
        limited["on"] = False
        store.engine.dispose()
        store.record_informs([inform("C0")])
        ticks.now += 5
        kinds = [type(t) for t in store.health.drain()]
        assert kinds == [OutageStarted, OutageEnded] and store.count_devices() == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_terminated_postgresql_connections_fail_one_call_and_the_store_reconnects(postgres_url, ticks):
    from tests.store.conftest import _postgres_schema_url

    name = application_name(f"health-{uuid.uuid4().hex[:8]}")
    for url in _postgres_schema_url(postgres_url):
        store = open_store(url, app_name=name)
        store.health = StoreHealth(ticks, settle=5.0)
        try:
            store.record_informs([inform("A0")])
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                pids = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                     (name,)).fetchall()
                assert pids  # the pooled connection carries the node's name
                for (pid,) in pids:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(StoreUnavailable, match="is unavailable"):
                store.count_devices()  # the call on the dead connection fails ...
            assert store.health.unavailable
            assert store.count_devices() == 1  # ... and the next one gets a new connection
            store.record_informs([inform("A1")])
            ticks.now += 5
            assert [type(t) for t in store.health.drain()] == [OutageStarted, OutageEnded]
        finally:
            store.close()


def test_application_name_is_printable_and_fits_postgresql():
    assert application_name() == "acs-security"
    assert application_name("node-a") == "acs-security node-a"
    long = application_name("n\u00e9" * 100)
    assert len(long.encode()) <= 63 and long.isascii() and long.isprintable()
