"""Schema migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from acs_security.store import SCHEMA_HEAD, SchemaVersionError, StoreUnavailable, open_store
from acs_security.store import schema as t
from acs_security.store.engine import make_engine, parse_store_url
from acs_security.store.migrations import MIGRATIONS, Migration, migrate, read_version
from tests.store.conftest import T0, inform


def _versions(url: str) -> list[int]:
    engine = make_engine(parse_store_url(url))
    try:
        with engine.connect() as conn:
            column = t.schema_version.c.version
            return list(conn.execute(sa.select(column).order_by(column)).scalars())
    finally:
        engine.dispose()


def test_empty_database_is_migrated_to_head(store_url: str) -> None:
    s = open_store(store_url)
    s.close()
    assert _versions(store_url) == [m.version for m in MIGRATIONS]
    assert MIGRATIONS[-1].version == SCHEMA_HEAD


def test_migrated_schema_matches_the_current_table_definitions(store_url: str) -> None:
    # migrations.py keeps frozen copies of the tables; schema.py is what the
    # queries use. They must describe the same database.
    open_store(store_url).close()
    engine = make_engine(parse_store_url(store_url))
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert set(inspector.get_table_names()) == set(t.metadata.tables)
            for table in t.metadata.sorted_tables:
                reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
                assert set(reflected) == set(table.columns.keys()), table.name
                for column in table.columns:
                    assert reflected[column.name]["nullable"] == column.nullable, (table.name, column.name)
                pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
                assert set(pk) == {c.name for c in table.primary_key.columns}, table.name
                indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
                assert indexes == {ix.name for ix in table.indexes}, table.name
    finally:
        engine.dispose()


def test_reopening_is_idempotent_and_keeps_data(store_url: str) -> None:
    s = open_store(store_url)
    s.record_informs([inform("FCH1")])
    s.close()
    s = open_store(store_url)
    try:
        assert s.count_devices() == 1
    finally:
        s.close()
    assert _versions(store_url) == [m.version for m in MIGRATIONS]
    open_store(store_url, create=False).close()


def test_create_false_refuses_an_unmigrated_database(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        sa.create_engine(store_url).connect().close()  # an empty database file
    with pytest.raises(SchemaVersionError, match="version 0.*create=True"):
        open_store(store_url, create=False)


def test_create_false_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(StoreUnavailable, match="no SQLite database"):
        open_store(f"sqlite:///{path}", create=False)
    assert not path.exists()


def test_a_database_newer_than_the_code_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    engine = make_engine(parse_store_url(store_url))
    with engine.begin() as conn:
        conn.execute(sa.insert(t.schema_version),
                     {"version": SCHEMA_HEAD + 1, "description": "future", "applied_at": T0})
    engine.dispose()
    for create in (True, False):
        with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_HEAD + 1}, newer"):
            open_store(store_url, create=create)


def test_a_failing_step_leaves_the_database_as_it_was(store_url: str) -> None:
    # Transactional DDL on both backends: the step's CREATE TABLE is rolled back
    # with its failure, and the version stays where it was.
    open_store(store_url).close()

    def broken(conn: sa.Connection) -> None:
        conn.execute(sa.text("CREATE TABLE jobs_half_done (id INTEGER PRIMARY KEY)"))
        raise RuntimeError("step failed")

    steps = (*MIGRATIONS, Migration(SCHEMA_HEAD + 1, "broken", broken))
    engine = make_engine(parse_store_url(store_url))
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            migrate(engine, now=T0, steps=steps)
        with engine.connect() as conn:
            assert read_version(conn) == SCHEMA_HEAD
            assert not sa.inspect(conn).has_table("jobs_half_done")
    finally:
        engine.dispose()


def test_a_later_step_is_applied_once(store_url: str) -> None:
    open_store(store_url).close()
    calls: list[int] = []

    def add_later(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("CREATE TABLE later_table (id INTEGER PRIMARY KEY)"))

    steps = (*MIGRATIONS, Migration(SCHEMA_HEAD + 1, "later", add_later))
    engine = make_engine(parse_store_url(store_url))
    try:
        assert migrate(engine, now=T0, steps=steps) == SCHEMA_HEAD + 1
        assert migrate(engine, now=T0, steps=steps) == SCHEMA_HEAD + 1
        with engine.connect() as conn:
            assert read_version(conn) == SCHEMA_HEAD + 1
            assert sa.inspect(conn).has_table("later_table")
    finally:
        engine.dispose()
    assert calls == [1]
