"""The PostgreSQL connection pool: an idle connection that the server dropped (a database
restart, a failover) is replaced before use, without a ping on every call."""

from __future__ import annotations

import psycopg
import pytest

from acs_security.store import StoreUnavailable, open_store
from acs_security.store import engine as store_engine
from tests.store.conftest import _postgres_schema_url, inform


@pytest.fixture
def pg_url(postgres_url: str):
    yield from _postgres_schema_url(postgres_url)


def _backends(store) -> list[int]:
    """The server process of the store's pooled connection (calls run one at a time, so the
    pool holds one): only this test's connection is killed."""
    with store.engine.connect() as conn:
        return [conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()]


@pytest.mark.postgres
def test_idle_connections_killed_by_the_server_are_replaced(pg_url: str, postgres_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(pg_url)
    try:
        store.record_informs([inform("FCH0001")])
        assert store.count_devices() == 1
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            # Connections now count as idle for long enough to be checked (no real waiting).
            monkeypatch.setattr(store_engine, "POSTGRES_PING_AFTER_IDLE_S", 0.0)
            for pid in _backends(store):
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.count_devices() == 1
        store.record_informs([inform("FCH0002")])
        assert store.count_devices() == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_recently_used_connection_is_not_pinged_and_a_dead_one_fails_once(
        pg_url: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The trade-off of pinging only idle connections: a connection in steady use is trusted,
    # so a server restart fails the one call that meets a dead connection (StoreUnavailable:
    # a session answers 8002 and the phone retries); the pool is then renewed.
    store = open_store(pg_url)
    try:
        store.count_devices()
        monkeypatch.setattr(store_engine, "POSTGRES_PING_AFTER_IDLE_S", 3600.0)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for pid in _backends(store):
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            store.count_devices()
        assert store.count_devices() == 0
    finally:
        store.close()
