"""Digest nonce counts in the store, seen by every node (a mixin of :class:`Store`).

RFC 7616 section 3.4 has the client count its uses of a server nonce in ``nc`` and the
server refuse a count it has already accepted: that is what stops a captured
``Authorization`` header from being replayed. Each node keeps such a record in memory
(httpauth/nonces.py), but with several nodes behind a load balancer a header captured on
one node could be replayed once on another. So an accepted use is also recorded here, in
the row of its nonce, by ONE statement whose outcome decides:
``INSERT .. ON CONFLICT (nonce) DO UPDATE SET nc = <new> WHERE <stored nc> < <new>
RETURNING``. A row comes back when the use is the first of that count (the insert, or an
update to a higher count), none when a node already accepted that count or a higher one.
It is atomic on both backends for the same reason as the device session lease
(store/leases.py): PostgreSQL locks the conflicting row until the transaction ends, and
SQLite runs one write transaction at a time.

Bounded: a row is worth keeping only while its nonce can still be answered (the verifier
refuses an expired nonce as stale before it gets here), so rows whose ``expires_at``
passed are purged (``purge_digest_nonces``, run by the server at most once a minute).
At most one row per nonce issued to an authenticated phone within a nonce lifetime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import check_aware, check_text

__all__ = ["MAX_NONCE_COUNT", "NoncesMixin"]

#: RFC 7616 section 3.4: nc is 8 hexadecimal digits.
MAX_NONCE_COUNT = 0xFFFFFFFF
_MAX_NONCE_CHARS = 128  # NonceCodec.issued_at accepts no longer nonce


class NoncesMixin:
    """Digest nonce-count methods of the Store; uses the Store's ``_read``/``_write``/``_insert``
    plumbing. Every method raises InvalidArgument for bad arguments, StoreUnavailable/
    StoreError when the database fails."""

    _read: Any
    _write: Any
    _insert: Any

    def _nonce_statement(self) -> Any:
        """The use statement, built once per store: it runs on every digest session."""
        cached = getattr(self, "_nonce_stmt", None)
        if cached is None:
            c = t.digest_nonces.c
            insert = self._insert(t.digest_nonces).values(
                nonce=sa.bindparam("n_nonce"), nc=sa.bindparam("n_nc"),
                expires_at=sa.bindparam("n_until", type_=t.UTCDateTime))
            # In the DO UPDATE's WHERE the table's columns are the row already there.
            cached = self._nonce_stmt = insert.on_conflict_do_update(
                index_elements=[c.nonce], set_={"nc": insert.excluded.nc},
                where=c.nc < insert.excluded.nc,
            ).returning(c.nonce)
        return cached

    def use_digest_nonce(self, nonce: str, nc: int, expires_at: datetime) -> bool:
        """Record use ``nc`` of server nonce ``nonce`` (valid until ``expires_at``): True
        when no node accepted this count or a higher one before (the use is fresh), False
        for a replay."""
        check_text("nonce", nonce, empty=False)
        if len(nonce) > _MAX_NONCE_CHARS:
            raise InvalidArgument(f"nonce must be at most {_MAX_NONCE_CHARS} characters")
        if isinstance(nc, bool) or not isinstance(nc, int) or not 1 <= nc <= MAX_NONCE_COUNT:
            raise InvalidArgument(f"nc must be an integer from 1 to {MAX_NONCE_COUNT:#x}, got {nc!r}")
        check_aware("expires_at", expires_at)
        params = {"n_nonce": nonce, "n_nc": nc, "n_until": expires_at}
        with self._write("record a digest nonce use") as conn:
            return conn.execute(self._nonce_statement(), params).first() is not None

    def purge_digest_nonces(self, before: datetime) -> int:
        """Drop the nonce records that expired before ``before``; the number dropped."""
        check_aware("before", before)
        with self._write("purge expired digest nonces") as conn:
            result = conn.execute(sa.delete(t.digest_nonces).where(t.digest_nonces.c.expires_at < before))
        return int(result.rowcount)

    def digest_nonce_count(self) -> int:
        """How many nonce records the store holds (for operators and tests)."""
        with self._read("count digest nonces") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.digest_nonces)).scalar_one())
