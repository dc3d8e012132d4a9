"""The console's browser security, pure: secrets, CSRF tokens, cookie flags, headers, origins."""

from __future__ import annotations

import pytest

from acs_security.console import security as sec

SECRET = sec.new_secret(bytes(range(32)))


def test_a_secret_is_43_url_safe_characters_and_needs_32_bytes() -> None:
    assert len(SECRET) == 43 and sec.well_formed_secret(SECRET)
    assert sec.new_secret(bytes(range(32))) == SECRET  # no randomness of its own
    with pytest.raises(ValueError):
        sec.new_secret(b"short")
    for bad in (None, "", SECRET[:-1], SECRET + "A", SECRET[:-1] + "=", SECRET[:-1] + ";", "é" * 43):
        assert not sec.well_formed_secret(bad)


def test_the_csrf_token_is_bound_to_the_session_secret() -> None:
    token = sec.csrf_token(SECRET)
    assert sec.csrf_ok(SECRET, token)
    other = sec.new_secret(bytes(range(1, 33)))
    assert not sec.csrf_ok(other, token)  # another session's token
    assert not sec.csrf_ok(SECRET, sec.csrf_token(other))
    assert not sec.csrf_ok(SECRET, "")
    assert not sec.csrf_ok(SECRET, None)
    assert not sec.csrf_ok(None, token)
    assert not sec.csrf_ok(SECRET, token[:-1])
    assert not sec.csrf_ok(SECRET, token + "x" * 100)
    assert not sec.csrf_ok(SECRET, "ü" * len(token))
    assert token != SECRET and SECRET not in token  # the page never shows the cookie's secret


def test_session_cookie_flags_over_plain_http_and_tls() -> None:
    plain = sec.set_cookie(sec.cookie_name("session", secure=False), SECRET, secure=False, max_age=3600)
    parts = plain.split("; ")
    assert parts[0] == f"acs_console={SECRET}"
    assert {"Path=/", "Max-Age=3600", "HttpOnly", "SameSite=Strict"} <= set(parts)
    assert "Secure" not in parts and not any(p.startswith("Domain") for p in parts)
    tls = sec.set_cookie(sec.cookie_name("session", secure=True), SECRET, secure=True, max_age=60).split("; ")
    assert tls[0].startswith("__Host-acs_console=") and "Secure" in tls and "Path=/" in tls
    gone = sec.clear_cookie("acs_console", secure=False).split("; ")
    assert gone[0] == "acs_console=" and "Max-Age=0" in gone and "HttpOnly" in gone
    with pytest.raises(ValueError):
        sec.set_cookie("acs_console", "x; Domain=evil.example", secure=False, max_age=1)
    assert sec.cookie_name("signin", secure=True) == "__Host-acs_signin"


def test_the_content_security_policy_allows_no_inline_code_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in sec.CSP.split("; "))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "img-src", "connect-src", "form-action"):
        assert directives[name] == "'self'", name
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe-inline" not in sec.CSP and "unsafe-eval" not in sec.CSP and "data:" not in sec.CSP
    headers = dict(sec.SECURITY_HEADERS)
    assert headers["Content-Security-Policy"] == sec.CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(("origin", "site", "host", "secure", "ok"), [
    ("http://127.0.0.1:7557", "same-origin", "127.0.0.1:7557", False, True),
    (None, None, "127.0.0.1:7557", False, True),  # no browser headers: the CSRF token decides
    (None, "same-origin", "acs:7557", False, True),
    ("http://evil.example", "cross-site", "127.0.0.1:7557", False, False),
    ("http://evil.example", None, "127.0.0.1:7557", False, False),
    (None, "same-site", "127.0.0.1:7557", False, False),  # a sibling host
    (None, "cross-site", "127.0.0.1:7557", False, False),
    ("null", None, "127.0.0.1:7557", False, False),  # sandboxed frames, data: URLs
    ("http://127.0.0.1:7557", None, "127.0.0.1:7557", True, False),  # scheme differs
    ("https://acs.example.net", "same-origin", "ACS.example.net", True, True),
    ("https://acs.example.net.evil.example", None, "acs.example.net", True, False),
    ("http://127.0.0.1:7557", None, None, False, False),
])
def test_origin_check(origin: str | None, site: str | None, host: str | None, secure: bool, ok: bool) -> None:
    assert sec.origin_ok(origin=origin, fetch_site=site, host=host, secure=secure) is ok
