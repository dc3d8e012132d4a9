"""The outcome of checking one request's credentials (digest or basic)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from acs_security.httpauth.nonces import NonceUse

__all__ = ["AuthFailure", "AuthResult"]


class AuthFailure(enum.StrEnum):
    """Why credentials were refused. Logged and counted; the peer only sees 400/401."""

    MISSING = "missing"  # no Authorization header: the normal first request
    MALFORMED = "malformed"  # header not in the RFC 7235/7616/7617 grammar -> 400
    WRONG_SCHEME = "wrong_scheme"  # e.g. Basic where only Digest is accepted
    UNSUPPORTED = "unsupported"  # algorithm not offered, qop other than auth, userhash
    BAD_REALM = "bad_realm"
    BAD_URI = "bad_uri"  # RFC 7616 section 3.4.6: uri must name the request's target
    BAD_OPAQUE = "bad_opaque"  # RFC 7616 section 3.4: opaque is returned unchanged
    INVALID_NONCE = "invalid_nonce"  # not minted by this server (bad HMAC), or undecodable
    UNKNOWN_USER = "unknown_user"
    BAD_RESPONSE = "bad_response"  # wrong password (or a client bug in the hash inputs)
    BAD_PASSWORD = "bad_password"  # Basic: known user, wrong password
    STALE_NONCE = "stale_nonce"  # right answer to an expired nonce: re-challenge, stale=true
    REPLAYED_NONCE = "replayed_nonce"  # nonce-count already used (RFC 7616 section 3.4)


@dataclass(frozen=True, slots=True)
class AuthResult:
    """ok, or the reason for refusal. Holds no password, hash or response value.

    ``username`` is the name the client claimed (also on failure, for the log);
    ``detail`` is a human sentence safe to log. ``nonce_use``: on a digest success, the
    nonce-count this check accepted, for a record every node sees (nonces.py).
    """

    ok: bool
    username: str | None = None
    reason: AuthFailure | None = None
    detail: str = ""
    algorithm: str | None = None
    nonce_use: NonceUse | None = None

    @property
    def stale(self) -> bool:
        """True when the next challenge must carry ``stale=true`` (RFC 7616 section 3.3)."""
        return self.reason is AuthFailure.STALE_NONCE

    @property
    def http_status(self) -> int:
        """200 when ok, 400 for a malformed header, else 401 with a fresh challenge."""
        if self.ok:
            return 200
        return 400 if self.reason is AuthFailure.MALFORMED else 401

    @classmethod
    def success(cls, username: str, algorithm: str | None = None,
                nonce_use: NonceUse | None = None) -> AuthResult:
        return cls(ok=True, username=username, algorithm=algorithm, nonce_use=nonce_use)

    @classmethod
    def failure(
        cls, reason: AuthFailure, detail: str, username: str | None = None,
        algorithm: str | None = None,
    ) -> AuthResult:
        return cls(ok=False, username=username, reason=reason, detail=detail, algorithm=algorithm)
