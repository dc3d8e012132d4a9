"""The store: devices, reported parameters, tags, transfers (credentials: credentials.py).

SQLAlchemy Core on SQLite or PostgreSQL with the same statements; upserts are
``INSERT .. ON CONFLICT DO UPDATE`` on both (SQLite >= 3.24, PostgreSQL >= 9.5).
All methods are synchronous and thread-safe (the engine pools connections);
DeferredStore (deferred.py) runs them off the reactor thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from acs_security.store import schema as t
from acs_security.store.batch import device_row, merge_informs
from acs_security.store.bindings import BindingsMixin
from acs_security.store.codec import IdentityCodec, SecretCodec
from acs_security.store.console import ConsoleSessionsMixin
from acs_security.store.credentials import SHARED_CREDENTIAL_KEY, CredentialsMixin
from acs_security.store.desired import DesiredMixin
from acs_security.store.driver import compile_for_driver, cursor_of
from acs_security.store.engine import WRITE_OPTION, is_sqlite_memory, make_engine, parse_store_url, safe_url
from acs_security.store.errors import (
    InvalidArgument,
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    UnknownDevice,
)
from acs_security.store.files import FilesMixin
from acs_security.store.health import FULL, StoreHealth, is_conflict, outage_kind
from acs_security.store.jobs import TASK_UPDATE, JobsMixin
from acs_security.store.leases import LeasesMixin
from acs_security.store.migrations import check_version, migrate
from acs_security.store.nonces import NoncesMixin
from acs_security.store.reads import ReadsMixin
from acs_security.store.records import (
    Device,
    InformRecord,
    TransferComplete,
    check_aware,
    check_text,
)
from acs_security.store.statements import device_upsert, driver_statements, parameter_upsert
from acs_security.store.tokens import TokensMixin

__all__ = ["MAX_PAGE", "MAX_SERIALS_PER_QUERY", "SHARED_CREDENTIAL_KEY", "Store", "open_store"]

_UNKNOWN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_PAGE = 10_000
# Both backends cap bound parameters per statement (SQLite 32766, PostgreSQL 65535).
MAX_SERIALS_PER_QUERY = 10_000


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Store(CredentialsMixin, JobsMixin, TokensMixin, LeasesMixin, NoncesMixin, DesiredMixin, FilesMixin,
            ConsoleSessionsMixin, ReadsMixin, BindingsMixin):
    """Storage behind a narrow interface. Build one with open_store()."""

    def __init__(
        self,
        engine: Engine,
        *,
        secret_codec: SecretCodec | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._codec: SecretCodec = secret_codec if secret_codec is not None else IdentityCodec()
        self._clock: Callable[[], datetime] = clock if clock is not None else (lambda: datetime.now(UTC))
        self._where = safe_url(engine.url)
        self._pg = engine.dialect.name == "postgresql"
        self._closed = False
        # The dialect's own datetime bind conversion (SQLite: to text), looked up
        # once: record_informs applies it once per record instead of once per
        # parameter row, which was most of the batch's time (measured).
        dialect = engine.dialect
        self._time_bind: Callable[[datetime], Any] | None = (
            sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
        )
        # A type without bind processing for the converted value (SQLite: text).
        self._time_bind_type: sa.types.TypeEngine[Any] = sa.Text() if self._time_bind is not None else sa.DateTime()
        self._parameter_upsert = parameter_upsert(dialect, self._time_bind_type)
        self._device_upsert = device_upsert(dialect)
        # The connection of a group() open in this thread, if any.
        self._group = threading.local()
        # SQLite: the hot statements on the DBAPI cursor (driver.py); None on PostgreSQL.
        self._drv = (driver_statements(dialect, self._parameter_upsert, self._device_upsert)
                     if dialect.paramstyle == "qmark" else None)
        if self._drv is not None:
            # update_tasks: one per pushed phone's outcome (jobs.py).
            self._drv["task_update"] = compile_for_driver(TASK_UPDATE, dialect)
        dbapi = getattr(dialect, "dbapi", None) or getattr(dialect, "loaded_dbapi", None)
        self._dbapi_error: type[BaseException] = getattr(dbapi, "Error", sa.exc.SQLAlchemyError)
        self._dbapi_unavailable: tuple[type[BaseException], ...] = tuple(
            getattr(dbapi, name) for name in ("OperationalError", "InterfaceError") if hasattr(dbapi, name))
        #: Outages of the database as this store's calls find them (store/health.py).
        self.health = StoreHealth()

    def __repr__(self) -> str:
        return f"Store({self._where!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for later migrations' tables and for tests)."""
        return self._engine

    # -- plumbing ---------------------------------------------------------

    def _now(self) -> datetime:
        return check_aware("clock()", self._clock())

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        if self._closed:
            raise StoreClosed(f"cannot {what}: the store is closed")
        try:
            yield
        except StoreError:
            raise
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
            if is_conflict(exc):
                # psycopg's DeadlockDetected is an OperationalError, but the database is
                # fine: it aborted this transaction so that another could go on.
                raise StoreConflict(f"cannot {what}: {_first_line(exc)}") from exc
            raise self._unavailable(what, exc) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {_first_line(exc)}") from exc
        except self._dbapi_error as exc:  # a driver statement (driver.py) failed
            if isinstance(exc, self._dbapi_unavailable):
                raise self._unavailable(what, exc) from exc
            raise StoreError(f"cannot {what}: {_first_line(exc)}") from exc

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        """The error for a database that cannot be reached or cannot grow, noted in
        :attr:`health` (one outage, however many calls fail during it)."""
        kind = outage_kind(exc)
        reason = "is full" if kind == FULL else "is unavailable"
        error = StoreUnavailable(f"cannot {what}: the database at {self._where} {reason}: {_first_line(exc)}")
        self.health.failed(kind, str(error))
        return error

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        with self._guard(what), self._engine.connect() as conn:
            if self.backend == "postgresql":
                # Reads run in autocommit: no BEGIN and no ROLLBACK round trips around
                # them (each statement sees committed data, which is all a read needs).
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
        self.health.ok(wrote=False)

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        shared = getattr(self._group, "conn", None)
        if shared is not None:
            with self._guard(what):
                yield shared
            return
        with self._guard(what), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn
        self.health.ok(wrote=True)

    @contextmanager
    def group(self, what: str = "write a group of changes") -> Iterator[None]:
        """Group commit: the write methods called in this thread inside the block share ONE
        transaction, committed at its end; any error rolls all of it back (the caller may
        then retry the calls one by one, as DeferredStore does). Not reentrant.

        One commit per push session's SetParameterValues was a third of the store's time
        in a fleet push on SQLite (py-spy, bench/ figure 3); grouped, a commit carries the
        changes of every session that answered meanwhile.
        Raises StoreUnavailable/StoreError (nothing of the group is stored), or what the
        block raised.
        """
        if getattr(self._group, "conn", None) is not None:
            raise InvalidArgument("Store.group() is not reentrant")
        with self._guard(what), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                self._group.conn = conn
                try:
                    yield
                finally:
                    self._group.conn = None
        self.health.ok(wrote=True)

    def _grouped(self) -> bool:
        """Whether a group() is open in this thread (its writes share one transaction)."""
        return getattr(self._group, "conn", None) is not None

    def _insert(self, table: sa.Table) -> Any:
        return pg_dialect.insert(table) if self._pg else sqlite_dialect.insert(table)

    def _require_device(self, conn: Connection, device_id: str) -> None:
        check_text("device_id", device_id, empty=False)
        if self._drv is not None:
            found: Any = self._drv["device_exists"].execute(conn, {"device_id": device_id})
        else:
            found = conn.execute(sa.select(t.devices.c.id).where(t.devices.c.id == device_id)).first()
        if not found:
            raise UnknownDevice(f"no device {device_id!r} has informed")

    def _bind_time(self, value: datetime) -> Any:
        """An aware datetime as the driver wants it for a UTCDateTime column."""
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return self._time_bind(naive) if self._time_bind is not None else naive

    def _upsert_parameters(self, conn: Connection, rows: list[tuple[str, str, str, str, Any]]) -> None:
        """Upsert (device_id, name, value, type, bound time) rows, the time
        already passed through _bind_time; at most one row per (device, name)."""
        if not rows:
            return
        if self._pg:
            ids, names, values, types, times = (list(column) for column in zip(*rows, strict=True))
            conn.execute(self._parameter_upsert, {"arr_device_id": ids, "arr_name": names, "arr_value": values,
                                                  "arr_type": types, "arr_updated_at": times})
        elif self._drv is not None:
            # Rows are already (device_id, name, value, type, bound time): the statement's
            # parameter order, and none of them needs a bind processor.
            cur = cursor_of(conn)
            try:
                cur.executemany(self._drv["param_upsert"].sql, rows)
            finally:
                cur.close()
        else:
            conn.execute(self._parameter_upsert, [
                {"device_id": d, "name": n, "value": v, "type": ty, "bound_updated_at": at}
                for d, n, v, ty, at in rows
            ])

    # -- informs ----------------------------------------------------------

    def record_informs(self, records: Sequence[InformRecord]) -> None:
        """Store a batch of informs in ONE transaction (group commit).

        Upserts each device (first_seen kept, last_inform and reported fields
        moved; a field the inform did not carry (None) keeps its known value)
        and its reported parameters. A record with bootstrap=True first deletes
        every parameter value known for that device. Records for the same
        device apply in order.
        Raises InvalidArgument if an element is not an InformRecord,
        StoreUnavailable if the database cannot be reached, StoreError otherwise;
        on any error nothing of the batch is stored.
        """
        for rec in records:
            if not isinstance(rec, InformRecord):
                raise InvalidArgument(f"record_informs takes InformRecord objects, not {type(rec).__name__}")
        if not records:
            return
        merged = merge_informs(records)
        device_rows = [device_row(m) for m in merged]
        bootstrapped = [m.last.device_id for m in merged if m.bootstrap]
        bound_times: dict[datetime, Any] = {}
        param_rows: list[tuple[str, str, str, str, Any]] = []
        for m in merged:
            for name, (value, xsi_type, at) in sorted(m.params.items()):
                bound = bound_times.get(at)
                if bound is None:
                    bound = bound_times[at] = self._bind_time(at)
                param_rows.append((m.last.device_id, name, value, xsi_type, bound))
        with self._write("record informs") as conn:
            if self._drv is not None:
                self._drv["device_upsert"].execute_many(conn, device_rows)
            else:
                conn.execute(self._device_upsert, device_rows)
            for start in range(0, len(bootstrapped), 500):
                chunk = bootstrapped[start:start + 500]
                conn.execute(sa.delete(t.device_parameters).where(t.device_parameters.c.device_id.in_(chunk)))
            self._upsert_parameters(conn, param_rows)

    # -- devices ----------------------------------------------------------

    @staticmethod
    def _device(row: Any, tags: Sequence[str]) -> Device:
        return Device(
            device_id=row.id,
            oui=row.oui,
            product_class=row.product_class,
            serial_number=row.serial_number,
            manufacturer=row.manufacturer,
            software_version=row.software_version,
            connection_request_url=row.connection_request_url,
            udp_connection_request_address=row.udp_connection_request_address,
            parameter_key=row.parameter_key,
            events=tuple(row.last_events),
            first_seen=row.first_seen,
            last_inform=row.last_inform,
            remote_address=row.remote_address,
            tags=tuple(sorted(tags)),
        )

    def get_device(self, device_id: str) -> Device | None:
        """The device, or None if it never informed.

        Raises InvalidArgument for a non-string/empty id, StoreUnavailable/StoreError.
        """
        check_text("device_id", device_id, empty=False)
        with self._read("get a device") as conn:
            row = conn.execute(sa.select(t.devices).where(t.devices.c.id == device_id)).first()
            if row is None:
                return None
            tags = conn.execute(sa.select(t.device_tags.c.tag).where(t.device_tags.c.device_id == device_id)).scalars()
            return self._device(row, list(tags))

    @staticmethod
    def _filters(
        product_class: str | None,
        software_version: str | None,
        serial_numbers: Sequence[str] | None,
        tag: str | None,
    ) -> list[sa.ColumnElement[bool]]:
        d = t.devices.c
        where: list[sa.ColumnElement[bool]] = []
        if product_class is not None:
            where.append(d.product_class == check_text("product_class", product_class))
        if software_version is not None:
            where.append(d.software_version == check_text("software_version", software_version))
        if serial_numbers is not None:
            if isinstance(serial_numbers, str):
                raise InvalidArgument("serial_numbers must be a sequence of serial numbers, not one string")
            serials = [check_text("serial number", s) for s in serial_numbers]
            if len(serials) > MAX_SERIALS_PER_QUERY:
                raise InvalidArgument(f"at most {MAX_SERIALS_PER_QUERY} serial numbers per query, got {len(serials)}")
            where.append(d.serial_number.in_(serials) if serials else sa.false())
        if tag is not None:
            check_text("tag", tag, empty=False)
            tg = t.device_tags.c
            where.append(sa.exists().where(tg.device_id == d.id, tg.tag == tag))
        return where

    def list_devices(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        product_class: str | None = None,
        software_version: str | None = None,
        serial_numbers: Sequence[str] | None = None,
        tag: str | None = None,
    ) -> list[Device]:
        """Devices matching every given filter, ordered by device id, one page.

        Raises InvalidArgument for limit outside 1..MAX_PAGE, a negative offset
        or a bad filter value; StoreUnavailable/StoreError.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgument(f"offset must be a non-negative integer, got {offset!r}")
        where = self._filters(product_class, software_version, serial_numbers, tag)
        query = sa.select(t.devices).where(*where).order_by(t.devices.c.id).limit(limit).offset(offset)
        with self._read("list devices") as conn:
            rows = conn.execute(query).all()
            tags: dict[str, list[str]] = {row.id: [] for row in rows}
            if rows:
                tg = t.device_tags.c
                for device_id, tag_value in conn.execute(
                    sa.select(tg.device_id, tg.tag).where(tg.device_id.in_(list(tags)))
                ):
                    tags[device_id].append(tag_value)
            return [self._device(row, tags[row.id]) for row in rows]

    def count_devices(
        self,
        *,
        product_class: str | None = None,
        software_version: str | None = None,
        serial_numbers: Sequence[str] | None = None,
        tag: str | None = None,
    ) -> int:
        """How many devices match every given filter (same filters as list_devices).

        Raises InvalidArgument for a bad filter value; StoreUnavailable/StoreError.
        """
        where = self._filters(product_class, software_version, serial_numbers, tag)
        with self._read("count devices") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.devices).where(*where)).scalar_one())

    def set_tags(self, device_id: str, tags: Sequence[str]) -> None:
        """Replace the device's tags (duplicates collapse).

        Raises UnknownDevice, InvalidArgument (a tag that is empty or not a
        string; a single string instead of a sequence), StoreUnavailable/StoreError.
        """
        if isinstance(tags, str):
            raise InvalidArgument("tags must be a sequence of tags, not one string")
        wanted = sorted({check_text("tag", tag, empty=False) for tag in tags})
        with self._write("set tags") as conn:
            self._require_device(conn, device_id)
            conn.execute(sa.delete(t.device_tags).where(t.device_tags.c.device_id == device_id))
            if wanted:
                conn.execute(sa.insert(t.device_tags), [{"device_id": device_id, "tag": tag} for tag in wanted])

    # -- parameters -------------------------------------------------------

    def device_parameters(self, device_id: str) -> dict[str, tuple[str, str]]:
        """What the ACS knows of the device's values: name -> (value, xsi type).
        Empty for a device that never informed or was just bootstrapped.

        Raises InvalidArgument for a bad id; StoreUnavailable/StoreError.
        """
        check_text("device_id", device_id, empty=False)
        p = t.device_parameters.c
        with self._read("read device parameters") as conn:
            if self._drv is not None:
                rows: Any = self._drv["params_of"].execute(conn, {"device_id": device_id})
            else:
                rows = conn.execute(sa.select(p.name, p.value, p.type).where(p.device_id == device_id))
            return {name: (value, xsi_type) for name, value, xsi_type in rows}

    def set_device_parameters(self, device_id: str, params: Sequence[tuple[str, str, str]]) -> None:
        """Record values the ACS learnt (a SetParameterValues the CPE applied, a
        GetParameterValuesResponse): upsert (name, value, xsi type) triples.

        Raises UnknownDevice, InvalidArgument (malformed triple), StoreUnavailable/StoreError.
        """
        rows: dict[str, tuple[str, str, str, str, Any]] = {}
        now = self._bind_time(self._now())
        for param in params:
            if not isinstance(param, tuple) or len(param) != 3:
                raise InvalidArgument("each parameter must be a (name, value, type) tuple")
            name, value, xsi_type = param
            check_text("parameter name", name, empty=False)
            check_text(f"value of {name}", value)
            check_text(f"type of {name}", xsi_type)
            rows[name] = (device_id, name, value, xsi_type, now)
        with self._write("set device parameters") as conn:
            self._require_device(conn, device_id)
            self._upsert_parameters(conn, list(rows.values()))

    # -- transfers --------------------------------------------------------

    def record_transfer_complete(
        self,
        device_id: str,
        command_key: str,
        fault_code: int,
        fault_string: str,
        start_time: datetime | None,
        complete_time: datetime | None,
    ) -> None:
        """Record a TransferComplete (TR-069 A.3.3.2); fault_code 0 = success;
        a time of None or 0001-01-01T00:00:00Z (the CPE's "unknown") is stored as None.

        Raises UnknownDevice, InvalidArgument (negative or non-int fault code,
        naive datetime), StoreUnavailable/StoreError.
        """
        check_text("command_key", command_key)
        check_text("fault_string", fault_string)
        if isinstance(fault_code, bool) or not isinstance(fault_code, int) or fault_code < 0:
            raise InvalidArgument(f"fault_code must be a non-negative integer, got {fault_code!r}")
        for name, value in (("start_time", start_time), ("complete_time", complete_time)):
            if value is not None:
                check_aware(name, value)
        # TR-069 A.3.3.2: 0001-01-01T00:00:00Z means "unknown"; stored as NULL.
        start_time = None if start_time == _UNKNOWN_TIME else start_time
        complete_time = None if complete_time == _UNKNOWN_TIME else complete_time
        row = {"device_id": device_id, "command_key": command_key, "fault_code": fault_code,
               "fault_string": fault_string, "start_time": start_time, "complete_time": complete_time}
        with self._write("record a TransferComplete") as conn:
            self._require_device(conn, device_id)
            conn.execute(sa.insert(t.transfer_completes), row)

    def list_transfer_completes(self, device_id: str) -> list[TransferComplete]:
        """The device's TransferComplete records, oldest first.

        Raises InvalidArgument for a bad id; StoreUnavailable/StoreError.
        """
        check_text("device_id", device_id, empty=False)
        x = t.transfer_completes.c
        query = sa.select(x.device_id, x.command_key, x.fault_code, x.fault_string, x.start_time,
                          x.complete_time).where(x.device_id == device_id).order_by(x.id)
        with self._read("list TransferComplete records") as conn:
            return [TransferComplete(*row) for row in conn.execute(query)]

    # -- lifecycle --------------------------------------------------------

    def close(self) -> None:
        """Release every pooled connection. Later calls raise StoreClosed."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()


def open_store(
    url: str,
    *,
    secret_codec: SecretCodec | None = None,
    create: bool = True,
    clock: Callable[[], datetime] | None = None,
    app_name: str | None = None,
) -> Store:
    """Open the store at ``url``: ``sqlite:///PATH``, ``sqlite://`` (in memory)
    or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`` (psycopg 3; a
    ``?options=-csearch_path%3DSCHEMA`` query selects a schema).

    With create=True the schema is migrated to HEAD (idempotent); with
    create=False the database must already be at HEAD and a missing SQLite
    file is not created. ``app_name``: the PostgreSQL connections' application_name
    (engine.application_name(node) names a node's).
    Raises InvalidStoreURL for a bad URL, StoreUnavailable when the database
    cannot be reached or opened, SchemaVersionError for a schema that is not
    (or cannot be brought) at HEAD. Messages never show a password.
    """
    parsed = parse_store_url(url)
    if not create and parsed.get_backend_name() == "sqlite" and not is_sqlite_memory(parsed):
        path = parsed.database or ""
        if not path.startswith("file:") and not os.path.exists(path):
            raise StoreUnavailable(f"no SQLite database at {path!r} (open with create=True to make one)")
    engine = make_engine(parsed, app_name=app_name)
    store = Store(engine, secret_codec=secret_codec, clock=clock)
    try:
        with store._guard("open the store"):
            if create:
                migrate(engine, now=store._now())
            else:
                check_version(engine)
    except BaseException:
        engine.dispose()
        raise
    return store
