"""Bearer tokens and roles of the northbound interfaces (REST, SOAP, /metrics).

Pure logic, no I/O: the token lookup is a coroutine function passed in (the store, in a
thread pool), time comes from a ``clock`` with ``seconds()``. Roles, weakest first:

- ``viewer``: reads (devices, jobs, reports, catalogue, lint, cfg.xml export, metrics);
- ``operator``: also pushes (submit, cancel, resume jobs);
- ``admin``: also manages tokens and credentials.

Credentials are ``Authorization: Bearer <token>`` or, for SOAP clients that only do HTTP
basic authentication, ``Authorization: Basic`` with the token's name as the user name and
the token as the password (RFC 7617; use it over TLS only, like any password).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from acs_security.service import ServiceError
from acs_security.store.tokens import TOKEN_ROLES, TokenRecord

__all__ = [
    "ROLES",
    "Principal",
    "Unauthorized",
    "Forbidden",
    "TokenAuthenticator",
    "hash_token",
    "new_token",
    "role_allows",
    "parse_authorization",
    "REALM",
    "TokenAdmin",
]

ROLES = TOKEN_ROLES
REALM = "acs-security"
#: Longest Authorization header looked at; a token is 43 characters.
_MAX_HEADER = 1024


class Unauthorized(ServiceError):
    """401: no credentials, or credentials that name no active token. Answer with
    ``WWW-Authenticate: Bearer`` (RFC 6750 section 3). The message never holds the token."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, "unauthorized", detail)


class Forbidden(ServiceError):
    """403: a valid token whose role may not do this (RFC 9110 section 15.5.4)."""

    def __init__(self, role: str, needed: str) -> None:
        super().__init__(403, "forbidden", f"this needs the {needed} role; the token has the {role} role")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name, role and row id."""

    name: str
    role: str
    token_id: int


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a token: what the store keeps. A fast hash is right for 256-bit
    random tokens (there is nothing to guess from); passwords would need a slow one."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(random_bytes: bytes) -> str:
    """A token from 32 random bytes (the caller's ``os.urandom(32)``): ``acs_`` and the
    bytes in URL-safe base64 without padding. The prefix keeps a token from starting with
    "-" (base64url's alphabet has it; ``--token -abc`` is then an option to a command-line
    parser, one token in 64) and lets secret scanners recognise a leaked one. Raises
    ValueError for fewer than 32 bytes."""
    if len(random_bytes) < 32:
        raise ValueError("a token needs at least 32 random bytes")
    return "acs_" + base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")


def role_allows(role: str, needed: str) -> bool:
    """True when ``role`` may do what ``needed`` may (admin > operator > viewer).
    Raises ValueError for an unknown role name."""
    if role not in ROLES or needed not in ROLES:
        raise ValueError(f"roles are {', '.join(ROLES)}")
    return ROLES.index(role) >= ROLES.index(needed)


def parse_authorization(header: bytes | str | None) -> tuple[str | None, str]:
    """``(name or None, token)`` from an Authorization header: Bearer gives no name,
    Basic gives the user name. Raises Unauthorized for a missing or malformed header
    (the message names the problem, never the value)."""
    if header is None or header == b"" or header == "":
        raise Unauthorized("this needs an API token: send Authorization: Bearer <token>")
    if isinstance(header, bytes):
        if len(header) > _MAX_HEADER:
            raise Unauthorized("the Authorization header is too long")
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthorized("the Authorization header is not ASCII") from None
    if len(header) > _MAX_HEADER:
        raise Unauthorized("the Authorization header is too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value and " " not in value:
        return None, value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        name, sep, token = decoded.partition(":")
        if not sep or not token:
            raise Unauthorized("Basic credentials need the token name as user and the token as password")
        return name, token
    raise Unauthorized("unsupported Authorization scheme: use Bearer <token> (or Basic name:token)")


Lookup = Callable[[str], Awaitable[TokenRecord | None]]


class TokenAuthenticator:
    """Checks credentials against the stored token hashes, caching answers briefly.

    ``lookup(sha256_hex)`` returns the stored record or None; ``clock.seconds()`` is now.
    Positive and negative answers are cached for ``cache_seconds`` (default 5 s): the API
    is low-rate, and this bounds the delay after a revocation made by another process
    (``acs-security tokens revoke``); a revocation through this process's API takes effect
    at once (:meth:`forget`). ``touch(token_id, when)`` records last use, at most once a
    minute per token.
    """

    def __init__(self, lookup: Lookup, clock: Any, *, cache_seconds: float = 5.0,
                 touch: Callable[[int, datetime], Any] | None = None, max_cache: int = 1000) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl = cache_seconds
        self._touch = touch
        self._max_cache = max_cache
        self._cache: dict[str, tuple[float, TokenRecord | None]] = {}
        self._touched: dict[int, float] = {}

    def forget(self) -> None:
        """Drop every cached answer (after a revocation or creation here)."""
        self._cache.clear()

    async def authenticate(self, header: bytes | str | None) -> Principal:
        """The caller named by the Authorization header. Raises Unauthorized."""
        name, token = parse_authorization(header)
        digest = hash_token(token)
        now = self._clock.seconds()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            record = await self._lookup(digest)
            if len(self._cache) >= self._max_cache:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, record)
        # The lookup went by the hash's index; compare again in constant time so that
        # the decision itself does not depend on how many characters matched.
        if record is None or not hmac.compare_digest(record.token_sha256, digest):
            raise Unauthorized("the token is not valid")
        if record.revoked_at is not None:
            raise Unauthorized("the token has been revoked")
        if name is not None and not hmac.compare_digest(name.encode(), record.name.encode()):
            raise Unauthorized("the token is not valid")
        if self._touch is not None and self._touched.get(record.id, -1e18) + 60 <= now:
            self._touched[record.id] = now
            self._touch(record.id, datetime.fromtimestamp(now, UTC))
        return Principal(record.name, record.role, record.id)

    async def require(self, header: bytes | str | None, needed: str) -> Principal:
        """Authenticate, then check the role. Raises Unauthorized or Forbidden."""
        principal = await self.authenticate(header)
        if not role_allows(principal.role, needed):
            raise Forbidden(principal.role, needed)
        return principal


class TokenAdmin:
    """Token management for the admin role (REST ``/api/v1/tokens``, SOAP): create, list,
    revoke. ``store_call(method, *args)`` runs a token-store method (TokensMixin) off the
    reactor thread; ``random_bytes(32)`` makes tokens; ``clock.seconds()`` is now."""

    def __init__(self, store_call: Callable[..., Awaitable[Any]], clock: Any,
                 random_bytes: Callable[[int], bytes], authenticator: TokenAuthenticator) -> None:
        self._call = store_call
        self._clock = clock
        self._random = random_bytes
        self._auth = authenticator

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    async def create(self, name: Any, role: Any) -> dict[str, Any]:
        """A new token: the record as JSON plus ``token``, shown this once. Raises
        ServiceError(400) for a bad name or role, 409 for a name in use."""
        from acs_security.store.errors import InvalidArgument
        from acs_security.store.tokens import DuplicateToken

        if not isinstance(name, str) or not isinstance(role, str):
            raise ServiceError(400, "invalid token", "give name and role as strings")
        if role not in ROLES:
            raise ServiceError(400, "invalid role", f"role must be one of {', '.join(ROLES)}")
        token = new_token(self._random(32))
        try:
            record = await self._call("create_token", name, role, hash_token(token), self._now())
        except DuplicateToken as exc:
            raise ServiceError(409, "token exists", str(exc)) from None
        except InvalidArgument as exc:
            raise ServiceError(400, "invalid token", str(exc)) from None
        self._auth.forget()
        return {**record.to_json(), "token": token}

    async def list(self) -> list[dict[str, Any]]:
        """Every token (never the token or its hash)."""
        return [r.to_json() for r in await self._call("list_tokens")]

    async def revoke(self, name: str) -> dict[str, Any]:
        """Revoke ``name`` now (this process forgets its cache at once). Raises
        ServiceError(404) when no active token has that name."""
        from acs_security.store.errors import InvalidArgument

        try:
            found = await self._call("revoke_token", name, self._now())
        except InvalidArgument as exc:
            raise ServiceError(400, "invalid token name", str(exc)) from None
        self._auth.forget()
        if not found:
            raise ServiceError(404, "no such token", f"no active token named {name!r}")
        return {"name": name, "revoked": True}
