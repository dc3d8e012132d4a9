"""The PROXY protocol header parser, fed the bytes of HAProxy's specification
(doc/proxy-protocol.txt, versions 1 and 2)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_security.server.proxy_protocol import (
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse_proxy_header,
)

REST = b"POST /cwmp HTTP/1.1\r\n"


def v2(src: str, dst: str, sport: int, dport: int, *, command: int = 1, transport: int = 1,
       tlv: bytes = b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x10 if a.version == 4 else 0x20
    block = a.packed + b.packed + struct.pack("!HH", sport, dport)
    return (V2_SIGNATURE + bytes([0x20 | command, family | transport])
            + struct.pack("!H", len(block) + len(tlv)) + block + tlv)


def test_v1_tcp4():
    data = b"PROXY TCP4 192.0.2.33 10.1.1.1 51000 7547\r\n"
    assert parse_proxy_header(data + REST) == ProxyHeader(1, len(data), ("192.0.2.33", 51000), ("10.1.1.1", 7547))


def test_v1_tcp6_and_the_longest_header():
    full = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    header = parse_proxy_header(b"PROXY TCP6 " + full + b" " + full + b" 65535 65535\r\n")
    assert header is not None and header.source == (full.decode(), 65535)
    # The worst case of the specification (section 2.1): UNKNOWN with two full IPv6 addresses.
    longest = b"PROXY UNKNOWN " + full + b" " + full + b" 65535 65535\r\n"
    assert len(longest) == V1_MAX_LENGTH and parse_proxy_header(longest + REST).length == V1_MAX_LENGTH


def test_v1_unknown_has_no_address():
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n" + REST) == ProxyHeader(1, 15, None, None)
    assert parse_proxy_header(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").source is None


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 192.0.2.33 10.1.1.1 51000\r\n",
    b"PROXY TCP4 2001:db8::1 10.1.1.1 51000 7547\r\n",
    b"PROXY TCP6 192.0.2.33 2001:db8::1 51000 7547\r\n",
    b"PROXY TCP4 192.0.2.33 10.1.1.1 65536 7547\r\n",
    b"PROXY TCP4 192.0.2.33 10.1.1.1 -1 7547\r\n",
    b"PROXY TCP4 evil.example 10.1.1.1 1 2\r\n",
    b"PROXY UDP4 192.0.2.33 10.1.1.1 1 2\r\n",
    b"PROXY TCP4  192.0.2.33 10.1.1.1 1 2\r\n",
    b"PROXY TCP4 192.0.2.33 10.1.1.1 1 2 3\r\n",
    b"PROXY TCP4 \xff\xfe 10.1.1.1 1 2\r\n",
    b"PROXY " + b"A" * 120,
    b"GET / HTTP/1.1\r\n",
    b"\x16\x03\x01\x02\x00",  # a TLS ClientHello
])
def test_invalid_headers_are_refused(data):
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(data)


def test_v2_tcp4_with_tlvs_and_the_stream_after_it():
    tlv = b"\x01\x00\x08http/1.1"  # PP2_TYPE_ALPN
    data = v2("192.0.2.34", "10.1.1.1", 51001, 7547, tlv=tlv)
    assert parse_proxy_header(data + REST) == ProxyHeader(2, len(data), ("192.0.2.34", 51001), ("10.1.1.1", 7547))


def test_v2_tcp6():
    header = parse_proxy_header(v2("2001:db8::34", "2001:db8::1", 1, 2))
    assert header is not None and header.source == ("2001:db8::34", 1)


def test_v2_local_and_unspec_carry_no_address():
    local = v2("192.0.2.34", "10.1.1.1", 1, 2, command=0)
    assert parse_proxy_header(local) == ProxyHeader(2, len(local), None, None)
    unspec = V2_SIGNATURE + b"\x21\x00\x00\x00"
    assert parse_proxy_header(unspec + REST) == ProxyHeader(2, 16, None, None)


@pytest.mark.parametrize("data", [
    V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\x00" * 12,  # version 1 in a v2 signature
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # command 2
    V2_SIGNATURE + b"\x21\x41\x00\x0c" + b"\x00" * 12,  # family 4
    V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,  # address block too short
    V2_SIGNATURE[:6] + b"X",
])
def test_invalid_v2_headers_are_refused(data):
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(data)


@pytest.mark.parametrize("whole", [
    b"PROXY TCP4 192.0.2.33 10.1.1.1 51000 7547\r\n",
    v2("192.0.2.34", "10.1.1.1", 51001, 7547, tlv=b"\x04\x00\x02ab"),
])
def test_every_prefix_of_a_header_asks_for_more(whole):
    for n in range(len(whole)):
        assert parse_proxy_header(whole[:n]) is None, n
    assert parse_proxy_header(whole) is not None


@given(st.binary(max_size=300))
def test_any_bytes_parse_wait_or_fail_with_proxy_header_error(data):
    try:
        header = parse_proxy_header(data)
    except ProxyHeaderError:
        return
    assert header is None or 0 < header.length <= len(data)


@given(st.ip_addresses(), st.integers(0, 65535), st.integers(0, 65535), st.binary(max_size=40))
def test_v2_round_trip(addr, sport, dport, tlv):
    dst = "10.1.1.1" if addr.version == 4 else "2001:db8::1"
    data = v2(str(addr), dst, sport, dport, tlv=tlv)
    assert parse_proxy_header(data + REST) == ProxyHeader(2, len(data), (str(addr), sport), (dst, dport))
