"""HTTP Basic authentication (RFC 7617), both sides, without I/O.

Basic sends the password itself, so TR-069 section 3.4.4 allows it only inside TLS.
That rule stays with the caller (who knows the transport); :func:`basic_allowed` states
it in one place so every caller applies it the same way.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from acs_security.httpauth.headers import (
    AuthHeaderError,
    parse_authorization,
    quote_string,
)
from acs_security.httpauth.result import AuthFailure, AuthResult

__all__ = [
    "BasicCredentials",
    "BasicVerifier",
    "basic_allowed",
    "basic_authorization",
    "basic_challenge",
    "credentials_match",
    "parse_basic",
]


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """A decoded Basic user-pass. The password is left out of repr and str.

    Iterates as ``(username, password)`` so ``user, pw = parse_basic(h)`` works.
    """

    username: str
    password: str = field(repr=False)

    def __iter__(self) -> Iterator[str]:
        yield self.username
        yield self.password


def _has_ctl(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def parse_basic(authorization: str) -> BasicCredentials:
    """Decode ``Authorization: Basic <token68>``.

    The user-pass is read as UTF-8 (RFC 7617 section 2.1, ``charset="UTF-8"``), and as
    ISO-8859-1 when it is not valid UTF-8 (what older clients send).

    Raises:
        AuthHeaderError: not Basic, not base64, no ``:``, or control characters. The
            message never holds any part of the credentials.
    """
    params = parse_authorization(authorization)
    if params.scheme != "basic":
        raise AuthHeaderError(f"expected Basic credentials, got scheme {params.scheme[:16]!r}")
    if params.token68 is None:
        raise AuthHeaderError("Basic credentials must be a single base64 token")
    try:
        raw = base64.b64decode(params.token68, validate=True)
    except (binascii.Error, ValueError):
        raise AuthHeaderError("Basic credentials are not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    username, sep, password = text.partition(":")
    if not sep:
        raise AuthHeaderError("Basic credentials lack the ':' between user-id and password")
    # RFC 7617 section 2: neither part may hold control characters.
    if _has_ctl(username) or _has_ctl(password):
        raise AuthHeaderError("Basic credentials contain control characters")
    return BasicCredentials(username, password)


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value for ``username``/``password`` (UTF-8).

    Raises:
        ValueError: the username holds ``:`` or either part a control character
            (RFC 7617 section 2). The message names neither value.
    """
    if ":" in username:
        raise ValueError("a Basic user-id cannot contain ':'")
    if _has_ctl(username) or _has_ctl(password):
        raise ValueError("Basic credentials cannot contain control characters")
    try:
        raw = f"{username}:{password}".encode()
    except UnicodeEncodeError:
        # The codec's own message quotes the offending character: do not pass it on.
        raise ValueError("Basic credentials are not encodable as UTF-8") from None
    token = base64.b64encode(raw).decode("ascii")
    return f"Basic {token}"


def basic_challenge(realm: str) -> str:
    """``Basic realm="...", charset="UTF-8"`` (RFC 7617 section 2.1).

    Raises:
        ValueError: the realm holds a control character.
    """
    return f'Basic realm={quote_string(realm)}, charset="UTF-8"'


def credentials_match(
    username: str, password: str, expected_username: str, expected_password: str
) -> bool:
    """Constant-time comparison of both parts (no early exit on the username)."""
    # surrogatepass: comparing must never raise, whatever text the caller holds.
    user_ok = hmac.compare_digest(username.encode("utf-8", "surrogatepass"),
                                  expected_username.encode("utf-8", "surrogatepass"))
    pass_ok = hmac.compare_digest(password.encode("utf-8", "surrogatepass"),
                                  expected_password.encode("utf-8", "surrogatepass"))
    return user_ok and pass_ok


def basic_allowed(*, is_tls: bool, allow_insecure_basic: bool = False) -> bool:
    """Whether Basic may be offered/accepted on this connection.

    TR-069 section 3.4.4: basic authentication only over TLS; ``allow_insecure_basic``
    is the operator's explicit, logged exception for lab networks.
    """
    return is_tls or allow_insecure_basic


class BasicVerifier:
    """Checks Basic credentials against ``lookup(username) -> password | None``."""

    __slots__ = ("_realm",)

    def __init__(self, realm: str) -> None:
        """Raises:
        ValueError: the realm holds a control character.
        """
        quote_string(realm)
        self._realm = realm

    @property
    def realm(self) -> str:
        return self._realm

    def challenge(self) -> str:
        return basic_challenge(self._realm)

    def verify(self, authorization: str | None, lookup: Callable[[str], str | None]) -> AuthResult:
        """ok with the username, or the reason. Never raises for peer input."""
        if authorization is None or not authorization.strip():
            return AuthResult.failure(AuthFailure.MISSING, "no Authorization header")
        try:
            creds = parse_basic(authorization)
        except AuthHeaderError as exc:
            try:
                scheme = parse_authorization(authorization).scheme
            except AuthHeaderError:
                scheme = "basic"
            if scheme != "basic":
                return AuthResult.failure(AuthFailure.WRONG_SCHEME, f"scheme {scheme[:16]!r} is not Basic")
            return AuthResult.failure(AuthFailure.MALFORMED, str(exc))
        expected = lookup(creds.username)
        if expected is None:
            # Same comparison cost as a known user.
            credentials_match(creds.username, creds.password, creds.username, "\x00unknown")
            return AuthResult.failure(AuthFailure.UNKNOWN_USER, "unknown user", creds.username)
        if not credentials_match(creds.username, creds.password, creds.username, expected):
            return AuthResult.failure(AuthFailure.BAD_PASSWORD, "wrong password", creds.username)
        return AuthResult.success(creds.username, "Basic")
