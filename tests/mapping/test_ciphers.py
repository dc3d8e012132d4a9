"""TLS Cipher List: seed examples, the phone's keyword table, expansion, and a hypothesis
property over the grammar (never a crash: a parse or a CipherListError)."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs_security.mapping import ValidationError, expand_cipher_list, load_catalogue, validate_value
from acs_security.mapping.ciphers import CipherListError, expand_cipher_string, local_suite_names, parse_cipher_list

FACTS = load_catalogue().ciphers


def test_seed_example_expands_to_rsa_suites_without_null() -> None:
    expansion = expand_cipher_list("RSA:!aNULL:!eNULL")  # seed 000 "Configure the Cipher List"
    assert expansion.suites and all("NULL" not in s for s in expansion.suites)
    assert "AES128-GCM-SHA256" in expansion.suites
    assert not any(s.startswith(("ECDHE", "DHE")) for s in expansion.suites)
    assert expansion.weak == ()
    assert all(s.startswith("TLS_") for s in expansion.tls13_suites)
    assert expansion.openssl_version == ssl.OPENSSL_VERSION


def test_seed_table_6_keywords_are_all_accepted() -> None:
    assert len(FACTS.keywords) == 53
    for keyword in FACTS.keywords:
        assert parse_cipher_list(keyword, FACTS)[0].parts == (keyword,)
        assert parse_cipher_list("!" + keyword, FACTS)[0].operator == "!"


def test_xmpp_default_and_seed_default_suite_names() -> None:
    xmpp = next(d for d in FACTS.defaults if d.application == "xmpp")
    assert xmpp.cipher_string is not None
    validate_value("TLS_Cipher_List", xmpp.cipher_string)
    curl = next(d for d in FACTS.defaults if d.application == "curl")
    assert len(curl.seed_names) == 28 and len(curl.suites) == 27  # less the renegotiation SCSV
    assert set(curl.suites) <= local_suite_names()
    assert set(curl.suites) <= set(expand_cipher_list("DEFAULT").suites)
    validate_value("TLS_Cipher_List", ":".join(curl.suites[:15]))
    with pytest.raises(ValidationError, match="at most 521"):  # all 27 names: 607 characters
        validate_value("TLS_Cipher_List", ":".join(curl.suites))


@pytest.mark.parametrize(
    "value",
    ["HIGH:!aNULL:!MD5", "ECDHE+AESGCM:@STRENGTH", "ECDHE-RSA-AES128-GCM-SHA256", "DEFAULT:-RSA:+SHA",
     "HIGH,MEDIUM", "HIGH MEDIUM", "@SECLEVEL=1:HIGH", "kECDHE+aRSA+AES256:kRSA", ""],
)
def test_valid_cipher_lists(value: str) -> None:
    validate_value("TLS_Cipher_List", value)


@pytest.mark.parametrize(
    "value, rule",
    [
        ("high", "case-sensitive"),
        ("RSA:FOO", "unknown cipher keyword"),
        ("LOW", "does not support"),
        ("PSK", "does not support"),
        ("TLS_AES_128_GCM_SHA256", "TLS 1.3 suite"),
        ("ECDHE_RSA_WITH_AES_128_GCM_SHA256", "OpenSSL name is 'ECDHE-RSA-AES128-GCM-SHA256'"),
        ("!aNULL:!eNULL", "no element adds suites"),
        ("RSA+", "'+' must join"),
        ("!-RSA", "one operator per element"),
        ("@STRENGH", "@STRENGTH and @SECLEVEL"),
        ("@SECLEVEL=9", "@STRENGTH and @SECLEVEL"),
        ("AES128-SHA+RSA", "cannot be joined"),
        ("eNULL:!eNULL", "selects no cipher suite"),
        ("SEED", "SEED exist in the phone's OpenSSL"),
        ("RSA:" + "HIGH:" * 104, "at most 521"),
        ("HIGH\u00e9", "not allowed"),
    ],
)
def test_invalid_cipher_lists(value: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_value("TLS_Cipher_List", value)
    assert rule in info.value.rule
    assert info.value.element == "TLS_Cipher_List"
    assert info.value.path == "Device.X_CISCO_SecuritySettings.TLSCipherList"
    if "at most 521" not in rule:
        assert "DEFAULT, COMPLEMENTOFDEFAULT" in info.value.allowed


def test_exactly_521_characters_is_the_limit() -> None:
    value = "HIGH" + ":" * 517  # empty elements between separators are skipped, as OpenSSL does
    assert len(value) == 521
    validate_value("TLS_Cipher_List", value)
    with pytest.raises(ValidationError, match="at most 521"):
        validate_value("TLS_Cipher_List", value + ":")


def test_blank_list_explains_the_per_application_defaults() -> None:
    with pytest.raises(ValidationError) as info:
        expand_cipher_list("")
    assert "HIGH:MEDIUM:AES:@STRENGTH" in info.value.allowed and "DES-CBC3-SHA" in info.value.allowed


KEYWORD = st.sampled_from(list(FACTS.keywords))
SUITE = st.sampled_from(sorted(local_suite_names()))
ELEMENT = st.one_of(
    st.tuples(st.sampled_from(["", "!", "-", "+"]), st.lists(KEYWORD, min_size=1, max_size=3))
    .map(lambda t: t[0] + "+".join(t[1])),
    st.tuples(st.sampled_from(["", "!", "-", "+"]), SUITE).map(lambda t: t[0] + t[1]),
    st.sampled_from(["@STRENGTH", "@SECLEVEL=0", "@SECLEVEL=2"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ELEMENT, min_size=1, max_size=8), st.sampled_from([":", ",", " "]))
def test_grammar_strings_always_parse(elements: list[str], separator: str) -> None:
    text = separator.join(elements)
    parsed = parse_cipher_list(text, FACTS)
    assert len(parsed) == len(elements)
    try:
        expansion = expand_cipher_string(text, FACTS)
    except CipherListError as exc:
        assert "selects no" in exc.rule
    else:
        assert expansion.suites


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("!-+@:, =.aAbDEHLNRSTUW0123456789\x00é")), max_size=60)
       | st.text(max_size=20))
def test_any_text_is_a_parse_or_an_error_never_a_crash(text: str) -> None:
    try:
        validate_value("TLS_Cipher_List", text)
    except ValidationError as exc:
        assert exc.rule and exc.element == "TLS_Cipher_List"
