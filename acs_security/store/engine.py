"""Store URLs -> SQLAlchemy engines, with each backend's connection settings.

SQLite (the embedded default) gets WAL journaling (readers never block the
writer), ``synchronous=NORMAL`` (durable at each checkpoint, safe against
corruption in WAL mode; https://www.sqlite.org/pragma.html#pragma_synchronous),
a busy timeout so that two processes on one file wait instead of failing, and
foreign keys on (off by default in SQLite). SQLAlchemy takes over BEGIN from
the sqlite3 driver (whose legacy mode would run DDL outside the transaction) so
that migrations are transactional, and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that later tries to write fails at
once with SQLITE_BUSY instead of waiting for the busy timeout.

PostgreSQL URLs are rewritten to the psycopg 3 driver.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import StaticPool

from acs_security.store.errors import InvalidStoreURL

__all__ = [
    "POSTGRES_CONNECT_TIMEOUT_S",
    "SQLITE_BUSY_TIMEOUT_S",
    "WRITE_OPTION",
    "application_name",
    "backend_name",
    "is_sqlite_memory",
    "make_engine",
    "mask_db_url",
    "parse_store_url",
    "safe_url",
]

SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 10
# Execution option a Connection carries when it is about to write (see module doc).
WRITE_OPTION = "acs_store_write"

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_URL_HELP = "expected sqlite:///PATH, sqlite:// (in memory) or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


def parse_store_url(url: str) -> URL:
    """Parse a store URL and normalise the driver (postgresql -> postgresql+psycopg).

    Raises InvalidStoreURL for anything that is not a SQLite or PostgreSQL URL.
    The message never repeats a password.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidStoreURL(f"the store URL is empty; {_URL_HELP}")
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        # The URL may hold a password: do not echo it.
        raise InvalidStoreURL(f"the store URL cannot be parsed; {_URL_HELP}") from None
    driver = parsed.drivername
    if driver in _SQLITE_DRIVERS:
        if parsed.host or parsed.username:
            raise InvalidStoreURL(f"a SQLite URL names a file, not a host (use three slashes); {_URL_HELP}")
        return parsed.set(drivername="sqlite+pysqlite")
    if driver in _POSTGRES_DRIVERS:
        if not parsed.database:
            raise InvalidStoreURL(f"the PostgreSQL URL names no database; {_URL_HELP}")
        return parsed.set(drivername="postgresql+psycopg")
    raise InvalidStoreURL(f"unsupported store backend or driver {driver!r}; {_URL_HELP}")


def safe_url(url: URL) -> str:
    """The URL as text with any password replaced by ``***`` (fit for messages and logs)."""
    return url.render_as_string(hide_password=True)


def mask_db_url(url: str) -> str:
    """``url`` (as configured) with its password replaced by ``***``; an unparseable URL is
    shown as given (the store refuses it with its own message)."""
    try:
        return safe_url(sa.engine.make_url(url))
    except sa.exc.ArgumentError:
        return url


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def backend_name(engine: Engine) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return engine.dialect.name


#: A pooled PostgreSQL connection idle for longer than this is pinged before use.
POSTGRES_PING_AFTER_IDLE_S = 5.0


#: PostgreSQL's limit on application_name (NAMEDATALEN - 1 bytes; longer names are cut).
_PG_NAME_BYTES = 63


def application_name(node: str | None = None) -> str:
    """The name a node's PostgreSQL connections carry (``pg_stat_activity.application_name``),
    so that an operator (or a test) finds one node's connections: ``acs-security`` or
    ``acs-security <node>``, printable ASCII, at most 63 bytes."""
    name = "acs-security" if not node else f"acs-security {node}"
    return "".join(ch if " " <= ch <= "~" else "?" for ch in name)[:_PG_NAME_BYTES]


def make_engine(url: URL, *, app_name: str | None = None) -> Engine:
    """Create the engine for a URL from parse_store_url(). Does not connect.

    ``hide_parameters`` keeps bound values (passwords among them) out of
    SQLAlchemy's exception messages and logs. ``app_name`` is the PostgreSQL
    connections' application_name (default :func:`application_name`), unless the URL
    names one.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = app_name or application_name()
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    engine = sa.create_engine(url, hide_parameters=True, connect_args=connect_args)

    # Survive a database restart between calls: a connection that sat idle in the pool is
    # pinged before use and replaced if dead. Not pool_pre_ping, which pings at every
    # checkout: a round trip on every store call of every session (docs/performance.md).
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < POSTGRES_PING_AFTER_IDLE_S:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:  # any failure: the pool connects anew
            raise sa.exc.DisconnectionError(f"idle connection lost: {type(exc).__name__}") from exc

    return engine


def _sqlite_engine(url: URL) -> Engine:
    memory = is_sqlite_memory(url)
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if memory:
        # One shared connection: an in-memory database lives and dies with it.
        kwargs["poolclass"] = StaticPool
    kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
