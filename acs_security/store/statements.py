"""The store's hot statements, built once per Store (and, on SQLite, compiled once for the
driver: driver.py). Pure SQLAlchemy Core construction: no connection, no I/O."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect

from acs_security.store import schema as t
from acs_security.store.driver import DriverStatement, compile_for_driver

__all__ = ["parameter_upsert", "device_upsert", "driver_statements", "created_at_result",
           "PARAMETER_UPSERT_KEYS"]

#: The values of one parameter_upsert row on SQLite, in the driver statement's order.
PARAMETER_UPSERT_KEYS = ("device_id", "name", "value", "type", "bound_updated_at")


def _insert(dialect: Dialect, table: sa.Table) -> Any:
    return pg_dialect.insert(table) if dialect.name == "postgresql" else sqlite_dialect.insert(table)


def parameter_upsert(dialect: Dialect, time_bind_type: sa.types.TypeEngine[Any]) -> Any:
    """The statement behind Store._upsert_parameters.

    A row whose value and type did not change is not rewritten (the WHERE
    of DO UPDATE): periodic informs mostly repeat known values, so the
    steady state writes little, and updated_at says since when the ACS
    has known the current value.
    PostgreSQL gets the whole batch as five arrays in ONE statement
    (INSERT .. SELECT FROM unnest(...)): measured about twice as fast as
    psycopg's pipelined executemany of 5,000 rows. SQLite gets an
    executemany, which is in-process and cheap per row.
    """
    p = t.device_parameters
    cols = ("device_id", "name", "value", "type", "updated_at")
    ins: Any
    if dialect.name == "postgresql":
        arrays = [
            sa.bindparam(f"arr_{col}", type_=pg_dialect.ARRAY(sa.DateTime() if col == "updated_at" else sa.Text()))
            for col in cols
        ]
        rows = sa.func.unnest(*arrays).table_valued(*cols).render_derived(name="reported")
        ins = pg_dialect.insert(p).from_select(list(cols), sa.select(*[rows.c[col] for col in cols]))
    else:
        ins = sqlite_dialect.insert(p).values(
            updated_at=sa.bindparam("bound_updated_at", type_=time_bind_type)
        )
    return ins.on_conflict_do_update(
        index_elements=[p.c.device_id, p.c.name],
        set_={"value": ins.excluded.value, "type": ins.excluded.type, "updated_at": ins.excluded.updated_at},
        where=sa.or_(p.c.value != ins.excluded.value, p.c.type != ins.excluded.type),
    )


def device_upsert(dialect: Dialect) -> Any:
    """The devices upsert of record_informs. Built once: building it (``excluded`` aliases
    the whole table, each coalesce is a new function element) and computing its cache key
    took about half of a one-inform batch's CPU when it was built per call (measured,
    bench/ figure 2)."""
    d = t.devices.c
    ins = _insert(dialect, t.devices)
    keep_known = ("software_version", "connection_request_url", "udp_connection_request_address",
                  "parameter_key", "remote_address", "xmpp_jid")
    set_: dict[str, Any] = {
        name: ins.excluded[name]
        for name in ("oui", "product_class", "serial_number", "manufacturer", "last_events", "last_inform")
    }
    # A field the inform did not carry (None) keeps its known value.
    for name in keep_known:
        set_[name] = sa.func.coalesce(ins.excluded[name], d[name])
    return ins.on_conflict_do_update(index_elements=[d.id], set_=set_)


def driver_statements(dialect: Dialect, parameter_upsert_stmt: Any, device_upsert_stmt: Any
                      ) -> dict[str, DriverStatement]:
    """SQLite's hot statements compiled for the driver (driver.py). Raises ValueError for a
    dialect without qmark parameters."""
    p, d, c = t.device_parameters.c, t.devices.c, t.connection_request_credentials.c
    return {
        "params_of": compile_for_driver(
            sa.select(p.name, p.value, p.type).where(p.device_id == sa.bindparam("device_id")), dialect),
        "device_exists": compile_for_driver(sa.select(d.id).where(d.id == sa.bindparam("device_id")), dialect),
        "param_upsert": compile_for_driver(parameter_upsert_stmt, dialect, PARAMETER_UPSERT_KEYS),
        "device_upsert": compile_for_driver(device_upsert_stmt, dialect),
        "cr_credential": compile_for_driver(
            sa.select(c.username, c.password, c.created_at).where(c.device_id == sa.bindparam("device_id")),
            dialect),
    }


def created_at_result(dialect: Dialect, raw: Any) -> Any:
    """A created_at value read by a driver statement, as Core would return it."""
    convert = t.connection_request_credentials.c.created_at.type.dialect_impl(dialect).result_processor(
        dialect, None)
    return convert(raw) if convert is not None else raw
