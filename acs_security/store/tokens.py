"""Bearer tokens of the northbound API in the store (a mixin, like jobs.py).

Only the SHA-256 of a token is stored (hex). Tokens are 256-bit random strings made by
``secrets``/``os.urandom``, so a fast hash is the right one: there is no dictionary to
guess from, and a slow password hash would only cost every API request time. The token
itself is shown once, by whoever created it, and never stored or logged.

:class:`TokensMixin` uses the Store's ``_read``/``_write`` plumbing; the Store (sql.py) lists
it among its bases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import check_aware, check_text

__all__ = ["TOKEN_ROLES", "TokenRecord", "TokensMixin", "DuplicateToken", "tokens_of"]

#: Roles, weakest first: a role may do what every role before it may do.
TOKEN_ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
_HEX = frozenset("0123456789abcdef")


class DuplicateToken(InvalidArgument):
    """A token of that name exists already (names are unique, revoked ones included)."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One token as stored: never the token itself, only its hash (kept out of the repr)."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used: datetime | None
    token_sha256: str = ""

    def __repr__(self) -> str:
        return (f"TokenRecord(id={self.id}, name={self.name!r}, role={self.role!r}, "
                f"revoked={self.revoked_at is not None})")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        def iso(v: datetime | None) -> str | None:
            return v.isoformat().replace("+00:00", "Z") if v is not None else None

        return {"id": self.id, "name": self.name, "role": self.role, "created_at": iso(self.created_at),
                "revoked_at": iso(self.revoked_at), "last_used": iso(self.last_used)}


def _record(row: Any) -> TokenRecord:
    return TokenRecord(id=row.id, name=row.name, role=row.role, created_at=row.created_at,
                       revoked_at=row.revoked_at, last_used=row.last_used, token_sha256=row.token_sha256)


def _check_hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise InvalidArgument("token_sha256 must be 64 lower-case hex digits")
    return value


def _check_name(value: object) -> str:
    name = check_text("name", value, empty=False)
    if len(name) > 100 or not name.isprintable() or name != name.strip():
        raise InvalidArgument("a token name is 1-100 printable characters without surrounding spaces")
    return name


class TokensMixin:
    """Token methods of the Store. Every method raises StoreError (InvalidArgument for bad
    arguments, DuplicateToken for a name in use)."""

    _read: Any
    _write: Any

    def create_token(self, name: str, role: str, token_sha256: str, created_at: datetime) -> TokenRecord:
        """Store a new token's hash under a unique ``name`` with ``role``."""
        name = _check_name(name)
        if role not in TOKEN_ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(TOKEN_ROLES)}, got {role!r}")
        digest = _check_hash(token_sha256)
        check_aware("created_at", created_at)
        c = t.api_tokens.c
        with self._write("create an API token") as conn:
            if conn.execute(sa.select(c.id).where(c.name == name)).first() is not None:
                raise DuplicateToken(f"a token named {name!r} exists already")
            new_id = conn.execute(sa.insert(t.api_tokens).values(
                name=name, role=role, token_sha256=digest, created_at=created_at)).inserted_primary_key[0]
        return TokenRecord(id=new_id, name=name, role=role, created_at=created_at, revoked_at=None,
                           last_used=None, token_sha256=digest)

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenRecord]:
        """Every token, oldest first."""
        c = t.api_tokens.c
        query = sa.select(t.api_tokens).order_by(c.id)
        if not include_revoked:
            query = query.where(c.revoked_at.is_(None))
        with self._read("list API tokens") as conn:
            return [_record(r) for r in conn.execute(query)]

    def token_by_hash(self, token_sha256: str) -> TokenRecord | None:
        """The token whose hash this is (revoked or not), or None."""
        digest = _check_hash(token_sha256)
        with self._read("look up an API token") as conn:
            row = conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.token_sha256 == digest)).first()
        return _record(row) if row is not None else None

    def revoke_token(self, name: str, revoked_at: datetime) -> bool:
        """Revoke the active token ``name``; False when there is none of that name (or it
        was revoked already)."""
        name = _check_name(name)
        check_aware("revoked_at", revoked_at)
        c = t.api_tokens.c
        with self._write("revoke an API token") as conn:
            result = conn.execute(sa.update(t.api_tokens).where(c.name == name, c.revoked_at.is_(None))
                                  .values(revoked_at=revoked_at))
        return bool(result.rowcount)

    def touch_token(self, token_id: int, used_at: datetime) -> None:
        """Record when a token was last used (best effort bookkeeping)."""
        check_aware("used_at", used_at)
        with self._write("record an API token's use") as conn:
            conn.execute(sa.update(t.api_tokens).where(t.api_tokens.c.id == int(token_id))
                         .values(last_used=used_at))


def tokens_of(store: Any) -> TokensMixin:
    """The token methods of ``store``: the Store itself (it mixes them in), or the Store a
    wrapper such as ``SecretStore`` holds. Raises InvalidArgument for anything else."""
    for candidate in (store, getattr(store, "_store", None)):
        if isinstance(candidate, TokensMixin):
            return candidate
    raise InvalidArgument(f"{type(store).__name__} keeps no API tokens")
