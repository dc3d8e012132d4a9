"""Web console sessions in the store (a mixin of the Store, like tokens.py).

A session is what a browser gets for an API token at sign-in (docs/console.md): the cookie
holds a 256-bit random secret, the store only its SHA-256 (as for API tokens, a fast hash is
right for a random secret). Reading a session joins its token, so a revoked token ends its
sessions on every node at the next request, and a sign-out deletes the row, which every node
sees at once. Expiry is decided by the caller (console/sessions.py) from the times returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import check_aware

__all__ = ["ConsoleSessionRecord", "ConsoleSessionsMixin"]

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class ConsoleSessionRecord:
    """One session as stored, with its token's name, role and revocation."""

    id_sha256: str
    token_id: int
    token_name: str
    role: str
    token_revoked_at: datetime | None
    created_at: datetime
    expires_at: datetime
    last_seen: datetime

    def __repr__(self) -> str:  # the hash stays out of logs too
        return f"ConsoleSessionRecord(token={self.token_name!r}, role={self.role!r})"


def _check_hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise InvalidArgument("a console session id hash is 64 lower-case hex digits")
    return value


class ConsoleSessionsMixin:
    """Console session methods of the Store. Every method raises StoreError
    (InvalidArgument for bad arguments)."""

    _read: Any
    _write: Any

    def create_console_session(self, id_sha256: str, token_id: int, created_at: datetime,
                               expires_at: datetime) -> None:
        """Store a new session for the token ``token_id``; sessions already past their
        expiry are deleted in the same transaction (they can never be used again)."""
        digest = _check_hash(id_sha256)
        check_aware("created_at", created_at)
        check_aware("expires_at", expires_at)
        if isinstance(token_id, bool) or not isinstance(token_id, int):
            raise InvalidArgument("token_id must be an integer")
        c = t.console_sessions.c
        with self._write("create a console session") as conn:
            conn.execute(sa.delete(t.console_sessions).where(c.expires_at < created_at))
            conn.execute(sa.insert(t.console_sessions).values(
                id_sha256=digest, token_id=token_id, created_at=created_at, expires_at=expires_at,
                last_seen=created_at))

    def console_session(self, id_sha256: str) -> ConsoleSessionRecord | None:
        """The session with this hash and its token, or None (no such session, or its token
        is gone)."""
        digest = _check_hash(id_sha256)
        s, k = t.console_sessions.c, t.api_tokens.c
        query = (sa.select(s.id_sha256, s.token_id, k.name, k.role, k.revoked_at, s.created_at,
                           s.expires_at, s.last_seen)
                 .join(t.api_tokens, k.id == s.token_id).where(s.id_sha256 == digest))
        with self._read("read a console session") as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return ConsoleSessionRecord(*row)

    def touch_console_session(self, id_sha256: str, when: datetime) -> None:
        """Record a request of the session (its idle expiry counts from here)."""
        digest = _check_hash(id_sha256)
        check_aware("when", when)
        c = t.console_sessions.c
        with self._write("record a console request") as conn:
            conn.execute(sa.update(t.console_sessions).where(c.id_sha256 == digest).values(last_seen=when))

    def end_console_session(self, id_sha256: str) -> bool:
        """Delete the session (sign-out); False when there was none."""
        digest = _check_hash(id_sha256)
        with self._write("end a console session") as conn:
            result = conn.execute(sa.delete(t.console_sessions).where(t.console_sessions.c.id_sha256 == digest))
        return bool(result.rowcount)

    def count_console_sessions(self, *, token_id: int | None = None) -> int:
        """Sessions stored (of one token), expired ones not yet purged included."""
        c = t.console_sessions.c
        query = sa.select(sa.func.count()).select_from(t.console_sessions)
        if token_id is not None:
            query = query.where(c.token_id == int(token_id))
        with self._read("count console sessions") as conn:
            return int(conn.execute(query).scalar_one())
