"""RFC 3489 STUN codec with the TR-111 attributes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.connreq.stun import (
    ATTR_BINDING_CHANGE,
    ATTR_CONNECTION_REQUEST_BINDING,
    ATTR_MAPPED_ADDRESS,
    ATTR_USERNAME,
    BINDING_REQUEST,
    BINDING_RESPONSE,
    MAX_MESSAGE,
    StunAttribute,
    StunError,
    StunMessage,
    binding_request,
    binding_response,
    decode_address,
    decode_message,
    encode_address,
    encode_message,
)

TID = bytes(range(16))


def test_tr111_binding_request_bytes() -> None:
    raw = encode_message(binding_request(TID, username="cpe1", binding_change=True))
    expected = (
        b"\x00\x01\x00\x24" + TID
        + b"\x00\x06\x00\x04cpe1"
        + b"\xc0\x01\x00\x14dslforum.org/TR-111 "
        + b"\xc0\x02\x00\x00"
    )
    assert raw == expected
    message = decode_message(raw)
    assert message.message_type == BINDING_REQUEST and message.transaction_id == TID
    assert message.username == "cpe1"
    assert message.connection_request_binding and message.binding_change


def test_plain_binding_request_has_no_tr111_flags() -> None:
    message = decode_message(encode_message(binding_request(TID, connection_request_binding=False)))
    assert message.attributes == ()
    assert not message.connection_request_binding and not message.binding_change
    assert message.username is None and message.mapped_address is None


def test_binding_response_mapped_address_ipv4_and_ipv6() -> None:
    raw = encode_message(binding_response(TID, ("198.51.100.7", 40001), source=("192.0.2.1", 3478),
                                          changed=("192.0.2.1", 3478)))
    assert raw[:2] == b"\x01\x01"
    # MAPPED-ADDRESS: type 1, length 8, pad, family 1, port, address (RFC 3489 section 11.2.1).
    assert raw[20:32] == b"\x00\x01\x00\x08\x00\x01" + struct.pack("!H", 40001) + bytes([198, 51, 100, 7])
    message = decode_message(raw)
    assert message.message_type == BINDING_RESPONSE
    assert message.mapped_address == ("198.51.100.7", 40001)
    assert [a.type for a in message.attributes] == [0x0001, 0x0004, 0x0005]
    v6 = decode_message(encode_message(binding_response(TID, ("2001:db8::7", 7547))))
    assert v6.mapped_address == ("2001:db8::7", 7547)


def test_odd_length_username_is_padded_and_read_back() -> None:
    raw = encode_message(binding_request(TID, username="abcde", connection_request_binding=False))
    assert raw[2:4] == b"\x00\x0c" and raw[20:32] == b"\x00\x06\x00\x05abcde\x00\x00\x00"
    assert decode_message(raw).username == "abcde"
    # RFC 3489 style: length field covers the padding.
    rfc3489 = b"\x00\x01\x00\x0c" + TID + b"\x00\x06\x00\x08abcde\x00\x00\x00"
    assert decode_message(rfc3489).username == "abcde"


def test_unknown_attributes_are_kept() -> None:
    message = StunMessage(BINDING_REQUEST, TID, (StunAttribute(0x8022, b"soft"), StunAttribute(0x0003, b"\0\0\0\0")))
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x01\x00\x00" + TID[:10], "truncated header: 14 of 20"),
        (b"\x00\x01\x00\x08" + TID + b"\x00\x06", "length field says 8"),
        (b"\x00\x01\x00\x02" + TID + b"\x00\x06", "truncated attribute header"),
        (b"\x00\x01\x00\x04" + TID + b"\x00\x06\x00\x08", "value truncated"),
        (b"\xc0\x01\x00\x00" + TID, "top two bits"),
        (b"\x00\x01" + struct.pack("!H", MAX_MESSAGE) + TID + b"\x00" * MAX_MESSAGE, "larger than"),
        (b"\x00\x01\x00\x84" + TID + b"\xc0\x02\x00\x00" * 33, "more than 32 attributes"),
    ],
)
def test_malformed_messages(raw: bytes, message: str) -> None:
    with pytest.raises(StunError, match=message):
        decode_message(raw)


def test_address_errors() -> None:
    with pytest.raises(StunError, match="shorter than 4"):
        decode_address(b"\x00\x01")
    with pytest.raises(StunError, match="must be 8 bytes"):
        decode_address(b"\x00\x01\x00\x01\x01\x02\x03")
    with pytest.raises(StunError, match="must be 20 bytes"):
        decode_address(b"\x00\x02\x00\x01" + b"\x00" * 4)
    with pytest.raises(StunError, match="unknown address family 9"):
        decode_address(b"\x00\x09\x00\x01\x01\x02\x03\x04")
    bad = StunMessage(BINDING_RESPONSE, TID, (StunAttribute(ATTR_MAPPED_ADDRESS, b"\x00"),))
    with pytest.raises(StunError):
        _ = bad.mapped_address
    with pytest.raises(ValueError):
        encode_address("cpe.example", 1)
    with pytest.raises(ValueError, match="port"):
        encode_address("192.0.2.1", 70000)


def test_encode_refusals() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        encode_message(StunMessage(BINDING_REQUEST, b"short"))
    with pytest.raises(ValueError, match="14 bits"):
        encode_message(StunMessage(0xC001, TID))
    with pytest.raises(ValueError, match="too long"):
        encode_message(StunMessage(BINDING_REQUEST, TID, (StunAttribute(ATTR_USERNAME, b"x" * 70000),)))


def test_crb_value_is_checked() -> None:
    wrong = StunMessage(BINDING_REQUEST, TID, (StunAttribute(ATTR_CONNECTION_REQUEST_BINDING, b"other"),))
    assert not wrong.connection_request_binding
    assert StunMessage(BINDING_REQUEST, TID, (StunAttribute(ATTR_BINDING_CHANGE, b""),)).binding_change


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decode_random_bytes_is_message_or_stun_error(raw: bytes) -> None:
    try:
        message = decode_message(raw)
    except StunError:
        return
    assert len(message.transaction_id) == 16


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=8),
)
def test_round_trip_with_aligned_values(tid: bytes, attrs: list[tuple[int, bytes]]) -> None:
    # Values whose length is a multiple of 4 decode exactly (padding is ambiguous otherwise).
    attributes = tuple(StunAttribute(t, v + b"\x01" * (-len(v) % 4)) for t, v in attrs)
    message = StunMessage(BINDING_REQUEST, tid, attributes)
    assert decode_message(encode_message(message)) == message
