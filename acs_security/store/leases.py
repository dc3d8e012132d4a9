"""Device session leases in the store (a mixin of :class:`Store`, like jobs.py).

TR-069 has a device in at most one CWMP session at a time (section 3.7.1.5 lets the ACS
refuse a second one). With several nodes on one database a device may reach any node, so
the node that opens a session takes a lease on the device: a ``device_sessions`` row
(device id, node, session token, expires_at). The node renews the lease while messages
come and deletes it when the session ends; a clean shutdown deletes all of the node's
leases. A row whose ``expires_at`` has passed belongs to a node that died: another node
may take it.

Taking a lease is ONE statement, ``INSERT .. ON CONFLICT (device_id) DO UPDATE .. WHERE
<lease free> RETURNING``, atomic on both backends: PostgreSQL locks the conflicting row
(even when the WHERE refuses the update) until the transaction ends, and SQLite runs
write transactions one at a time (``BEGIN IMMEDIATE``, engine.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import StoreError
from acs_security.store.records import check_aware, check_text

__all__ = ["LeasesMixin"]


class LeasesMixin:
    """Device session lease methods of the Store; uses the Store's ``_read``/``_write``/
    ``_now``/``_insert`` plumbing. Every method raises InvalidArgument for bad arguments,
    StoreUnavailable/StoreError when the database fails."""

    _read: Any
    _write: Any
    _now: Any
    _insert: Any

    def claim_device_session(self, device_id: str, node: str, token: str, until: datetime) -> str | None:
        """Take the lease on ``device_id`` for session ``token`` of ``node`` until ``until``.

        Taken when no node holds it, when the holder's lease expired before the store's
        now (a dead node's), or when it is already this (node, token) (then ``until``
        moves). Returns None when taken, else the name of the node holding it."""
        check_text("device_id", device_id, empty=False)
        check_text("node", node, empty=False)
        check_text("token", token, empty=False)
        check_aware("until", until)
        c = t.device_sessions.c
        stmt = self._lease_statements()[0]
        params = {"l_device": device_id, "l_node": node, "l_token": token, "l_until": until, "l_now": self._now()}
        with self._write("claim a device session") as conn:
            for _ in range(2):
                if conn.execute(stmt, params).first() is not None:
                    return None
                # Refused: the row exists and stays locked by this transaction on PostgreSQL
                # (SQLite: no other writer), so the holder read here is the one that refused.
                holder = conn.execute(sa.select(c.node).where(c.device_id == device_id)).scalar()
                if holder is not None:
                    return str(holder)
                # Gone between the two statements (not expected, see above): try once more.
        raise StoreError(f"cannot claim a device session: the lease on {device_id!r} keeps changing")

    def _lease_statements(self) -> tuple[Any, Any]:
        """The claim and release statements, built once per store: they run on every
        session's path, and building an upsert costs more than running it."""
        cached = getattr(self, "_lease_stmts", None)
        if cached is None:
            c = t.device_sessions.c
            insert = self._insert(t.device_sessions).values(
                device_id=sa.bindparam("l_device"), node=sa.bindparam("l_node"),
                token=sa.bindparam("l_token"), expires_at=sa.bindparam("l_until", type_=t.UTCDateTime))
            claim = insert.on_conflict_do_update(
                index_elements=[c.device_id],
                set_={"node": insert.excluded.node, "token": insert.excluded.token,
                      "expires_at": insert.excluded.expires_at},
                # In the DO UPDATE's WHERE the table's columns are the row already there.
                where=sa.or_(c.expires_at < sa.bindparam("l_now", type_=t.UTCDateTime),
                             sa.and_(c.node == insert.excluded.node, c.token == insert.excluded.token)),
            ).returning(c.device_id)
            release = sa.delete(t.device_sessions).where(c.device_id == sa.bindparam("l_device"),
                                                         c.token == sa.bindparam("l_token"))
            cached = self._lease_stmts = (claim, release)
        return cached

    def renew_device_session(self, device_id: str, token: str, until: datetime) -> bool:
        """Move the lease of session ``token`` on ``device_id`` to ``until``; False when the
        session holds no lease on it (released, or taken over after it expired)."""
        check_text("device_id", device_id, empty=False)
        check_text("token", token, empty=False)
        check_aware("until", until)
        c = t.device_sessions.c
        with self._write("renew a device session") as conn:
            result = conn.execute(sa.update(t.device_sessions)
                                  .where(c.device_id == device_id, c.token == token)
                                  .values(expires_at=until))
        return bool(result.rowcount)

    def release_device_session(self, device_id: str, token: str) -> bool:
        """Drop the lease of session ``token`` on ``device_id``; False when it held none
        (a lease another session took meanwhile is left alone)."""
        check_text("device_id", device_id, empty=False)
        check_text("token", token, empty=False)
        with self._write("release a device session") as conn:
            result = conn.execute(self._lease_statements()[1], {"l_device": device_id, "l_token": token})
        return bool(result.rowcount)

    def release_node_sessions(self, node: str) -> int:
        """Drop every lease ``node`` holds (its clean shutdown); the number dropped."""
        check_text("node", node, empty=False)
        with self._write("release a node's device sessions") as conn:
            result = conn.execute(sa.delete(t.device_sessions).where(t.device_sessions.c.node == node))
        return int(result.rowcount)

    def device_session(self, device_id: str) -> tuple[str, str, datetime] | None:
        """(node, token, expires_at) of the lease on ``device_id``, or None (for operators
        and tests)."""
        check_text("device_id", device_id, empty=False)
        c = t.device_sessions.c
        with self._read("read a device session") as conn:
            row = conn.execute(sa.select(c.node, c.token, c.expires_at).where(c.device_id == device_id)).first()
        return (row.node, row.token, row.expires_at) if row is not None else None
