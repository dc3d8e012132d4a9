"""Hot statements on SQLite, compiled once and run on the DBAPI cursor.

A small statement through SQLAlchemy Core costs far more in SQLAlchemy than in SQLite: the
statement's cache key, bind-parameter processing row by row, result and row objects. On the
ACS's hot paths (every push session reads the device's known values and writes the applied
ones; every session records its Inform) that was most of the store thread's time (measured:
``device_parameters`` 189 µs of CPU through Core, 27 µs here; bench/ figure 3). So those few
statements are compiled once, by SQLAlchemy, for the engine's dialect, and executed on the
cursor of the SQLAlchemy connection the Store method already holds (same transaction, same
``BEGIN IMMEDIATE``), with each column's own bind processor applied.

SQLite only: its driver's ``qmark`` parameters are positional. PostgreSQL keeps the Core path,
whose statements are already few and set-based (arrays), and whose cost is the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

__all__ = ["DriverStatement", "compile_for_driver", "cursor_of"]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """SQL text with ``?`` parameters, their names in order, and each one's bind processor
    (None where the driver takes the Python value as it is)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional parameters for one execution. Raises KeyError for a missing name."""
        return tuple(values[n] if p is None else p(values[n])
                     for n, p in zip(self.names, self.processors, strict=True))

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run once; the rows it returns (an empty list for a write)."""
        cur = cursor_of(conn)
        try:
            return cur.execute(self.sql, self.row(values)).fetchall()
        finally:
            cur.close()

    def execute_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        cur = cursor_of(conn)
        try:
            cur.executemany(self.sql, [self.row(r) for r in rows])
        finally:
            cur.close()


def cursor_of(conn: Connection) -> Any:
    """A DBAPI cursor on the connection's own DBAPI connection (its transaction)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def compile_for_driver(stmt: Any, dialect: Dialect,
                       column_keys: Sequence[str] | None = None) -> DriverStatement:
    """Compile ``stmt`` for ``dialect`` (a ``qmark`` one). ``column_keys`` names the values of
    an INSERT whose columns are given at execution time. Raises ValueError for a dialect
    with named parameters."""
    if dialect.paramstyle != "qmark":
        raise ValueError(f"driver statements need qmark parameters, not {dialect.paramstyle}")
    compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
    names = tuple(compiled.positiontup or ())
    processors = []
    for name in names:
        bind: sa.BindParameter[Any] = compiled.binds[name]
        processors.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
    return DriverStatement(compiled.string, names, tuple(processors))
