"""RFC 7617 Basic: encoding, decoding, verification and the TLS rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.httpauth.basic import (
    BasicVerifier,
    basic_allowed,
    basic_authorization,
    basic_challenge,
    credentials_match,
    parse_basic,
)
from acs_security.httpauth.headers import AuthHeaderError
from acs_security.httpauth.result import AuthFailure


def test_rfc7617_examples() -> None:
    # RFC 7617 section 2 and section 2.1 (UTF-8: "test" / "123£").
    assert basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert basic_authorization("test", "123\u00a3") == "Basic dGVzdDoxMjPCow=="
    user, password = parse_basic("basic dGVzdDoxMjPCow==")
    assert (user, password) == ("test", "123\u00a3")


def test_latin1_fallback_and_colon_in_password() -> None:
    creds = parse_basic("Basic dGVzdDoxMjOj")  # "test:123\xa3" in ISO-8859-1
    assert creds.password == "123\u00a3"
    assert parse_basic(basic_authorization("u", "a:b:c")).password == "a:b:c"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic", "single base64 token"),
        ('Basic realm="x"', "single base64 token"),
        ("Basic abc", "not valid base64"),
        ("Basic !!!!", "expected '='"),
        ("Basic dXNlcg==", "lack the ':'"),  # "user"
        ("Basic dQF4OnA=", "control characters"),  # "u\x01x:p"
        ('Digest username="u"', "expected Basic"),
    ],
)
def test_malformed_basic(header: str, message: str) -> None:
    with pytest.raises(AuthHeaderError, match=message):
        parse_basic(header)


def test_building_refuses_colon_in_user_control_characters_and_surrogates() -> None:
    with pytest.raises(ValueError, match="not encodable") as info:
        basic_authorization("a", "pw\ud800")
    assert "ud800" not in str(info.value)
    with pytest.raises(ValueError, match="cannot contain ':'"):
        basic_authorization("a:b", "pw")
    with pytest.raises(ValueError, match="control") as info:
        basic_authorization("a", "pw\n-secret")
    assert "secret" not in str(info.value)


def test_verifier_results() -> None:
    verifier = BasicVerifier("acs-security")
    assert verifier.challenge() == 'Basic realm="acs-security", charset="UTF-8"'
    users = {"cpe": "open sesame"}
    ok = verifier.verify(basic_authorization("cpe", "open sesame"), users.get)
    assert ok.ok and ok.username == "cpe" and ok.algorithm == "Basic"
    bad = verifier.verify(basic_authorization("cpe", "nope"), users.get)
    assert bad.reason is AuthFailure.BAD_PASSWORD and bad.username == "cpe"
    unknown = verifier.verify(basic_authorization("who", "x"), users.get)
    assert unknown.reason is AuthFailure.UNKNOWN_USER
    assert verifier.verify(None, users.get).reason is AuthFailure.MISSING
    assert verifier.verify("Basic %%%", users.get).reason is AuthFailure.MALFORMED
    assert verifier.verify('Digest a="b"', users.get).reason is AuthFailure.WRONG_SCHEME


def test_basic_only_over_tls_unless_allowed() -> None:
    assert basic_allowed(is_tls=True)
    assert not basic_allowed(is_tls=False)
    assert basic_allowed(is_tls=False, allow_insecure_basic=True)


def test_credentials_match() -> None:
    assert credentials_match("u", "p", "u", "p")
    assert not credentials_match("u", "p", "u", "q")
    assert not credentials_match("v", "p", "u", "p")


def test_password_never_in_repr_str_or_errors() -> None:
    creds = parse_basic(basic_authorization("cpe", "hunter2"))
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)
    with pytest.raises(AuthHeaderError) as info:
        parse_basic("Basic aHVudGVyMg")  # bad padding; base64 of "hunter2"
    assert "hunter2" not in str(info.value) and "aHVudGVyMg" not in str(info.value)
    result = BasicVerifier("r").verify(basic_authorization("cpe", "hunter2"), {"cpe": "other"}.get)
    assert "hunter2" not in repr(result)
    assert basic_challenge('a "quoted" realm') == 'Basic realm="a \\"quoted\\" realm", charset="UTF-8"'


_safe_text = st.text(
    st.characters(min_codepoint=0x20, blacklist_characters="\x7f", blacklist_categories=["Cs"]), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(_safe_text.filter(lambda s: ":" not in s), _safe_text)
def test_round_trip(user: str, password: str) -> None:
    assert tuple(parse_basic(basic_authorization(user, password))) == (user, password)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_arbitrary_headers_never_raise_from_the_verifier(header: str) -> None:
    result = BasicVerifier("r").verify(header, {"u": "p"}.get)
    assert not result.ok or header.lower().startswith("basic")
