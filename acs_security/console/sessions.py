"""Console sign-in, sessions and sign-out over the store.

Sign-in exchanges an API token for a session: the token is looked up in the store directly,
not through the API's short-lived token cache (server/auth.py), so a token revoked a moment
ago cannot sign in. Every console request then reads its session row joined with its token
(store/console.py): a sign-out, on any node, or a revocation, by the API or by
``acs-security tokens revoke``, ends the session at the next request on every node. The
decision itself is the pure :func:`session_verdict`.

The store is a DeferredStore-like object (``call(method, *args)``), ``clock.seconds()`` is
now, ``random_bytes(32)`` makes secrets.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from acs_security.console.security import csrf_token, new_secret, secret_hash, well_formed_secret
from acs_security.server.auth import Unauthorized, hash_token

__all__ = ["ConsoleSessions", "ConsoleUser", "session_verdict", "TOUCH_EVERY"]

#: A session's last request is written at most this often (seconds): the idle expiry is
#: minutes long, and a page that polls must not make a write per poll.
TOUCH_EVERY = 60.0
_MAX_TOKEN = 200


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Who is signed in: the token's name and role, the session's CSRF token and expiry."""

    name: str
    role: str
    token_id: int
    csrf: str
    expires_at: datetime


def session_verdict(record: Any, now: datetime, *, idle_timeout: float) -> str:
    """``ok``, or why the session cannot be used: ``missing``, ``revoked`` (its token),
    ``expired`` (past its absolute expiry) or ``idle`` (no request for ``idle_timeout``)."""
    if record is None:
        return "missing"
    if record.token_revoked_at is not None:
        return "revoked"
    if now >= record.expires_at:
        return "expired"
    if now - record.last_seen >= timedelta(seconds=idle_timeout):
        return "idle"
    return "ok"


class ConsoleSessions:
    """Sign-in, per-request session checks and sign-out. ``max_age``: a session's lifetime
    from sign-in (seconds); ``idle_timeout``: how long it may go without a request."""

    def __init__(self, store: Any, clock: Any, random_bytes: Callable[[int], bytes], *,
                 max_age: float, idle_timeout: float) -> None:
        self._store = store
        self._clock = clock
        self.random = random_bytes
        self.max_age = max_age
        self.idle_timeout = idle_timeout

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    async def sign_in(self, token: str) -> tuple[str, ConsoleUser]:
        """A new session for an API token: (cookie secret, user). Raises Unauthorized for a
        token that is malformed, unknown or revoked (the message never holds the token)."""
        token = token.strip()
        if not token or len(token) > _MAX_TOKEN or not token.isascii() or not token.isprintable() or " " in token:
            raise Unauthorized("that is not an API token")
        digest = hash_token(token)
        record = await self._store.call("token_by_hash", digest)
        if record is None or not hmac.compare_digest(record.token_sha256, digest):
            raise Unauthorized("the token is not valid")
        if record.revoked_at is not None:
            raise Unauthorized("the token has been revoked")
        secret = new_secret(self.random(32))
        now = self._now()
        expires = now + timedelta(seconds=self.max_age)
        await self._store.call("create_console_session", secret_hash(secret), record.id, now, expires)
        return secret, ConsoleUser(record.name, record.role, record.id, csrf_token(secret), expires)

    async def check(self, secret: str | None) -> tuple[ConsoleUser | None, str]:
        """(the user, "ok") for a live session's cookie secret, else (None, why): see
        :func:`session_verdict`; ``missing`` also for no or a malformed cookie."""
        if not well_formed_secret(secret):
            return None, "missing"
        assert secret is not None
        digest = secret_hash(secret)
        record = await self._store.call("console_session", digest)
        now = self._now()
        verdict = session_verdict(record, now, idle_timeout=self.idle_timeout)
        if verdict != "ok":
            if verdict in ("expired", "idle", "revoked"):
                await self._store.call("end_console_session", digest)
            return None, verdict
        if (now - record.last_seen).total_seconds() >= TOUCH_EVERY:
            await self._store.call("touch_console_session", digest, now)
        return ConsoleUser(record.token_name, record.role, record.token_id, csrf_token(secret),
                           record.expires_at), "ok"

    async def sign_out(self, secret: str | None) -> bool:
        """End the session of this cookie secret; False when there was none."""
        if not well_formed_secret(secret):
            return False
        assert secret is not None
        return bool(await self._store.call("end_console_session", secret_hash(secret)))
