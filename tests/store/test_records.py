"""Pure tests of the records and the device id rule (no database)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_security.store import (
    Credential,
    InvalidArgument,
    StoreError,
    make_device_id,
    parse_device_id,
)
from tests.store.conftest import T0, inform


def test_device_id_escapes_everything_but_alphanumerics_and_underscore() -> None:
    # The hyphen is escaped so that it can separate the three parts.
    assert make_device_id("00562B", "CP-8841-3PCC", "FCH2219L0AB") == "00562B-CP%2D8841%2D3PCC-FCH2219L0AB"
    assert make_device_id("00562B", "Phone 8800", "A_b.1") == "00562B-Phone%208800-A_b%2E1"


def test_device_id_without_product_class_has_two_parts() -> None:
    # TR-069 3.4.4: ProductClass may be empty; OUI and SerialNumber still identify the device.
    assert make_device_id("00562B", "", "FCH1") == "00562B-FCH1"
    assert parse_device_id("00562B-FCH1") == ("00562B", "", "FCH1")


def test_device_id_escapes_utf8_bytes() -> None:
    assert make_device_id("00562B", "Téléphone", "1") == "00562B-T%C3%A9l%C3%A9phone-1"


@given(
    st.text(min_size=1, max_size=8),
    st.text(max_size=12),
    st.text(min_size=1, max_size=12),
)
def test_device_id_round_trips(oui: str, product_class: str, serial: str) -> None:
    try:
        device_id = make_device_id(oui, product_class, serial)
    except InvalidArgument:
        return  # lone surrogates cannot be UTF-8 encoded; nothing to round-trip
    assert parse_device_id(device_id) == (oui, product_class, serial)


@pytest.mark.parametrize("bad", ["", "00562B", "a-b-c-d", "00562B-CP-8841-X", "00562B-%2d-x", "00562B-%ZZ-1",
                                 "00562B-%FF-1"])
def test_parse_device_id_refuses_malformed_ids(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="not a device id"):
        parse_device_id(bad)


def test_make_device_id_refuses_empty_oui_or_serial() -> None:
    with pytest.raises(InvalidArgument, match="oui"):
        make_device_id("", "X", "1")
    with pytest.raises(InvalidArgument, match="serial_number"):
        make_device_id("00562B", "X", "")


def test_inform_record_refuses_an_id_that_does_not_match_its_device_id_struct() -> None:
    good = inform("FCH1")
    with pytest.raises(InvalidArgument, match="does not match"):
        replace(good, device_id="00562B-CP-8841-3PCC-FCH1")


def test_inform_record_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        inform("FCH1", at=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"events": ["2 PERIODIC"]}, "events must be a tuple"),
        ({"parameters": (("Device.X", "1"),)}, r"\(name, value, type\)"),
        ({"parameters": (("", "1", "xsd:int"),)}, "parameter name must not be empty"),
        ({"parameters": (("Device.X", "a\x00b", "xsd:string"),)}, "NUL"),
        ({"parameters": (("Device.X", "\ud800", "xsd:string"),)}, "surrogate"),
        ({"remote_address": 7}, "remote_address must be a string"),
        ({"bootstrap": 1}, "bootstrap must be a bool"),
    ],
)
def test_inform_record_refuses_malformed_fields(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        replace(inform("FCH1"), **change)


def test_invalid_argument_is_a_store_error_and_a_value_error() -> None:
    assert issubclass(InvalidArgument, StoreError)
    assert issubclass(InvalidArgument, ValueError)


def test_records_are_frozen() -> None:
    record = inform("FCH1")
    with pytest.raises(FrozenInstanceError):
        record.serial_number = "other"  # type: ignore[misc]


def test_credential_repr_and_str_hide_the_password() -> None:
    cred = Credential("*", "acs", "s3cr3t-Passw0rd", T0)
    assert "s3cr3t-Passw0rd" not in repr(cred)
    assert "s3cr3t-Passw0rd" not in str(cred)
    assert cred.password == "s3cr3t-Passw0rd"
    assert "acs" in repr(cred)


def test_inform_time_may_be_any_zone() -> None:
    from datetime import timedelta, timezone

    record = inform("FCH1", at=datetime(2025, 1, 1, 14, tzinfo=timezone(timedelta(hours=2))))
    assert record.inform_time.astimezone(UTC) == datetime(2025, 1, 1, 12, tzinfo=UTC)


def test_merge_informs_gives_one_entry_per_device_in_id_order() -> None:
    from datetime import timedelta

    from acs_security.store.batch import device_row, merge_informs

    a1 = inform("B", params=(("Device.X", "1", "xsd:int"),))
    b = inform("A")
    a2 = inform("B", at=T0 + timedelta(seconds=5), bootstrap=True, params=(("Device.Y", "2", "xsd:int"),))
    merged = merge_informs([a1, b, a2])
    assert [m.last.serial_number for m in merged] == ["A", "B"]
    assert merged[1].bootstrap and merged[1].params == {"Device.Y": ("2", "xsd:int", T0 + timedelta(seconds=5))}
    row = device_row(merged[1])
    assert (row["first_seen"], row["last_inform"]) == (T0, T0 + timedelta(seconds=5))
