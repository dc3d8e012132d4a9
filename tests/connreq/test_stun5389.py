"""RFC 5389 STUN: the RFC 5769 test vectors, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and
FINGERPRINT, and RFC 3489 clients still answered as before."""

from __future__ import annotations

import pytest

from acs_security.connreq.stun import (
    ATTR_FINGERPRINT,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_SOFTWARE,
    ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS,
    BINDING_REQUEST,
    BINDING_RESPONSE,
    MAGIC_COOKIE,
    StunAttribute,
    StunError,
    StunMessage,
    binding_request,
    binding_response,
    decode_message,
    encode_message,
    encode_xor_address,
    new_transaction_id,
    verify_integrity,
)

# RFC 5769 section 2: short-term password and the three sample messages.
PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
SAMPLE_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"  # SOFTWARE "STUN test client"
    "002400046e0001ff"  # PRIORITY
    "80290008932ff9b151263b36"  # ICE-CONTROLLED
    "000600096576746a3a68367659202020"  # USERNAME "evtj:h6vY", padded with spaces
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"  # MESSAGE-INTEGRITY
    "80280004e57a3bcf"  # FINGERPRINT
)
SAMPLE_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"  # SOFTWARE "test vector" + 1 byte padding
    "002000080001a147e112a643"  # XOR-MAPPED-ADDRESS 192.0.2.1:32853
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
SAMPLE_IPV6_RESPONSE = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"  # 2001:db8:1234:5678:11:2233:4455:6677
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c"
)
TID = bytes.fromhex("2112a442b7e7a701bc34d686fa87dfae")


def test_sample_request_decodes_and_verifies() -> None:
    assert len(SAMPLE_REQUEST) == 20 + 0x58
    message = decode_message(SAMPLE_REQUEST)
    assert message.message_type == BINDING_REQUEST and message.rfc5389
    assert message.transaction_id == TID
    assert message.username == "evtj:h6vY"
    assert message.get(ATTR_SOFTWARE) == b"STUN test client"
    assert message.has_integrity
    assert verify_integrity(message, PASSWORD)
    assert not verify_integrity(message, b"another password")


def test_sample_ipv4_response() -> None:
    message = decode_message(SAMPLE_IPV4_RESPONSE)
    assert message.message_type == BINDING_RESPONSE
    assert message.xor_mapped_address == ("192.0.2.1", 32853)
    assert message.reflexive_address == ("192.0.2.1", 32853)
    assert verify_integrity(message, PASSWORD)


def test_sample_ipv6_response() -> None:
    message = decode_message(SAMPLE_IPV6_RESPONSE)
    assert message.xor_mapped_address == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert verify_integrity(message, PASSWORD)


@pytest.mark.parametrize("sample", [SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE])
def test_encoder_reproduces_the_samples(sample: bytes) -> None:
    """Rebuilt from its attributes before MESSAGE-INTEGRITY, with the samples' padding
    byte (a space, RFC 5769 section 2), each sample comes out byte for byte: the HMAC and
    the CRC are computed as RFC 5389 sections 15.4 and 15.5 say."""
    decoded = decode_message(sample)
    kept = tuple(a for a in decoded.attributes if a.type not in (ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT))
    rebuilt = encode_message(StunMessage(decoded.message_type, decoded.transaction_id, kept),
                             integrity_key=PASSWORD, fingerprint=True, pad=b" ")
    assert rebuilt == sample


def test_fingerprint_mismatch_is_refused() -> None:
    damaged = bytearray(SAMPLE_REQUEST)
    damaged[-1] ^= 0x01
    with pytest.raises(StunError, match="FINGERPRINT"):
        decode_message(bytes(damaged))


def test_tampered_request_fails_integrity() -> None:
    decoded = decode_message(SAMPLE_REQUEST)
    kept = tuple(a for a in decoded.attributes if a.type not in (ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT))
    raw = bytearray(encode_message(StunMessage(BINDING_REQUEST, TID, kept), integrity_key=PASSWORD))
    assert verify_integrity(decode_message(bytes(raw)), PASSWORD)
    raw[30] ^= 0x01  # inside SOFTWARE; no FINGERPRINT to notice it first
    assert not verify_integrity(decode_message(bytes(raw)), PASSWORD)


def test_xor_address_round_trip_and_cookie() -> None:
    tid = new_transaction_id(bytes(range(12)))
    assert int.from_bytes(tid[:4], "big") == MAGIC_COOKIE
    for host, port in (("203.0.113.9", 61234), ("2001:db8::42", 3478)):
        value = encode_xor_address(host, port, tid)
        message = StunMessage(BINDING_RESPONSE, tid, (StunAttribute(ATTR_XOR_MAPPED_ADDRESS, value),))
        assert decode_message(encode_message(message)).xor_mapped_address == (host, port)
    with pytest.raises(ValueError):
        new_transaction_id(b"short")


def test_response_to_rfc5389_request_has_xor_and_plain_mapped_address() -> None:
    tid = new_transaction_id(b"\x01" * 12)
    response = decode_message(encode_message(binding_response(tid, ("198.51.100.7", 40001))))
    assert response.xor_mapped_address == ("198.51.100.7", 40001)
    assert response.mapped_address == ("198.51.100.7", 40001)


def test_rfc3489_request_gets_classic_response() -> None:
    tid = bytes(range(16))  # no cookie: an RFC 3489 client
    request = decode_message(encode_message(binding_request(tid, username="cpe")))
    assert not request.rfc5389
    response = decode_message(encode_message(binding_response(tid, ("198.51.100.7", 40001),
                                                              source=("192.0.2.1", 3478))))
    assert response.xor_mapped_address is None
    assert response.mapped_address == ("198.51.100.7", 40001)


def test_tr111_request_with_integrity_round_trips() -> None:
    tid = new_transaction_id(b"\x02" * 12)
    raw = encode_message(binding_request(tid, username="cr-SIM0001", binding_change=True),
                         integrity_key=b"secret", fingerprint=True)
    message = decode_message(raw)
    assert message.username == "cr-SIM0001" and message.binding_change
    assert message.connection_request_binding
    assert verify_integrity(message, b"secret")
    assert not verify_integrity(message, b"Secret")
    assert message.get(ATTR_USERNAME) == b"cr-SIM0001"


def test_integrity_twice_is_refused() -> None:
    tid = new_transaction_id(b"\x03" * 12)
    already = StunMessage(BINDING_REQUEST, tid, (StunAttribute(ATTR_MESSAGE_INTEGRITY, b"\x00" * 20),))
    with pytest.raises(ValueError, match="already"):
        encode_message(already, integrity_key=b"k")


def test_message_built_here_has_no_integrity_to_verify() -> None:
    assert not verify_integrity(binding_request(TID, username="x"), b"k")
