"""Store URLs, unreachable databases and the SQLite connection settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from acs_security.store import InvalidStoreURL, StoreUnavailable, open_store
from acs_security.store.engine import parse_store_url
from tests.store.conftest import inform


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "empty"),
        ("no scheme at all", "cannot be parsed"),
        ("mysql://acs:hunter2@db/acs", "unsupported store backend or driver 'mysql'"),
        ("postgresql+psycopg2://acs:hunter2@db/acs", "unsupported"),
        ("postgresql://acs:hunter2@db", "names no database"),
        ("sqlite://acs:hunter2@host/file.db", "names a file, not a host"),
    ],
)
def test_bad_urls_are_refused_without_showing_the_password(url: str, message: str) -> None:
    with pytest.raises(InvalidStoreURL, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)
    assert "sqlite:///PATH" in str(info.value)  # says what a good URL looks like


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg3(scheme: str) -> None:
    assert parse_store_url(f"{scheme}://acs@db:5433/acs").drivername == "postgresql+psycopg"


def test_unreachable_postgresql_is_store_unavailable_with_a_clear_message() -> None:
    # Port 1 on the loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreUnavailable) as info:
        open_store("postgresql://acs:hunter2@127.0.0.1:1/acs")
    text = str(info.value)
    assert "cannot open the store" in text
    assert "127.0.0.1:1" in text
    assert "hunter2" not in text and "hunter2" not in repr(info.value.__cause__)


def test_sqlite_file_in_a_missing_directory_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'acs.db'}")


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'acs.db'}")
    try:
        with s.engine.connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30_000, "foreign_keys": 1}
    finally:
        s.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite(url: str) -> None:
    s = open_store(url)
    try:
        s.record_informs([inform("FCH1")])
        assert s.count_devices() == 1
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert s.engine.pool.__class__ is sa.pool.StaticPool
    finally:
        s.close()


def test_store_repr_hides_the_password() -> None:
    from acs_security.store import Store
    from acs_security.store.engine import make_engine

    engine = make_engine(parse_store_url("postgresql://acs:hunter2@127.0.0.1:1/acs"))
    store = Store(engine)
    assert "hunter2" not in repr(store) and "127.0.0.1:1" in repr(store)
    store.close()
