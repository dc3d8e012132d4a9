"""The web console's browser security, pure: session secrets, CSRF tokens, cookies, the
response headers (Content-Security-Policy and the others) and the origin check.

- A session is a 256-bit random secret in an HttpOnly, SameSite=Strict cookie (``Secure`` and
  the ``__Host-`` prefix over TLS, RFC 6265bis section 4.1.3.2), whose SHA-256 the store keeps.
- CSRF: every state-changing form carries ``HMAC-SHA256(secret, "csrf")``. A page of another
  site cannot read the cookie (HttpOnly, and the same-origin policy), so it cannot compute the
  token; SameSite=Strict keeps the cookie off cross-site requests in the first place, and the
  Origin / Sec-Fetch-Site check refuses them a third time (OWASP CSRF Prevention Cheat Sheet:
  signed double-submit token plus origin verification). The sign-in form, before any session,
  is bound the same way to a short-lived ``acs_signin`` cookie (login CSRF).
- Content-Security-Policy: only the ACS's own scripts, styles and images, no inline script or
  style (CSP Level 3), no framing (clickjacking), no form posted elsewhere, no <base>.

No I/O, no clock: times and random bytes come in as arguments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

__all__ = [
    "CSP",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "SESSION_COOKIE_TLS",
    "SIGNIN_COOKIE",
    "clear_cookie",
    "cookie_name",
    "csrf_ok",
    "csrf_token",
    "new_secret",
    "origin_ok",
    "secret_hash",
    "set_cookie",
    "well_formed_secret",
]

SESSION_COOKIE = "acs_console"
#: Over TLS: the __Host- prefix makes the browser refuse the cookie unless it is Secure, has
#: Path=/ and no Domain, so no sibling host can plant or shadow it.
SESSION_COOKIE_TLS = "__Host-acs_console"
SIGNIN_COOKIE = "acs_signin"
SIGNIN_COOKIE_TLS = "__Host-acs_signin"

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))

#: Sent with every console response (pages, fragments, files, errors).
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)

_SECRET_BYTES = 32
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_secret(random_bytes: bytes) -> str:
    """A session (or sign-in) secret from 32 random bytes: URL-safe base64, 43 characters.
    Raises ValueError for fewer bytes."""
    if len(random_bytes) < _SECRET_BYTES:
        raise ValueError("a console secret needs 32 random bytes")
    return base64.urlsafe_b64encode(random_bytes[:_SECRET_BYTES]).rstrip(b"=").decode("ascii")


def well_formed_secret(value: str | None) -> bool:
    """Whether a cookie value can be one of our secrets (checked before any hashing or store
    read, so a hostile cookie costs nothing)."""
    return value is not None and len(value) == 43 and set(value) <= _B64URL


def secret_hash(secret: str) -> str:
    """SHA-256 (hex) of a secret: what the store keeps."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token of the session (or sign-in) whose secret this is."""
    mac = hmac.new(secret.encode("ascii"), b"acs-console csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_ok(secret: str | None, submitted: str | None) -> bool:
    """Whether ``submitted`` is the CSRF token of ``secret`` (constant-time comparison)."""
    if not well_formed_secret(secret) or not submitted or len(submitted) > 100:
        return False
    assert secret is not None
    return hmac.compare_digest(csrf_token(secret).encode("ascii"), submitted.encode("ascii", "replace"))


def cookie_name(kind: str, *, secure: bool) -> str:
    """The cookie's name: ``session`` or ``signin``, with the __Host- prefix over TLS."""
    if kind == "session":
        return SESSION_COOKIE_TLS if secure else SESSION_COOKIE
    if kind == "signin":
        return SIGNIN_COOKIE_TLS if secure else SIGNIN_COOKIE
    raise ValueError(f"unknown cookie kind {kind!r}")


def set_cookie(name: str, value: str, *, secure: bool, max_age: int) -> str:
    """A Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no cross-site
    request carries it), Path=/, an expiry (Max-Age), Secure over TLS."""
    if not well_formed_secret(value):
        raise ValueError("a console cookie holds a console secret")
    parts = [f"{name}={value}", "Path=/", f"Max-Age={int(max_age)}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(name: str, *, secure: bool) -> str:
    """A Set-Cookie value that deletes the cookie (sign-out)."""
    parts = [f"{name}=", "Path=/", "Max-Age=0", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def origin_ok(*, origin: str | None, fetch_site: str | None, host: str | None, secure: bool) -> bool:
    """Whether a state-changing request comes from the console's own pages.

    ``Sec-Fetch-Site`` (Fetch Metadata, sent by current Chromium and Firefox) must be
    ``same-origin`` when present; ``Origin`` (RFC 6454; browsers send it with every POST)
    must name this host and scheme when present. A request with neither (a script, curl) is
    left to the CSRF token, which it must then hold."""
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return False
    if origin is None:
        return True
    origin = origin.strip()
    if origin == "null" or host is None:
        return False
    parts = urlsplit(origin)
    if parts.scheme != ("https" if secure else "http") or parts.path not in ("", "/"):
        return False
    return parts.netloc.lower() == host.strip().lower()
