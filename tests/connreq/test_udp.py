"""Annex G UDP connection requests: exact datagram, phone-side verification, addresses."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.connreq.udp import (
    MAX_DATAGRAM,
    HostPort,
    UdpAddressError,
    UdpRejectReason,
    UdpRequestError,
    UdpRequestVerifier,
    build_udp_connection_request,
    parse_host_port,
    parse_udp_connection_request,
    udp_signature,
)

TS = 1_700_000_000
USER = "acs-user"
PASSWORD = "s3cret"


def datagram(*, ts: int = TS, request_id: int = 12345, user: str = USER, password: str = PASSWORD,
             cnonce: str = "a1b2c3", address: str = "203.0.113.5:7547") -> bytes:
    return build_udp_connection_request(
        address, username=user, password=password, ts=ts, request_id=request_id, cnonce=cnonce
    )


def test_datagram_bytes_exactly_as_annex_g() -> None:
    sig = hmac.new(b"s3cret", b"1700000000" + b"12345" + b"acs-user" + b"a1b2c3", hashlib.sha1).hexdigest()
    assert datagram() == (
        b"GET http://203.0.113.5:7547?ts=1700000000&id=12345&un=acs-user&cn=a1b2c3&sig="
        + sig.encode()
        + b" HTTP/1.1\r\nHost: 203.0.113.5:7547\r\n\r\n"
    )
    assert udp_signature(PASSWORD, TS, 12345, USER, "a1b2c3") == sig


def test_ipv6_target_is_bracketed_and_odd_usernames_are_percent_encoded() -> None:
    raw = datagram(address="[2001:db8::1]:7547", user="a&b=c d")
    assert raw.startswith(b"GET http://[2001:db8::1]:7547?ts=")
    assert b"&un=a%26b%3Dc%20d&" in raw and b"Host: [2001:db8::1]:7547\r\n" in raw
    parsed = parse_udp_connection_request(raw)
    assert parsed.username == "a&b=c d" and parsed.host == "[2001:db8::1]:7547"
    verifier = UdpRequestVerifier("a&b=c d", PASSWORD)
    assert verifier.verify(raw, TS).ok


def test_verifier_accepts_once_and_drops_the_repeated_copies() -> None:
    verifier = UdpRequestVerifier(USER, PASSWORD, window_s=30)
    raw = datagram()
    first = verifier.verify(raw, TS + 2)
    assert first.ok and first.request is not None and first.request.request_id == 12345
    for _ in range(2):
        again = verifier.verify(raw, TS + 3)
        assert not again.ok and again.reason is UdpRejectReason.REPLAYED_ID
    assert verifier.verify(datagram(request_id=12346), TS + 3).ok


@pytest.mark.parametrize("offset", [-31, 31, -10_000])
def test_timestamp_outside_window_is_refused(offset: int) -> None:
    verdict = UdpRequestVerifier(USER, PASSWORD, window_s=30).verify(datagram(), TS - offset)
    assert verdict.reason is UdpRejectReason.STALE_TIMESTAMP and "30 s window" in verdict.detail


def test_window_edges_are_accepted() -> None:
    assert UdpRequestVerifier(USER, PASSWORD, window_s=30).verify(datagram(), TS + 30).ok
    assert UdpRequestVerifier(USER, PASSWORD, window_s=30).verify(datagram(), TS - 30).ok


def test_wrong_username_and_bad_signature() -> None:
    verifier = UdpRequestVerifier(USER, PASSWORD)
    assert verifier.verify(datagram(user="other"), TS).reason is UdpRejectReason.WRONG_USERNAME
    assert verifier.verify(datagram(password="guess"), TS).reason is UdpRejectReason.BAD_SIGNATURE
    tampered = datagram().replace(b"ts=1700000000", b"ts=1700000001")
    assert verifier.verify(tampered, TS).reason is UdpRejectReason.BAD_SIGNATURE
    # Refusals left no trace: the genuine request still passes.
    assert verifier.verify(datagram(), TS).ok


def test_new_credentials_apply_at_once() -> None:
    verifier = UdpRequestVerifier(USER, PASSWORD)
    verifier.set_credentials(USER, "rotated")
    assert verifier.verify(datagram(), TS).reason is UdpRejectReason.BAD_SIGNATURE
    assert verifier.verify(datagram(password="rotated"), TS).ok


def test_remembered_ids_are_bounded_without_opening_a_replay_gap() -> None:
    verifier = UdpRequestVerifier(USER, PASSWORD, window_s=30, max_remembered_ids=2)
    first, second, third = (datagram(request_id=i, ts=TS + i) for i in (1, 2, 3))
    for raw in (first, second, third):
        assert verifier.verify(raw, TS + 3).ok
    # id 1 was forgotten while its ts was still inside the window: still refused.
    assert verifier.verify(first, TS + 3).reason is UdpRejectReason.REPLAYED_ID
    assert verifier.verify(third, TS + 3).reason is UdpRejectReason.REPLAYED_ID
    # Ids whose ts left the window are forgotten without cost.
    assert verifier.verify(datagram(request_id=9, ts=TS + 100), TS + 100).ok


_GOOD = datagram().decode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"x" * (MAX_DATAGRAM + 1), "larger than"),
        (b"GET \xff HTTP/1.1\r\n\r\n", "not ASCII"),
        (_GOOD.replace("\r\n\r\n", "\r\n").encode(), "CRLF CRLF"),
        ((_GOOD + "junk").encode(), "after the header block"),
        (_GOOD.replace("GET ", "POST ").encode(), "is not GET"),
        (_GOOD.replace("HTTP/1.1", "HTTP/1.0").encode(), "not HTTP/1.1"),
        (_GOOD.replace("Host:", "Hast:").encode(), "no Host header"),
        (_GOOD.replace("Host: ", "Host ").encode(), "malformed header line"),
        (_GOOD.replace("http://", "ftp://").encode(), "absolute http://"),
        (_GOOD.replace("?", "/").encode(), "no query"),
        (_GOOD.replace("&cn=a1b2c3", "").encode(), "lacks cn"),
        (_GOOD.replace("ts=1700000000", "ts=-5").encode(), "ts is not"),
        (_GOOD.replace("id=12345", "id=0x10").encode(), "id is not"),
        (_GOOD.replace("&sig=", "&sig=zz").encode(), "40 hexadecimal"),
        (_GOOD.replace("&un=", "&ts=1&un=").encode(), "'ts' repeated"),
        (_GOOD.replace("cn=a1b2c3", "cn=").encode(), "empty cn"),
        (_GOOD.replace("un=acs-user", "un=%ff").encode(), "percent-encoded UTF-8"),
        (_GOOD.replace("&un=", "&un&x=").encode(), "without '='"),
        (b"GET  HTTP/1.1\r\n\r\n", "request URI is empty"),
        (_GOOD.replace("7547?", "75\x0147?", 1).encode(), "control characters"),
    ],
)
def test_malformed_datagrams(raw: bytes, message: str) -> None:
    with pytest.raises(UdpRequestError, match=re.escape(message)):
        parse_udp_connection_request(raw)
    verdict = UdpRequestVerifier(USER, PASSWORD).verify(raw, TS)
    assert verdict.reason is UdpRejectReason.MALFORMED and message.strip("'") in verdict.detail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")))
def test_verifier_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    verdict = UdpRequestVerifier(USER, PASSWORD).verify(raw, TS)
    assert not verdict.ok


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_verifier_never_raises_on_mutated_datagrams(position: int, byte: int) -> None:
    raw = bytearray(datagram())
    raw[position % len(raw)] = byte
    verdict = UdpRequestVerifier(USER, PASSWORD).verify(bytes(raw), TS)
    if verdict.ok:
        # Only the unsigned host part may differ (Annex G signs ts, id, un and cn).
        assert verdict.request is not None
        original = parse_udp_connection_request(datagram())
        assert (verdict.request.ts, verdict.request.request_id, verdict.request.username,
                verdict.request.cnonce) == (original.ts, original.request_id, original.username,
                                            original.cnonce)


def test_no_password_in_verdicts_or_reprs() -> None:
    verifier = UdpRequestVerifier(USER, PASSWORD)
    assert PASSWORD not in repr(verifier)
    for raw in (datagram(), datagram(), datagram(password="x"), b"junk"):
        verdict = verifier.verify(raw, TS)
        assert PASSWORD not in repr(verdict)
    with pytest.raises(ValueError, match="not encodable") as info:
        udp_signature("pw\ud800", TS, 1, USER, "c")
    assert "ud800" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5:7547", HostPort("203.0.113.5", 7547)),
        (" cpe.example.net:30005 ", HostPort("cpe.example.net", 30005)),
        ("[2001:db8::1]:7547", HostPort("2001:db8::1", 7547)),
        ("localhost.:1", HostPort("localhost.", 1)),
    ],
)
def test_parse_host_port(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


def test_host_port_str_round_trips() -> None:
    assert str(HostPort("2001:db8::1", 7547)) == "[2001:db8::1]:7547"
    assert str(parse_host_port("10.0.0.1:7547")) == "10.0.0.1:7547"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address"),
        ("203.0.113.5", "missing ':port'"),
        ("203.0.113.5:", "missing port"),
        ("203.0.113.5:http", "not a number"),
        ("203.0.113.5:0", "outside 1-65535"),
        ("203.0.113.5:65536", "outside 1-65535"),
        ("2001:db8::1:7547", "must be written in brackets"),
        ("[2001:db8::1:7547", "unclosed '['"),
        ("[2001:db8::zz]:7547", "not a valid IPv6 address"),
        ("[2001:db8::1]7547", "expected ':port'"),
        ("300.1.2.3:7547", "not a valid IPv4 address"),
        ("bad_host!:7547", "not a valid host name"),
        (":7547", "missing host"),
        ("-lead.example:7547", "not a valid host name"),
    ],
)
def test_parse_host_port_errors(text: str, message: str) -> None:
    with pytest.raises(UdpAddressError, match=re.escape(message)):
        parse_host_port(text)


def test_builder_argument_errors() -> None:
    with pytest.raises(ValueError, match="unsigned 32-bit"):
        datagram(request_id=2**32)
    with pytest.raises(ValueError, match="negative"):
        datagram(ts=-1)
    with pytest.raises(ValueError, match="cnonce"):
        datagram(cnonce="")
    with pytest.raises(UdpAddressError):
        datagram(address="nowhere")
