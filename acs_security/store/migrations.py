"""Schema migrations: an ordered list of steps and a ``schema_version`` table.

Chosen over Alembic (docs/decisions/0003-store.md): the store has a handful of
tables, the steps run in-process at open, and a list of functions is easy to
read and to test on both backends. Rules for a new step:

- append ``Migration(N + 1, "what", _vN_plus_1)``; never edit a released step;
- a step defines the tables it creates in its own MetaData (a frozen copy), so
  that later changes to ``schema.py`` do not change what an old step does;
- update ``schema.py`` to the new HEAD (a test compares the two).

All pending steps and their ``schema_version`` rows run in ONE transaction:
PostgreSQL and SQLite both have transactional DDL (SQLite's needs SQLAlchemy
to emit BEGIN, see engine.py), so a failing step leaves the database as it
was. Two ACS nodes starting at once serialise on a PostgreSQL advisory lock
(SQLite: the ``BEGIN IMMEDIATE`` write lock), and the second sees the first's
work and applies nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from acs_security.store.engine import WRITE_OPTION
from acs_security.store.errors import SchemaVersionError
from acs_security.store.schema import EventList, UTCDateTime

__all__ = ["HEAD", "MIGRATIONS", "Migration", "check_version", "migrate", "read_version"]

# Arbitrary constant key for pg_advisory_xact_lock: "acs-security store migrations".
_PG_LOCK_KEY = 0x0AC5_5EC0_0003


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _version_table(md: sa.MetaData) -> sa.Table:
    # The bookkeeping table itself never changes shape.
    return sa.Table(
        "schema_version",
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=False),
    )


_VERSION = _version_table(sa.MetaData())


def _v1(conn: Connection) -> None:
    """Devices, reported parameters, tags, CPE and connection-request
    credentials, TransferComplete records (the CWMP endpoint issue)."""
    md = sa.MetaData()
    sa.Table(
        "devices", md,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("oui", sa.Text, nullable=False),
        sa.Column("product_class", sa.Text, nullable=False),
        sa.Column("serial_number", sa.Text, nullable=False),
        sa.Column("manufacturer", sa.Text, nullable=False),
        sa.Column("software_version", sa.Text),
        sa.Column("connection_request_url", sa.Text),
        sa.Column("udp_connection_request_address", sa.Text),
        sa.Column("parameter_key", sa.Text),
        sa.Column("last_events", EventList, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_inform", UTCDateTime, nullable=False),
        sa.Column("remote_address", sa.Text),
        sa.Index("ix_devices_product_class", "product_class"),
        sa.Index("ix_devices_software_version", "software_version"),
        sa.Index("ix_devices_serial_number", "serial_number"),
    )
    sa.Table(
        "device_tags", md,
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
        sa.Index("ix_device_tags_tag", "tag"),
    )
    sa.Table(
        "device_parameters", md,
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "cpe_credentials", md,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "connection_request_credentials", md,
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "transfer_completes", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("command_key", sa.Text, nullable=False),
        sa.Column("fault_code", sa.Integer, nullable=False),
        sa.Column("fault_string", sa.Text, nullable=False),
        sa.Column("start_time", UTCDateTime),
        sa.Column("complete_time", UTCDateTime),
        sa.Index("ix_transfer_completes_device_id", "device_id"),
    )
    md.create_all(conn, checkfirst=False)


def _v2(conn: Connection) -> None:
    """Fleet jobs and their per-device tasks (the fleet push issue)."""
    md = sa.MetaData()
    sa.Table("devices", md, sa.Column("id", sa.Text, primary_key=True))  # FK target only
    sa.Table(
        "jobs", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("selector", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("parameter_key", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("current_wave", sa.Integer, nullable=False),
        sa.Column("wave_count", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deadline", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Index("ix_jobs_state", "state"),
        sa.Index("ix_jobs_parameter_key", "parameter_key", unique=True),
    )
    sa.Table(
        "tasks", md,
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
        sa.Column("cr_exhausted", sa.Boolean, nullable=False),
        sa.Column("fault_code", sa.Integer),
        sa.Column("fault_string", sa.Text),
        sa.Column("faults", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Index("ix_tasks_device_id", "device_id"),
        sa.Index("ix_tasks_job_state", "job_id", "state"),
    )
    md.tables["jobs"].create(conn, checkfirst=False)
    md.tables["tasks"].create(conn, checkfirst=False)


def _v3(conn: Connection) -> None:
    """Bearer tokens of the northbound API (the northbound interfaces issue)."""
    md = sa.MetaData()
    sa.Table(
        "api_tokens", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("last_used", UTCDateTime),
        sa.Index("ix_api_tokens_token_sha256", "token_sha256", unique=True),
        sa.Index("ix_api_tokens_name", "name", unique=True),
    )
    md.create_all(conn, checkfirst=False)


def _add_column(conn: Connection, table: str, column: sa.Column) -> None:
    """ALTER TABLE ... ADD COLUMN, typed for the connection's dialect (both backends
    accept a nullable or defaulted column added this way)."""
    ddl = column.type.compile(dialect=conn.dialect)
    server_default = column.server_default
    default = ""
    if server_default is not None:
        assert isinstance(server_default, sa.DefaultClause)  # what Column(server_default=...) makes
        default = f" NOT NULL DEFAULT {server_default.arg}"
    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column.name} {ddl}{default}"))


def _v4(conn: Connection) -> None:
    """Scale-out (several nodes on one database): task claims with a lease, retry times
    and the deciding node in the store, the released fault brake per job, and device
    session leases (one CWMP session per device across nodes)."""
    _add_column(conn, "tasks", sa.Column("claimed_by", sa.Text))
    _add_column(conn, "tasks", sa.Column("claim_until", UTCDateTime))
    _add_column(conn, "tasks", sa.Column("next_attempt", UTCDateTime))
    _add_column(conn, "tasks", sa.Column("node", sa.Text))
    _add_column(conn, "jobs", sa.Column("brake_released", sa.Integer, server_default=sa.text("-1")))
    md = sa.MetaData()
    active = sa.text("state IN ('pending', 'requested', 'in_session')")
    tasks = sa.Table(
        "tasks", md,
        sa.Column("job_id", sa.Integer), sa.Column("position", sa.Integer),
        sa.Column("state", sa.Text), sa.Column("claimed_by", sa.Text),
    )
    sa.Index("ix_tasks_active_position", tasks.c.job_id, tasks.c.position,
             postgresql_where=active, sqlite_where=active).create(conn)
    sa.Index("ix_tasks_active_claimed_by", tasks.c.claimed_by,
             postgresql_where=active, sqlite_where=active).create(conn)
    sa.Table(
        "device_sessions", md,
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    md.tables["device_sessions"].create(conn, checkfirst=False)


def _v5(conn: Connection) -> None:
    """Digest nonce counts seen, shared by the nodes (a replayed Authorization header is
    refused on every node, not only on the one that saw it first)."""
    md = sa.MetaData()
    sa.Table(
        "digest_nonces", md,
        sa.Column("nonce", sa.Text, primary_key=True),
        sa.Column("nc", sa.BigInteger, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Index("ix_digest_nonces_expires_at", "expires_at"),
    )
    md.create_all(conn, checkfirst=False)
def _v6(conn: Connection) -> None:
    """Desired state (issue 14): assignments (a policy bound to a selector, revisioned), one
    record per device and assignment, the devices' drift history, audit readings, and the
    kind of a job (push or audit)."""
    _add_column(conn, "jobs", sa.Column("kind", sa.Text, server_default=sa.text("'push'")))
    md = sa.MetaData()
    sa.Table("devices", md, sa.Column("id", sa.Text, primary_key=True))  # FK target only
    sa.Table("jobs", md, sa.Column("id", sa.Integer, primary_key=True))  # FK target only
    sa.Table(
        "assignments", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("policy_name", sa.Text, nullable=False),
        sa.Column("selector", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Index("ix_assignments_name", "name", unique=True),
    )
    sa.Table(
        "device_assignments", md,
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("skipped", sa.Text),
        sa.Column("faults", sa.Text),
        sa.Column("notified_revision", sa.Integer, nullable=False),
        sa.Column("software_version", sa.Text),
        sa.Column("job_id", sa.Integer),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("node", sa.Text),
        sa.Index("ix_device_assignments_assignment_state", "assignment_id", "state"),
    )
    sa.Table(
        "drift_events", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id", ondelete="SET NULL")),
        sa.Column("assignment_name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("setting", sa.Text),
        sa.Column("path", sa.Text),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("detected_at", UTCDateTime, nullable=False),
        sa.Column("node", sa.Text),
        sa.Index("ix_drift_events_device_id", "device_id", "id"),
        sa.Index("ix_drift_events_job_id", "job_id"),
    )
    sa.Table(
        "audit_results", md,
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("read_at", UTCDateTime, nullable=False),
    )
    for name in ("assignments", "device_assignments", "drift_events", "audit_results"):
        md.tables[name].create(conn, checkfirst=False)


def _v8(conn: Connection) -> None:
    """Vendor configuration files: files served to one phone each (Download/Upload), config
    backups with deduplicated contents, and "transferring" among the active task states
    (the partial indexes over active tasks are rebuilt with it)."""
    md = sa.MetaData()
    tasks = sa.Table(
        "tasks", md,
        sa.Column("job_id", sa.Integer), sa.Column("position", sa.Integer),
        sa.Column("state", sa.Text), sa.Column("claimed_by", sa.Text),
    )
    active = sa.text("state IN ('pending', 'requested', 'in_session', 'transferring')")
    for name in ("ix_tasks_active_position", "ix_tasks_active_claimed_by"):
        conn.execute(sa.text(f"DROP INDEX {name}"))
    sa.Index("ix_tasks_active_position", tasks.c.job_id, tasks.c.position,
             postgresql_where=active, sqlite_where=active).create(conn)
    sa.Index("ix_tasks_active_claimed_by", tasks.c.claimed_by,
             postgresql_where=active, sqlite_where=active).create(conn)
    sa.Table("devices", md, sa.Column("id", sa.Text, primary_key=True))
    sa.Table("jobs", md, sa.Column("id", sa.Integer, primary_key=True))
    files = sa.Table(
        "device_files", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE")),
        sa.Column("command_key", sa.Text, nullable=False),
        sa.Column("auth", sa.Text, nullable=False),
        sa.Column("content", sa.Text),
        sa.Column("sha256", sa.Text),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("fetches", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("fetched_at", UTCDateTime),
        sa.Column("completed_at", UTCDateTime),
        sa.Column("fault_code", sa.Integer),
        sa.Column("detail", sa.Text),
        sa.Column("backup_id", sa.Integer),
        sa.Index("ix_device_files_device_id", "device_id"),
        sa.Index("ix_device_files_job_device", "job_id", "device_id"),
        sa.Index("ix_device_files_state", "state"),
    )
    blobs = sa.Table(
        "config_blobs", md,
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    backups = sa.Table(
        "config_backups", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime, nullable=False),
        sa.Column("uploads", sa.Integer, nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("report", sa.Text, nullable=False),
        sa.Index("ix_config_backups_device_version", "device_id", "version", unique=True),
        sa.Index("ix_config_backups_sha256", "sha256"),
    )
    for table in (files, blobs, backups):
        table.create(conn, checkfirst=False)
def _v9(conn: Connection) -> None:
    """Web console sessions (docs/console.md): a signed-in browser's session, kept in the
    store so that every node honours a sign-out or a token revocation at once."""
    md = sa.MetaData()
    sa.Table(
        "console_sessions", md,
        sa.Column("id_sha256", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Index("ix_console_sessions_token_id", "token_id"),
        sa.Index("ix_console_sessions_expires_at", "expires_at"),
    )
    md.create_all(conn, checkfirst=False)


def _v10(conn: Connection) -> None:
    """Phones behind NAT (issue 15, docs/nat.md): the bindings the STUN server learns, the
    device's XMPP Jabber ID, and the method that reached each task's device."""
    _add_column(conn, "devices", sa.Column("xmpp_jid", sa.Text))
    _add_column(conn, "tasks", sa.Column("reached_by", sa.Text))
    md = sa.MetaData()
    sa.Table(
        "udp_bindings", md,
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text),
        sa.Column("username", sa.Text),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("changed_at", UTCDateTime),
        sa.Column("server", sa.Text),
        sa.Index("ix_udp_bindings_device_id", "device_id"),
        sa.Index("ix_udp_bindings_last_seen", "last_seen"),
    )
    md.create_all(conn, checkfirst=False)
    # The STUN server looks Binding Requests' USERNAMEs up in batches (store/bindings.py).
    creds = sa.Table("connection_request_credentials", md, sa.Column("username", sa.Text))
    sa.Index("ix_connection_request_credentials_username", creds.c.username).create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "devices, device_parameters, device_tags, credentials, transfer_completes", _v1),
    Migration(2, "jobs, tasks", _v2),
    Migration(3, "api_tokens", _v3),
    Migration(4, "task claims, job brake, device_sessions (scale-out)", _v4),
    Migration(5, "digest_nonces (nonce counts shared by the nodes)", _v5),
    Migration(6, "assignments, device_assignments, drift_events, audit_results, jobs.kind (desired state)", _v6),
    Migration(8, "device_files, config_blobs, config_backups; transferring tasks are active", _v8),
    Migration(9, "console_sessions (web console sign-ins)", _v9),
    Migration(10, "udp_bindings, devices.xmpp_jid, tasks.reached_by (phones behind NAT)", _v10),
)
HEAD: int = MIGRATIONS[-1].version


def read_version(conn: Connection) -> int:
    """The schema version of the database on ``conn`` (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(sa.select(sa.func.max(_VERSION.c.version))).scalar_one() or 0


def _refuse_newer(version: int, head: int = HEAD) -> None:
    if version > head:
        raise SchemaVersionError(
            f"the database schema is at version {version}, newer than this code's {head}: "
            "upgrade acs-security (downgrades are not supported)"
        )


def migrate(engine: Engine, *, now: datetime, steps: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database to the last of ``steps`` in one transaction; return
    the version reached. ``now`` (aware) is recorded as each step's applied_at.

    Raises SchemaVersionError if the database is newer than the code; lets
    SQLAlchemy errors propagate (the Store wraps them).
    """
    head = steps[-1].version
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            _VERSION.create(conn, checkfirst=True)
            current = read_version(conn)
            _refuse_newer(current, head)
            for step in steps:
                if step.version <= current:
                    continue
                step.apply(conn)
                conn.execute(
                    sa.insert(_VERSION),
                    {"version": step.version, "description": step.description, "applied_at": now},
                )
    return head


def check_version(engine: Engine) -> int:
    """Return the database's version if it is HEAD.

    Raises SchemaVersionError if it is older (migrate with create=True) or newer.
    """
    with engine.connect() as conn:
        version = read_version(conn)
    _refuse_newer(version)
    if version < HEAD:
        raise SchemaVersionError(
            f"the database schema is at version {version}, this code needs {HEAD}: "
            "open the store with create=True to migrate"
        )
    return version
