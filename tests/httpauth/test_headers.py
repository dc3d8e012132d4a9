"""RFC 7235 header grammar: challenges, credentials, quoting, and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.httpauth.headers import (
    MAX_HEADER_LENGTH,
    AuthHeaderError,
    parse_authorization,
    parse_challenges,
    quote_string,
    render_params,
)


def test_several_challenges_in_one_header_with_commas_inside_quotes() -> None:
    header = (
        'Digest realm="a, b", qop="auth, auth-int", algorithm=SHA-256, nonce="n1", '
        'DIGEST Realm="c", NONCE="n2", algorithm=MD5, Basic realm="x"'
    )
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["digest", "digest", "basic"]
    assert challenges[0].get("realm") == "a, b"
    assert challenges[0].get("qop") == "auth, auth-int"
    assert challenges[0].get("algorithm") == "SHA-256"
    # Names are case-insensitive (RFC 7235 section 2.1): lookup and storage agree.
    assert challenges[1].get("realm") == "c" and challenges[1].get("NONCE") == "n2"
    assert challenges[2].get("realm") == "x"


def test_quoted_pair_escapes_are_removed() -> None:
    (c,) = parse_challenges(r'Digest realm="say \"hi\" \\ back", nonce="x"')
    assert c.get("realm") == 'say "hi" \\ back'


def test_token68_and_empty_list_elements_and_bare_scheme() -> None:
    challenges = parse_challenges(" , Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, , Negotiate ,Digest a=b,")
    assert [c.scheme for c in challenges] == ["basic", "negotiate", "digest"]
    assert challenges[0].token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert challenges[1].params == () and challenges[1].token68 is None
    assert challenges[2].get("a") == "b"


def test_list_of_header_lines_is_one_list() -> None:
    challenges = parse_challenges(['Digest realm="r", nonce="1"', 'Basic realm="r"'])
    assert [c.scheme for c in challenges] == ["digest", "basic"]


def test_whitespace_around_equals_is_accepted() -> None:
    creds = parse_authorization('Digest username = "u" ,realm= "r"')
    assert creds.get("username") == "u" and creds.get("realm") == "r"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "empty Authorization"),
        ('Digest realm="unterminated', "unterminated quoted string"),
        ('Digest realm="x\\', "backslash at end"),
        ('Digest realm="a\x01b"', "control character"),
        ('Digest realm="a", realm="b"', "duplicate parameter 'realm'"),
        ("Digest a=b, realm=", "empty value for parameter 'realm'"),
        ("Digest realm=, nonce=x", "parameter without an authentication scheme"),
        ('Digest realm="a" nonce="b"', "expected ','"),
        ('realm="a"', "parameter without an authentication scheme"),
        ("Digest a=b, =c", "expected a parameter name"),
        ("Basic abc def", "expected '='"),
        ("Dig(est a=b", "invalid character after authentication scheme"),
        ('Digest a="1", Basic x', "more than one set of credentials"),
        ("Digest " + ", ".join(f"p{i}=1" for i in range(40)), "more than 32 parameters"),
    ],
)
def test_malformed_authorization_is_refused_precisely(header: str, message: str) -> None:
    with pytest.raises(AuthHeaderError) as info:
        parse_authorization(header)
    assert message in str(info.value)


def test_overlong_header_is_refused() -> None:
    with pytest.raises(AuthHeaderError, match="longer than"):
        parse_challenges("Digest realm=" + "a" * MAX_HEADER_LENGTH)


def test_no_challenge_at_all() -> None:
    with pytest.raises(AuthHeaderError, match="no challenge"):
        parse_challenges(" , ")


def test_error_messages_and_repr_never_quote_values() -> None:
    secret = "s3cr3t-pa55"
    with pytest.raises(AuthHeaderError) as info:
        parse_authorization(f'Digest response="{secret}')
    assert secret not in str(info.value)
    parsed = parse_authorization(f'Digest username="u", response="{secret}"')
    assert secret not in repr(parsed) and secret not in str(parsed)
    assert "response" in repr(parsed)


def test_quote_string_and_render() -> None:
    assert quote_string('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError, match="control character"):
        quote_string("a\nb")
    assert render_params("Digest", [("realm", "r", True), ("algorithm", "MD5", False)]) == (
        'Digest realm="r", algorithm=MD5'
    )
    with pytest.raises(ValueError, match="must be a token"):
        render_params("Digest", [("algorithm", "MD 5", False)])


_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
    max_size=40,
)
_name = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_name, _value, min_size=1, max_size=8))
def test_render_then_parse_round_trips(params: dict[str, str]) -> None:
    header = render_params("Digest", [(k, v, True) for k, v in params.items()])
    parsed = parse_authorization(header)
    assert dict(parsed.params) == params


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_auth_header_error(text: str) -> None:
    for parse in (parse_challenges, parse_authorization):
        try:
            parse(text)
        except AuthHeaderError:
            pass


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(['Digest', 'Basic', ' ', ',', '=', '"', '\\', 'realm', 'a=b', '"x,y"', 'QQ==', '\t']),
        max_size=30,
    )
)
def test_grammar_shaped_noise_parses_or_raises_auth_header_error(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        parse_challenges(text)
    except AuthHeaderError:
        pass
