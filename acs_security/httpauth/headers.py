"""Parsing and writing of the HTTP authentication header grammar (RFC 7235 section 2.1).

``WWW-Authenticate`` carries one or more challenges, ``Authorization`` exactly one set of
credentials; both share one grammar::

    challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param  = token BWS "=" BWS ( token / quoted-string )
    token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="

Commas separate both parameters and challenges, so after a comma a ``token`` followed by
``=`` continues the current challenge while a ``token`` followed by a space and no ``=``
starts the next one. Quoted strings may hold commas and backslash escapes (RFC 7230
section 3.2.6). Every refusal is an :class:`AuthHeaderError` that names the offset and
the kind of problem but never quotes the header: an ``Authorization`` header can carry a
password (Basic) and must not end up in a log line through an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_HEADER_LENGTH",
    "AuthHeaderError",
    "AuthParams",
    "parse_authorization",
    "parse_challenges",
    "quote_string",
    "render_params",
]

# Far above any real challenge or credentials (a SHA-256 digest answer is ~400 chars),
# low enough that a hostile header costs little to refuse.
MAX_HEADER_LENGTH = 8192
# No real challenge has more parameters than this (RFC 7616 defines 11).
_MAX_PARAMS = 32
_MAX_NAME_IN_MESSAGE = 32

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WS = " \t"


class AuthHeaderError(ValueError):
    """An authentication header that does not follow RFC 7235/7616/7617.

    The answer to the peer is 400 Bad Request (or a fresh 401 challenge); the message says
    where and what, never the header's content.
    """


@dataclass(frozen=True, slots=True)
class AuthParams:
    """One challenge or one set of credentials.

    ``scheme`` is lower-cased (schemes are case-insensitive, RFC 7235 section 2.1);
    parameter names are lower-cased too, values are kept as sent (quotes and escapes
    removed). ``token68`` is set instead of ``params`` for the token68 form (Basic).
    ``repr`` shows the parameter names only, never their values.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def get(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.params:
            if key == wanted:
                return value
        return None

    def names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.params)

    def __repr__(self) -> str:
        # Values can be secrets (a Basic token68 holds the password): show names only.
        shown = "token68" if self.token68 is not None else ",".join(self.names())
        return f"AuthParams(scheme={self.scheme!r}, [{shown}])"

    __str__ = __repr__


class _Cursor:
    """A position in the header being parsed; all reads are bounds-checked."""

    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def skip_commas(self) -> None:
        # RFC 7230 section 7: recipients accept empty list elements ("a, , b").
        while True:
            self.skip_ws()
            if self.peek() != ",":
                return
            self.pos += 1

    def read_set(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start:self.pos]

    def error(self, what: str) -> AuthHeaderError:
        return AuthHeaderError(f"{what} at offset {self.pos}")

    def read_quoted(self) -> str:
        """A quoted-string starting at the current DQUOTE, unescaped."""
        self.pos += 1  # opening DQUOTE
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.error("unterminated quoted string")
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                if self.pos + 1 >= len(self.text):
                    raise self.error("backslash at end of quoted string")
                escaped = self.text[self.pos + 1]
                if _is_ctl(escaped) and escaped != "\t":
                    raise self.error("control character in quoted string")
                out.append(escaped)
                self.pos += 2
                continue
            if _is_ctl(ch) and ch != "\t":
                raise self.error("control character in quoted string")
            out.append(ch)
            self.pos += 1


def _is_ctl(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or code == 0x7F


def _short(name: str) -> str:
    return name[:_MAX_NAME_IN_MESSAGE]


def _parse_list(header: str) -> list[AuthParams]:
    if not isinstance(header, str):
        raise AuthHeaderError("authentication header is not text")
    if len(header) > MAX_HEADER_LENGTH:
        raise AuthHeaderError(f"authentication header longer than {MAX_HEADER_LENGTH} characters")
    cur = _Cursor(header)
    result: list[AuthParams] = []
    cur.skip_commas()
    while not cur.at_end():
        scheme = cur.read_set(_TCHAR)
        if not scheme:
            raise cur.error("expected an authentication scheme")
        if cur.peek() == "=":
            raise cur.error("parameter without an authentication scheme")
        if not cur.at_end() and cur.peek() not in _WS + ",":
            raise cur.error("invalid character after authentication scheme")
        cur.skip_ws()
        params: list[tuple[str, str]] = []
        token68: str | None = None
        seen: set[str] = set()
        if not cur.at_end() and cur.peek() != ",":
            # token68 or the first auth-param: a token68 is followed by the end or a comma.
            mark = cur.pos
            candidate = cur.read_set(_TOKEN68)
            while cur.peek() == "=":
                cur.pos += 1
                candidate += "="
            cur.skip_ws()
            if candidate and (cur.at_end() or cur.peek() == ","):
                token68 = candidate
            else:
                cur.pos = mark
                # One or more auth-params, until a token that is not followed by "=".
                while True:
                    name_start = cur.pos
                    name = cur.read_set(_TCHAR)
                    if not name:
                        raise cur.error("expected a parameter name")
                    cur.skip_ws()
                    if cur.peek() != "=":
                        if params:
                            # "token SP ..." after a comma: the next challenge begins here.
                            cur.pos = name_start
                            break
                        raise cur.error("expected '=' after parameter name")
                    cur.pos += 1
                    cur.skip_ws()
                    if cur.peek() == '"':
                        value = cur.read_quoted()
                    else:
                        value = cur.read_set(_TCHAR)
                        if not value:
                            raise cur.error(f"empty value for parameter {_short(name)!r}")
                    key = name.lower()
                    if key in seen:
                        # RFC 7235 section 2.1: each parameter name occurs once per challenge.
                        raise cur.error(f"duplicate parameter {_short(key)!r}")
                    seen.add(key)
                    params.append((key, value))
                    if len(params) > _MAX_PARAMS:
                        raise cur.error(f"more than {_MAX_PARAMS} parameters")
                    cur.skip_ws()
                    if cur.at_end():
                        break
                    if cur.peek() != ",":
                        raise cur.error("expected ',' between parameters")
                    cur.skip_commas()
                    if cur.at_end():
                        break
        result.append(AuthParams(scheme.lower(), tuple(params), token68))
        cur.skip_ws()
        if not cur.at_end():
            if cur.peek() == ",":
                cur.skip_commas()
            elif not params:
                raise cur.error("expected ',' between challenges")
    return result


def parse_challenges(header: str | list[str] | tuple[str, ...]) -> list[AuthParams]:
    """Parse ``WWW-Authenticate`` value(s) into challenges, in the order sent.

    Several header lines may be given as a list: they are one comma-separated list
    (RFC 7230 section 3.2.2).

    Raises:
        AuthHeaderError: the value is empty, too long or not in the RFC 7235 grammar.
    """
    values = [header] if isinstance(header, str) else list(header)
    challenges: list[AuthParams] = []
    for value in values:
        challenges.extend(_parse_list(value))
    if not challenges:
        raise AuthHeaderError("no challenge in WWW-Authenticate")
    return challenges


def parse_authorization(header: str) -> AuthParams:
    """Parse an ``Authorization`` value: exactly one scheme with its credentials.

    Raises:
        AuthHeaderError: empty, too long, several credentials, or not in the grammar.
    """
    parsed = _parse_list(header)
    if not parsed:
        raise AuthHeaderError("empty Authorization header")
    if len(parsed) != 1:
        raise AuthHeaderError("Authorization header holds more than one set of credentials")
    return parsed[0]


def quote_string(value: str) -> str:
    """``value`` as an RFC 7230 quoted-string (backslash before ``"`` and ``\\``).

    Raises:
        ValueError: ``value`` holds a control character, which no quoted-string can carry.
    """
    if any(_is_ctl(ch) and ch != "\t" for ch in value):
        raise ValueError("control character cannot be sent in a quoted string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_params(scheme: str, params: list[tuple[str, str, bool]]) -> str:
    """``scheme name=value, ...``; each entry is (name, value, quoted).

    Raises:
        ValueError: a value holds a control character, or an unquoted value is not a token.
    """
    parts: list[str] = []
    for name, value, quoted in params:
        if quoted:
            parts.append(f"{name}={quote_string(value)}")
        else:
            if not value or any(ch not in _TCHAR for ch in value):
                raise ValueError(f"parameter {name!r} must be a token when sent unquoted")
            parts.append(f"{name}={value}")
    return f"{scheme} " + ", ".join(parts)
