"""StunServerProtocol against a fake datagram transport: no sockets."""

from __future__ import annotations

from twisted.internet.testing import FakeDatagramTransport

from acs_security.connreq.stun import (
    BINDING_RESPONSE,
    StunMessage,
    binding_request,
    decode_message,
    encode_message,
)
from acs_security.connreq.stun_server import StunBinding, StunServerProtocol

TID = b"T" * 16


def started(
    server_address: tuple[str, int] | None = None,
) -> tuple[StunServerProtocol, FakeDatagramTransport, list[StunBinding]]:
    seen: list[StunBinding] = []
    protocol = StunServerProtocol(seen.append, server_address=server_address)
    transport = FakeDatagramTransport()
    protocol.makeConnection(transport)
    return protocol, transport, seen


def test_binding_request_is_answered_with_the_source_address_and_reported() -> None:
    protocol, transport, seen = started(("192.0.2.1", 3478))
    request = encode_message(binding_request(TID, username="cpe-0001", binding_change=True))
    protocol.datagramReceived(request, ("198.51.100.7", 40001))
    assert len(transport.written) == 1
    raw, addr = transport.written[0]
    assert addr == ("198.51.100.7", 40001)
    response = decode_message(raw)
    assert response.message_type == BINDING_RESPONSE and response.transaction_id == TID
    assert response.mapped_address == ("198.51.100.7", 40001)
    assert [a.type for a in response.attributes] == [0x0001, 0x0004, 0x0005]
    assert seen == [StunBinding("cpe-0001", "198.51.100.7", 40001, True, True)]
    assert seen[0].address == "198.51.100.7:40001"


def test_ipv6_source() -> None:
    protocol, transport, seen = started()
    protocol.datagramReceived(encode_message(binding_request(TID)), ("2001:db8::9", 5000, 0, 0))
    assert decode_message(transport.written[0][0]).mapped_address == ("2001:db8::9", 5000)
    assert seen[0].address == "[2001:db8::9]:5000" and seen[0].username is None


def test_garbage_and_non_requests_are_dropped_silently() -> None:
    protocol, transport, seen = started()
    protocol.datagramReceived(b"\x00\x01\x00", ("198.51.100.7", 1))
    protocol.datagramReceived(encode_message(StunMessage(BINDING_RESPONSE, TID)), ("198.51.100.7", 1))
    assert transport.written == [] and seen == [] and protocol.dropped == 2
