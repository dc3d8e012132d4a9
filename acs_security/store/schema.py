"""The current database schema (SQLAlchemy Core tables the queries use).

This module describes the schema at HEAD. The migration steps in
``migrations.py`` carry their own frozen copies of the tables as they were
created; a test reflects a freshly migrated database and compares it with these
tables, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

__all__ = [
    "EventList",
    "UTCDateTime",
    "connection_request_credentials",
    "console_sessions",
    "cpe_credentials",
    "device_parameters",
    "device_tags",
    "devices",
    "digest_nonces",
    "jobs",
    "metadata",
    "schema_version",
    "api_tokens",
    "config_backups",
    "config_blobs",
    "device_files",
    "assignments",
    "audit_results",
    "device_assignments",
    "drift_events",
    "tasks",
    "transfer_completes",
    "udp_bindings",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Stores an aware datetime as naive UTC, returns it UTC-aware.

    Both backends then hold the same value and compare/sort it the same way
    (SQLite has no time zone type; a naive value would silently mix zones).
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class EventList(TypeDecorator[tuple[str, ...]]):
    """A short list of strings kept as a JSON array in a text column (the last
    Inform's event codes: read with the device, never searched)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(json.loads(value))


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
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
    # Migration step 10: the phone's Device.ManagementServer.ConnReqJabberID (XMPP
    # connection requests, TR-069 Annex K), kept when an Inform does not carry it.
    sa.Column("xmpp_jid", sa.Text),
    sa.Index("ix_devices_product_class", "product_class"),
    sa.Index("ix_devices_software_version", "software_version"),
    sa.Index("ix_devices_serial_number", "serial_number"),
)

# Migration step 10: the public UDP addresses the STUN server learnt from phones' Binding
# Requests (TR-111 part 2), one row per address, with when it was last seen; the device is
# known when the request's USERNAME is a device's connection-request username.
udp_bindings = sa.Table(
    "udp_bindings",
    metadata,
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text),
    sa.Column("username", sa.Text),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime),
    sa.Column("server", sa.Text),
    sa.Index("ix_udp_bindings_device_id", "device_id"),
    sa.Index("ix_udp_bindings_last_seen", "last_seen"),
)

device_tags = sa.Table(
    "device_tags",
    metadata,
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Index("ix_device_tags_tag", "tag"),
)

device_parameters = sa.Table(
    "device_parameters",
    metadata,
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

cpe_credentials = sa.Table(
    "cpe_credentials",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("password", sa.Text, nullable=False),  # SecretCodec-encoded
    sa.Column("created_at", UTCDateTime, nullable=False),
)

connection_request_credentials = sa.Table(
    "connection_request_credentials",
    metadata,
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("password", sa.Text, nullable=False),  # SecretCodec-encoded
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Migration step 10: the STUN server finds devices by username (store/bindings.py).
    sa.Index("ix_connection_request_credentials_username", "username"),
)

transfer_completes = sa.Table(
    "transfer_completes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("command_key", sa.Text, nullable=False),
    sa.Column("fault_code", sa.Integer, nullable=False),
    sa.Column("fault_string", sa.Text, nullable=False),
    sa.Column("start_time", UTCDateTime),
    sa.Column("complete_time", UTCDateTime),
    sa.Index("ix_transfer_completes_device_id", "device_id"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),  # JSON
    sa.Column("selector", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),  # JSON
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
    # The last wave whose fault brake an operator released with resume (-1: none); in the
    # store so that every node judges waves alike (migration step 4).
    sa.Column("brake_released", sa.Integer, nullable=False, server_default=sa.text("-1")),
    # push (a policy's SetParameterValues) or audit (GetParameterValues of the settings that
    # assignments control, decision 0009); migration step 6.
    sa.Column("kind", sa.Text, nullable=False, server_default=sa.text("'push'")),
    sa.Index("ix_jobs_state", "state"),
    sa.Index("ix_jobs_parameter_key", "parameter_key", unique=True),
)

#: The condition of the partial indexes on active tasks; queries that should use them repeat
#: it to the letter (store/claims.py), which is how both planners match a partial index.
ACTIVE_TASK_STATES = ("pending", "requested", "in_session", "transferring")  # fleet/tasks.py ACTIVE
ACTIVE_TASKS_SQL = sa.text("state IN (" + ", ".join(f"'{s}'" for s in ACTIVE_TASK_STATES) + ")")

tasks = sa.Table(
    "tasks",
    metadata,
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
    sa.Column("faults", sa.Text),  # JSON list of {name, code, string}
    sa.Column("detail", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    # Scale-out (migration step 4): the node whose job runner holds the task for connection
    # requests, until when (a dead node's claims lapse and another node takes them), when
    # the next connection request may go, and the node that last changed the task.
    sa.Column("claimed_by", sa.Text),
    sa.Column("claim_until", UTCDateTime),
    sa.Column("next_attempt", UTCDateTime),
    sa.Column("node", sa.Text),
    # Migration step 10: how the last connection request before the device's session was
    # sent (connreq/methods.py ReachMethod: http, udp, xmpp); None: none was sent.
    sa.Column("reached_by", sa.Text),
    sa.Index("ix_tasks_device_id", "device_id"),
    sa.Index("ix_tasks_job_state", "job_id", "state"),
    # Partial indexes over the active tasks only: the claims (next due tasks of a job, in
    # order) and their renewal (this node's) run every second on every job runner, and must
    # not scan the finished tasks of every job ever run (migration step 4).
    sa.Index("ix_tasks_active_position", "job_id", "position",
             postgresql_where=ACTIVE_TASKS_SQL, sqlite_where=ACTIVE_TASKS_SQL),
    sa.Index("ix_tasks_active_claimed_by", "claimed_by",
             postgresql_where=ACTIVE_TASKS_SQL, sqlite_where=ACTIVE_TASKS_SQL),
)

# One CWMP session per device across every node on this database (migration step 4): a
# node holds the row while the session runs, renews it as messages come and deletes it at
# the end; a row whose expires_at has passed belongs to a node that died and may be taken.
device_sessions = sa.Table(
    "device_sessions",
    metadata,
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# HTTP digest nonce counts seen, shared by every node on this database (migration step 5):
# the highest nc accepted per server nonce (RFC 7616 section 3.4: a nonce-count is used
# once), so that an Authorization header captured on one node is refused on every other.
# A row is useless once its nonce expired (expires_at = issued + nonce lifetime) and is
# purged then (store/nonces.py).
digest_nonces = sa.Table(
    "digest_nonces",
    metadata,
    sa.Column("nonce", sa.Text, primary_key=True),
    sa.Column("nc", sa.BigInteger, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_digest_nonces_expires_at", "expires_at"),
)

# Bearer tokens of the northbound API (migration step 3). Only the SHA-256 of a token is
# kept: tokens are 256-bit random strings, so a fast hash is enough (no offline guessing
# to slow down, unlike passwords).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
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

# Files served to one phone each (migration step 8, docs/files.md): a cfg.xml a Download
# points at, or the place an Upload puts the phone's configuration. ``content`` is encoded
# with the store's SecretCodec (it may hold passwords); the URL's token is signed, never
# stored. A row lives until the transfer completes or expires.
device_files = sa.Table(
    "device_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # download | upload
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE")),
    sa.Column("command_key", sa.Text, nullable=False),
    sa.Column("auth", sa.Text, nullable=False),  # digest | signed
    sa.Column("content", sa.Text),
    sa.Column("sha256", sa.Text),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # offered, fetched, completed, failed, expired
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
    # Live files are few among the finished ones: the overdue check looks them up by state.
    sa.Index("ix_device_files_state", "state"),
)

# Configuration backups (migration step 8): each distinct content once (by SHA-256), encoded
# with the SecretCodec; per device, numbered versions that point at a content.
config_blobs = sa.Table(
    "config_blobs",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

config_backups = sa.Table(
    "config_backups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime, nullable=False),
    sa.Column("uploads", sa.Integer, nullable=False),
    sa.Column("job_id", sa.Integer),
    sa.Column("report", sa.Text, nullable=False),  # JSON: element names only, never values
    sa.Index("ix_config_backups_device_version", "device_id", "version", unique=True),
    sa.Index("ix_config_backups_sha256", "sha256"),
)

# Desired state (migration step 6, docs/decisions/0009-desired-state.md). An assignment binds
# a policy (JSON, secrets sealed like a job's) to a selector; every change of its policy,
# selector, priority or mode is a new revision, which the ParameterKey of its
# SetParameterValues names.
assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),  # JSON
    sa.Column("policy_name", sa.Text, nullable=False),
    sa.Column("selector", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),  # enforce | audit
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_assignments_name", "name", unique=True),
)

# What the ACS last established for one device and one assignment: the revision, the state
# (applied, compliant, drifted, faulted, skipped, overridden, unknown), the settings skipped
# on this model, the CPE's faults, the revision whose parameters were set to active
# notification, the firmware it was judged on and the job that won a session (overridden).
device_assignments = sa.Table(
    "device_assignments",
    metadata,
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("skipped", sa.Text),  # JSON list of setting keys
    sa.Column("faults", sa.Text),  # JSON list of {name, code, string}
    sa.Column("notified_revision", sa.Integer, nullable=False),
    sa.Column("software_version", sa.Text),
    sa.Column("job_id", sa.Integer),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("node", sa.Text),
    sa.Index("ix_device_assignments_assignment_state", "assignment_id", "state"),
)

# A device's desired-state history: drift (a controlled setting changed on the phone), a job
# that won a session against an assignment, a factory reset. Secret values are never stored
# (masked before they get here).
drift_events = sa.Table(
    "drift_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id", ondelete="SET NULL")),
    sa.Column("assignment_name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # drift | job_conflict | factory_reset
    sa.Column("setting", sa.Text),
    sa.Column("path", sa.Text),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
    sa.Column("event", sa.Text, nullable=False),  # the Inform event or "audit job N"
    sa.Column("action", sa.Text, nullable=False),  # corrected | reported | job_won | correction_failed
    sa.Column("job_id", sa.Integer),
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("node", sa.Text),
    sa.Index("ix_drift_events_device_id", "device_id", "id"),
    sa.Index("ix_drift_events_job_id", "job_id"),
)

# What an audit job read from one device: JSON list of per-setting verdicts (secret values
# masked).
audit_results = sa.Table(
    "audit_results",
    metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=False),
)

# Web console sessions (migration step 9): the SHA-256 of the cookie's secret (the secret
# itself is only in the browser), the API token it was exchanged for, an absolute expiry and
# the last request (idle expiry). A row whose token is revoked is dead at once: every console
# request reads its row joined with api_tokens, on whichever node it lands.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_sha256", sa.Text, primary_key=True),
    sa.Column("token_id", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Index("ix_console_sessions_token_id", "token_id"),
    sa.Index("ix_console_sessions_expires_at", "expires_at"),
)
