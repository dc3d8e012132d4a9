"""RFC 7616 digest: the RFC's own example, both sides, and every refusal."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.httpauth.digest import (
    DigestVerifier,
    UnsupportedDigestError,
    compute_response,
    digest_authorization,
    parse_digest_credentials,
    select_digest_challenge,
)
from acs_security.httpauth.headers import AuthHeaderError, parse_authorization
from acs_security.httpauth.nonces import NonceUse
from acs_security.httpauth.result import AuthFailure, AuthResult

# RFC 7616 section 3.9.1.
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def rfc_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


def rfc_authorization(algorithm: str, response: str) -> str:
    # The RFC's header, unfolded onto one line.
    return (
        f'Digest username="Mufasa", realm="{RFC_REALM}", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}", '
        f'qop=auth, response="{response}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize(("algorithm", "response"), [("MD5", RFC_MD5), ("SHA-256", RFC_SHA256)])
def test_rfc7616_example_byte_for_byte(algorithm: str, response: str) -> None:
    header = digest_authorization(
        rfc_challenge(algorithm), "GET", "/dir/index.html", "Mufasa", "Circle of Life", RFC_CNONCE, 1
    )
    assert header == rfc_authorization(algorithm, response)
    assert compute_response(
        algorithm=algorithm, username="Mufasa", realm=RFC_REALM, password="Circle of Life",
        method="GET", uri="/dir/index.html", nonce=RFC_NONCE, nc="00000001",
        cnonce=RFC_CNONCE, qop="auth",
    ) == response


def test_rfc7616_example_header_parses_back() -> None:
    creds = parse_digest_credentials(rfc_authorization("SHA-256", RFC_SHA256))
    assert (creds.username, creds.realm, creds.uri, creds.algorithm) == (
        "Mufasa", RFC_REALM, "/dir/index.html", "SHA-256")
    assert (creds.nc, creds.cnonce, creds.qop, creds.opaque) == ("00000001", RFC_CNONCE, "auth", RFC_OPAQUE)
    assert creds.response == RFC_SHA256
    assert RFC_SHA256 not in repr(creds)


def test_client_picks_sha256_over_md5_whatever_the_order() -> None:
    both = rfc_challenge("MD5") + ", " + rfc_challenge("SHA-256")
    assert select_digest_challenge(both).algorithm == "SHA-256"
    assert "algorithm=SHA-256" in digest_authorization(
        [rfc_challenge("MD5"), rfc_challenge("SHA-256")], "GET", "/", "u", "p", "c", 1)
    # No algorithm parameter means MD5 (RFC 7616 section 3.3).
    assert select_digest_challenge('Digest realm="r", nonce="n", qop="auth"').algorithm == "MD5"


def test_client_refuses_auth_int_only_and_unknown_algorithms() -> None:
    with pytest.raises(UnsupportedDigestError, match="auth-int"):
        digest_authorization('Digest realm="r", nonce="n", qop="auth-int"', "GET", "/", "u", "p", "c", 1)
    with pytest.raises(UnsupportedDigestError, match="unsupported digest algorithm"):
        select_digest_challenge('Digest realm="r", nonce="n", algorithm=SHA-999')
    with pytest.raises(AuthHeaderError, match="no Digest challenge"):
        select_digest_challenge('Basic realm="r"')
    with pytest.raises(AuthHeaderError, match="without nonce"):
        select_digest_challenge('Digest realm="r"')


def test_client_rfc2069_challenge_without_qop() -> None:
    header = digest_authorization('Digest realm="r", nonce="n"', "GET", "/x", "u", "p", "c", 1)
    params = parse_authorization(header)
    assert params.get("qop") is None and params.get("nc") is None
    assert params.get("response") == compute_response(
        algorithm="MD5", username="u", realm="r", password="p", method="GET", uri="/x",
        nonce="n", nc=None, cnonce=None, qop=None)


def test_client_argument_errors_never_name_the_password() -> None:
    for nc in (0, 2**32):
        with pytest.raises(ValueError, match="nc must be") as info:
            digest_authorization(rfc_challenge("MD5"), "GET", "/", "u", "hunter2", "c", nc)
        assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="cnonce"):
        digest_authorization(rfc_challenge("MD5"), "GET", "/", "u", "hunter2", "", 1)


KEY = b"0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000.0
USERS = {"acs": "Circle of Life", "J\u00e4s\u00f8n Doe": "p\u00e4ss"}


def lookup(username: str) -> str | None:
    return USERS.get(username)


def make_verifier(**kwargs: object) -> DigestVerifier:
    return DigestVerifier("acs-security", KEY, **kwargs)  # type: ignore[arg-type]


def answer(challenges: list[str] | str, *, user: str = "acs", password: str = "Circle of Life",
           uri: str = "/cwmp", nc: int = 1, cnonce: str = "0a4f113b") -> str:
    return digest_authorization(challenges, "POST", uri, user, password, cnonce, nc)


def test_challenge_lists_sha256_first_with_one_nonce() -> None:
    values = make_verifier(algorithms=("MD5", "SHA-256")).challenge(NOW, b"\x01" * 16)
    assert len(values) == 2
    assert "algorithm=SHA-256" in values[0] and "algorithm=MD5" in values[1]
    nonces = {parse_authorization(v).get("nonce") for v in values}
    assert len(nonces) == 1
    first = parse_authorization(values[0])
    assert first.get("qop") == "auth" and first.get("realm") == "acs-security"
    assert first.get("charset") == "UTF-8" and first.get("stale") is None
    assert 'qop="auth"' in values[0]  # quoted in challenges (RFC 7616 section 3.3)
    stale = make_verifier().challenge(NOW, b"\x01" * 16, stale=True)
    assert all(v.endswith("stale=true") for v in stale)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_round_trip_each_algorithm(algorithm: str) -> None:
    verifier = make_verifier(algorithms=(algorithm,))
    header = answer(verifier.challenge(NOW, b"\x02" * 16))
    assert f"algorithm={algorithm}," in header
    result = verifier.verify("POST", "/cwmp", header, NOW + 1, lookup)
    nonce = parse_authorization(header).get("nonce")
    assert nonce is not None
    # The accepted use comes back for the record every node sees (store/nonces.py).
    use = NonceUse(nonce, 1, NOW + 300)
    assert result == AuthResult(ok=True, username="acs", algorithm=algorithm, nonce_use=use)
    assert result.http_status == 200


def test_sess_variant_is_accepted_for_a_configured_algorithm() -> None:
    verifier = make_verifier()
    nonce = parse_authorization(verifier.challenge(NOW, b"\x03" * 16)[0]).get("nonce")
    opaque = parse_authorization(verifier.challenge(NOW, b"\x03" * 16)[0]).get("opaque")
    sess = f'Digest realm="acs-security", nonce="{nonce}", opaque="{opaque}", qop="auth", algorithm=MD5-sess'
    result = verifier.verify("POST", "/cwmp", answer(sess), NOW, lookup)
    assert result.ok and result.algorithm == "MD5-sess"


def test_non_ascii_username_travels_as_username_star() -> None:
    verifier = make_verifier()
    header = answer(verifier.challenge(NOW, b"\x04" * 16), user="J\u00e4s\u00f8n Doe", password="p\u00e4ss")
    assert "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe" in header
    assert verifier.verify("POST", "/cwmp", header, NOW, lookup).username == "J\u00e4s\u00f8n Doe"


def failure(result: AuthResult) -> AuthFailure | None:
    assert not result.ok
    return result.reason


def test_wrong_password_and_unknown_user() -> None:
    verifier = make_verifier()
    ch = verifier.challenge(NOW, b"\x05" * 16)
    result = verifier.verify("POST", "/cwmp", answer(ch, password="wrong"), NOW, lookup)
    assert failure(result) is AuthFailure.BAD_RESPONSE and result.username == "acs"
    assert result.http_status == 401 and not result.stale
    result = verifier.verify("POST", "/cwmp", answer(ch, user="mallory"), NOW, lookup)
    assert failure(result) is AuthFailure.UNKNOWN_USER and result.username == "mallory"


def test_expired_nonce_with_right_answer_is_stale_and_wrong_answer_is_not() -> None:
    verifier = make_verifier(nonce_lifetime=300)
    ch = verifier.challenge(NOW, b"\x06" * 16)
    assert verifier.verify("POST", "/cwmp", answer(ch), NOW + 300, lookup).ok
    late = verifier.verify("POST", "/cwmp", answer(ch, nc=2), NOW + 301, lookup)
    assert failure(late) is AuthFailure.STALE_NONCE and late.stale and late.http_status == 401
    wrong = verifier.verify("POST", "/cwmp", answer(ch, nc=3, password="x"), NOW + 301, lookup)
    assert failure(wrong) is AuthFailure.BAD_RESPONSE and not wrong.stale


def test_replayed_nonce_count_is_refused_and_higher_count_accepted() -> None:
    verifier = make_verifier()
    ch = verifier.challenge(NOW, b"\x07" * 16)
    first = answer(ch, nc=1)
    assert verifier.verify("POST", "/cwmp", first, NOW, lookup).ok
    assert failure(verifier.verify("POST", "/cwmp", first, NOW, lookup)) is AuthFailure.REPLAYED_NONCE
    assert verifier.verify("POST", "/cwmp", answer(ch, nc=5, cnonce="b"), NOW, lookup).ok
    lower = answer(ch, nc=4, cnonce="c")
    assert failure(verifier.verify("POST", "/cwmp", lower, NOW, lookup)) is AuthFailure.REPLAYED_NONCE
    assert verifier.tracked_nonces == 1


def test_forged_and_foreign_nonces_are_invalid() -> None:
    verifier = make_verifier()
    ch = verifier.challenge(NOW, b"\x08" * 16)
    nonce = parse_authorization(ch[0]).get("nonce") or ""
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)))
    raw[3] ^= 0x01  # move the timestamp: the HMAC no longer matches
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    result = verifier.verify("POST", "/cwmp", answer([ch[0].replace(nonce, forged)]), NOW, lookup)
    assert failure(result) is AuthFailure.INVALID_NONCE
    other = DigestVerifier("acs-security", b"another key, 16+ bytes long",
                           opaque=parse_authorization(ch[0]).get("opaque"))
    result = other.verify("POST", "/cwmp", answer(ch), NOW, lookup)
    assert failure(result) is AuthFailure.INVALID_NONCE
    garbage = answer([ch[0].replace(nonce, "not-base64!")])
    assert failure(verifier.verify("POST", "/cwmp", garbage, NOW, lookup)) is AuthFailure.INVALID_NONCE


def test_uri_realm_opaque_algorithm_and_qop_checks() -> None:
    verifier = make_verifier(algorithms=("SHA-256",))
    ch = verifier.challenge(NOW, b"\x09" * 16)
    assert failure(verifier.verify("POST", "/other", answer(ch), NOW, lookup)) is AuthFailure.BAD_URI
    renamed = answer([ch[0].replace('realm="acs-security"', 'realm="elsewhere"')])
    assert failure(verifier.verify("POST", "/cwmp", renamed, NOW, lookup)) is AuthFailure.BAD_REALM
    opaque = parse_authorization(ch[0]).get("opaque") or ""
    altered = answer([ch[0].replace(opaque, "tampered")])
    assert failure(verifier.verify("POST", "/cwmp", altered, NOW, lookup)) is AuthFailure.BAD_OPAQUE
    md5 = answer([ch[0].replace("algorithm=SHA-256", "algorithm=MD5")])
    assert failure(verifier.verify("POST", "/cwmp", md5, NOW, lookup)) is AuthFailure.UNSUPPORTED
    auth_int = answer(ch).replace("qop=auth", "qop=auth-int")
    result = verifier.verify("POST", "/cwmp", auth_int, NOW, lookup)
    assert failure(result) is AuthFailure.UNSUPPORTED and "auth-int" in result.detail
    no_qop = answer([ch[0].replace('qop="auth", ', "")])
    assert failure(verifier.verify("POST", "/cwmp", no_qop, NOW, lookup)) is AuthFailure.UNSUPPORTED
    userhash = answer(ch).replace("Digest ", "Digest userhash=true, ")
    assert failure(verifier.verify("POST", "/cwmp", userhash, NOW, lookup)) is AuthFailure.UNSUPPORTED


@pytest.mark.parametrize(
    ("header", "reason", "detail"),
    [
        (None, AuthFailure.MISSING, "no Authorization"),
        ("  ", AuthFailure.MISSING, "no Authorization"),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", AuthFailure.WRONG_SCHEME, "'basic'"),
        ('Digest username="u', AuthFailure.MALFORMED, "unterminated"),
        ('Digest username="u", realm="r"', AuthFailure.MALFORMED, "lack nonce, uri, response"),
        ('Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth, nc=1, cnonce="c"',
         AuthFailure.MALFORMED, "nc must be 8 hexadecimal digits"),
        ('Digest username="u", username*=UTF-8\'\'u, realm="r", nonce="n", uri="/", response="x"',
         AuthFailure.MALFORMED, "both username and username*"),
    ],
)
def test_malformed_credentials(header: str | None, reason: AuthFailure, detail: str) -> None:
    result = make_verifier().verify("POST", "/", header, NOW, lookup)
    assert failure(result) is reason and detail in result.detail
    if reason is AuthFailure.MALFORMED:
        assert result.http_status == 400


def test_replay_memory_is_bounded_and_a_dropped_nonce_is_stale_not_replayable() -> None:
    verifier = make_verifier(max_tracked_nonces=2)
    challenges = [verifier.challenge(NOW + i, bytes([i]) * 16) for i in range(3)]
    headers = [answer(ch) for ch in challenges]
    for header in headers:
        assert verifier.verify("POST", "/cwmp", header, NOW + 3, lookup).ok
    assert verifier.tracked_nonces == 2
    # The first nonce was dropped while live: its replay is refused (stale), not accepted.
    result = verifier.verify("POST", "/cwmp", headers[0], NOW + 3, lookup)
    assert failure(result) is AuthFailure.STALE_NONCE
    # Still-tracked nonces keep their replay check.
    assert failure(verifier.verify("POST", "/cwmp", headers[2], NOW + 3, lookup)) is AuthFailure.REPLAYED_NONCE
    # Expired entries leave on their own.
    fresh = verifier.challenge(NOW + 1000, b"\x0f" * 16)
    assert verifier.verify("POST", "/cwmp", answer(fresh), NOW + 1000, lookup).ok
    assert verifier.tracked_nonces == 1


def test_constructor_refusals() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DigestVerifier("r", b"short")
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        DigestVerifier("r", KEY, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="at least one"):
        DigestVerifier("r", KEY, algorithms=())
    with pytest.raises(ValueError, match="positive"):
        DigestVerifier("r", KEY, nonce_lifetime=0)
    with pytest.raises(ValueError, match="8 to 32 bytes"):
        make_verifier().challenge(NOW, b"x")


def test_no_secret_in_any_repr_str_or_result() -> None:
    password = "Circle of Life"
    verifier = make_verifier()
    assert KEY.decode() not in repr(verifier)
    ch = verifier.challenge(NOW, b"\x0a" * 16)
    header = answer(ch)
    response = parse_authorization(header).get("response") or ""
    results = [
        verifier.verify("POST", "/cwmp", header, NOW, lookup),
        verifier.verify("POST", "/cwmp", header, NOW, lookup),
        verifier.verify("POST", "/cwmp", answer(ch, password="Circle of Lies"), NOW, lookup),
        verifier.verify("POST", "/x", header, NOW, lookup),
        verifier.verify("POST", "/cwmp", header + '"', NOW, lookup),
    ]
    for result in results:
        for text in (repr(result), str(result), result.detail):
            assert password not in text and response not in text and "Circle of Lies" not in text


_FUZZ_ALPHABET = st.sampled_from(list('Digest usernamerealmnonceuriresponseqopncnonce="\\,= \t/0aZ*\'%'))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.text(_FUZZ_ALPHABET, max_size=200))
def test_verify_never_raises_on_arbitrary_headers(header: str) -> None:
    result = make_verifier().verify("POST", "/cwmp", header, NOW, lookup)
    assert isinstance(result, AuthResult) and not result.ok


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255), st.booleans())
def test_verify_never_raises_on_mutated_valid_headers(position: int, byte: int, delete: bool) -> None:
    verifier = make_verifier()
    header = answer(verifier.challenge(NOW, b"\x0b" * 16))
    i = position % len(header)
    mutated = header[:i] + ("" if delete else chr(byte)) + header[i + 1:]
    result = verifier.verify("POST", "/cwmp", mutated, NOW, lookup)
    assert isinstance(result, AuthResult)
    if mutated != header:
        assert not result.ok or result.username == "acs"


def test_non_encodable_text_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError, match="not encodable") as info:
        compute_response(algorithm="MD5", username="u", realm="r", password="pw\ud800x", method="GET",
                         uri="/", nonce="n", nc="00000001", cnonce="c", qop="auth")
    assert "ud800" not in str(info.value)
    verifier = make_verifier()
    header = answer(verifier.challenge(NOW, b"\x0c" * 16))
    result = verifier.verify("POST", "/cwmp", header, NOW, {"acs": "bad\ud800"}.get)
    assert result.reason is AuthFailure.MALFORMED
