"""Typed values: text <-> Python for every TR-069 type, and through a whole envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import MessageValidationError
from acs_security.cwmp.namespaces import CWMP_1_2
from acs_security.cwmp.soap import build_envelope, parse_envelope
from acs_security.cwmp.values import (
    format_value,
    infer_type,
    is_secret_name,
    parse_value,
    xsi_type_of,
)


@pytest.mark.parametrize(("type_name", "text", "value"), [
    ("int", "-2147483648", -2147483648),
    ("int", " +7 ", 7),
    ("int", "007", 7),
    ("unsignedInt", "4294967295", 4294967295),
    ("long", "-9223372036854775808", -(2**63)),
    ("unsignedLong", "18446744073709551615", 2**64 - 1),
    ("boolean", "1", True), ("boolean", "true", True),
    ("boolean", "0", False), ("boolean", " false\n", False),
    ("dateTime", "2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("dateTime", "2024-05-01T10:00:00.125-05:30",
     datetime(2024, 5, 1, 10, 0, 0, 125000, tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
    ("dateTime", "2024-05-01T10:00:00", datetime(2024, 5, 1, 10)),
    ("dateTime", "2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("dateTime", "0001-01-01T00:00:00Z", m.UNKNOWN_TIME),
    ("dateTime", "2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    # Valid xsd:dateTime that Python cannot hold: kept as text.
    ("dateTime", "2024-05-01T24:00:00Z", "2024-05-01T24:00:00Z"),
    ("dateTime", "12024-05-01T00:00:00Z", "12024-05-01T00:00:00Z"),
    ("dateTime", "-0044-03-15T12:00:00Z", "-0044-03-15T12:00:00Z"),
    ("dateTime", "2024-05-01T10:00:00.1234567Z", "2024-05-01T10:00:00.1234567Z"),
    ("base64", "aGVs\nbG8=", b"hello"),
    ("base64", "", b""),
    ("hexBinary", "DEADbeef", b"\xde\xad\xbe\xef"),
    ("string", " keep  spaces\n", " keep  spaces\n"),
])
def test_parse_value(type_name: str, text: str, value: object) -> None:
    assert parse_value(type_name, text) == value


@pytest.mark.parametrize(("type_name", "text"), [
    ("int", "abc"), ("int", "2147483648"), ("int", "1_000"), ("int", "١٢"), ("int", ""),
    ("int", "1.0"), ("unsignedInt", "-1"), ("unsignedLong", "18446744073709551616"),
    ("long", "9223372036854775808"),
    ("boolean", "yes"), ("boolean", "TRUE"), ("boolean", ""),
    ("dateTime", ""), ("dateTime", "2024-13-01T00:00:00Z"), ("dateTime", "2023-02-29T00:00:00Z"),
    ("dateTime", "2024-05-01 10:00:00"), ("dateTime", "2024-05-01T10:60:00Z"),
    ("dateTime", "2024-05-01T24:00:01Z"), ("dateTime", "0000-01-01T00:00:00Z"),
    ("dateTime", "2024-05-01T10:00:00+15:00"), ("dateTime", "20240501T100000Z"),
    ("base64", "abc"), ("base64", "a$==="), ("hexBinary", "ABC"), ("hexBinary", "GG"),
    ("hexBinary", "AB CD"),
])
def test_invalid_text_is_refused(type_name: str, text: str) -> None:
    with pytest.raises(MessageValidationError):
        parse_value(type_name, text)


@pytest.mark.parametrize(("type_name", "value", "text"), [
    ("boolean", True, "1"), ("boolean", False, "0"),
    ("dateTime", datetime(2024, 5, 1, 10, tzinfo=UTC), "2024-05-01T10:00:00Z"),
    ("dateTime", datetime(2024, 5, 1, 10, 0, 0, 500000), "2024-05-01T10:00:00.5"),
    ("dateTime", datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=-3))),
     "2024-05-01T10:00:00-03:00"),
    ("base64", b"hello", "aGVsbG8="), ("hexBinary", b"\x0a\xff", "0AFF"),
    ("unsignedLong", 2**64 - 1, "18446744073709551615"),
])
def test_format_value(type_name: str, value: object, text: str) -> None:
    assert format_value(type_name, value) == text


def test_xsi_types() -> None:
    assert xsi_type_of("base64") == "xsd:base64Binary"
    assert xsi_type_of("unsignedInt") == "xsd:unsignedInt"


@pytest.mark.parametrize(("value", "type_name"), [
    (True, "boolean"), (5, "int"), (-5, "int"), (2**31, "unsignedInt"), (2**32, "long"),
    (-(2**40), "long"), (2**63, "unsignedLong"), ("x", "string"), (b"x", "base64"),
    (datetime(2024, 1, 1), "dateTime"),
])
def test_infer_type(value: object, type_name: str) -> None:
    assert infer_type(value) == type_name
    assert m.ParameterValue.of("Device.X", value).type == type_name  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 1.5, None, ["x"]])
def test_infer_type_refuses(value: object) -> None:
    with pytest.raises(MessageValidationError):
        infer_type(value)


def _through_envelope(param: m.ParameterValue) -> m.ParameterValue:
    data = build_envelope(m.GetParameterValuesResponse((param,)), namespace=CWMP_1_2)
    envelope = parse_envelope(data)
    assert envelope is not None and isinstance(envelope.message, m.GetParameterValuesResponse)
    return envelope.message.parameters[0]


_XML_TEXT = st.text(st.characters(blacklist_categories=["Cs"],
                                  blacklist_characters="\x00\ufffe\uffff")
                    .filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20), max_size=80)


@settings(max_examples=150, deadline=None)
@given(_XML_TEXT)
def test_strings_round_trip(text: str) -> None:
    param = m.ParameterValue("Device.X", text, "string")
    assert _through_envelope(param) == param


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["int", "unsignedInt", "long", "unsignedLong"]), st.data())
def test_integers_round_trip(type_name: str, data: st.DataObject) -> None:
    low, high = {"int": (-(2**31), 2**31 - 1), "unsignedInt": (0, 2**32 - 1),
                 "long": (-(2**63), 2**63 - 1), "unsignedLong": (0, 2**64 - 1)}[type_name]
    value = data.draw(st.integers(low, high))
    param = m.ParameterValue("Device.X", value, type_name)
    assert _through_envelope(param) == param
    with pytest.raises(MessageValidationError):
        m.ParameterValue("Device.X", data.draw(st.sampled_from([low - 1, high + 1])), type_name)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["base64", "hexBinary"]))
def test_bytes_round_trip(value: bytes, type_name: str) -> None:
    param = m.ParameterValue("Device.X", value, type_name)
    assert _through_envelope(param) == param


@settings(max_examples=100, deadline=None)
@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=45)),
                                               timezone(-timedelta(hours=11))])))
def test_datetimes_round_trip(value: datetime) -> None:
    param = m.ParameterValue("Device.X", value, "dateTime")
    back = _through_envelope(param)
    assert back.value == value and back.value.utcoffset() == value.utcoffset()  # type: ignore


def test_text_xml_cannot_carry_is_refused_without_quoting_it() -> None:
    param = m.ParameterValue("Device.X.Password", "se\x01cret", "string")
    with pytest.raises(MessageValidationError) as info:
        build_envelope(m.SetParameterValues((param,)), namespace=CWMP_1_2)
    assert "U+0001" in str(info.value) and "cret" not in str(info.value)


def test_secret_names() -> None:
    assert is_secret_name("Device.ManagementServer.ConnectionRequestPassword")
    assert is_secret_name("Device.X_CISCO.VPN.PreSharedKey")
    assert is_secret_name("Device.WiFi.AccessPoint.1.Security.KeyPassphrase")
    assert not is_secret_name("Device.ManagementServer.ParameterKey")
    secret = m.ParameterValue("Device.ManagementServer.ConnectionRequestPassword", "hunter2",
                              "string")
    assert "hunter2" not in repr(secret) and "<hidden>" in repr(secret)
    plain = m.ParameterValue("Device.ManagementServer.URL", "https://acs", "string")
    assert "https://acs" in repr(plain)
