"""Trusted proxies, X-Forwarded-For and the per-address key (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_security.server.addresses import TrustedProxies, connection_key, forwarded_client, limit_key, normalize

TRUSTED = TrustedProxies(["10.0.0.0/8", "192.0.2.10", "2001:db8:ffff::/48"])


def test_trusted_proxies_match_addresses_networks_and_mapped_forms():
    assert "10.200.3.4" in TRUSTED and "192.0.2.10" in TRUSTED and "2001:db8:ffff:1::9" in TRUSTED
    assert "::ffff:10.1.2.3" in TRUSTED
    assert "192.0.2.11" not in TRUSTED and "not-an-ip" not in TRUSTED and None not in TRUSTED
    assert not TrustedProxies() and "10.0.0.1" not in TrustedProxies()


def test_bad_entries_are_all_named():
    with pytest.raises(ValueError) as err:
        TrustedProxies(["10.0.0.0/8", "proxy.example.net", "10.0.0.0/33"])
    assert "'proxy.example.net'" in str(err.value) and "'10.0.0.0/33'" in str(err.value)


def test_normalize():
    assert normalize("::ffff:198.51.100.7") == "198.51.100.7"
    assert normalize(" 2001:DB8::0:1 ") == "2001:db8::1"
    assert normalize("fe80::1%eth0") == "fe80::1"
    assert normalize("example.net") is None


@pytest.mark.parametrize("values, peer, client", [
    (["192.0.2.50"], "10.1.1.1", "192.0.2.50"),
    # A client forged the first entry; the trusted proxy appended what it saw.
    (["6.6.6.6, 192.0.2.50"], "10.1.1.1", "192.0.2.50"),
    (["6.6.6.6", "192.0.2.50"], "10.1.1.1", "192.0.2.50"),  # two field lines, in order
    # Two trusted proxies in a row: the walk passes through both.
    (["198.51.100.9, 10.2.2.2"], "192.0.2.10", "198.51.100.9"),
    (["10.3.3.3, 10.2.2.2"], "10.1.1.1", "10.3.3.3"),  # all trusted: the leftmost
    (["[2001:db8::5]:4711"], "10.1.1.1", "2001:db8::5"),
    (["198.51.100.9:4711"], "10.1.1.1", "198.51.100.9"),
    (["2001:db8::5"], "10.1.1.1", "2001:db8::5"),
    (["::ffff:198.51.100.9"], "10.1.1.1", "198.51.100.9"),
    # Malformed entries stop the walk at the last trusted hop reached.
    (["198.51.100.9, unknown"], "10.1.1.1", "10.1.1.1"),
    (["198.51.100.9, 10.2.2.2, _x"], "10.1.1.1", "10.1.1.1"),
    (["unknown, 10.2.2.2"], "10.1.1.1", "10.2.2.2"),
    (["[2001:db8::5"], "10.1.1.1", "10.1.1.1"),
    (["198.51.100.9:70000"], "10.1.1.1", "10.1.1.1"),
    ([" , "], "10.1.1.1", "10.1.1.1"),
    # From anyone but a trusted proxy the header means nothing.
    (["10.9.9.9"], "192.0.2.66", "192.0.2.66"),
])
def test_forwarded_client(values, peer, client):
    assert forwarded_client(values, peer, TRUSTED) == client


@given(st.lists(st.text(max_size=30), max_size=5), st.sampled_from(["10.1.1.1", "192.0.2.66"]))
def test_forwarded_client_is_the_peer_or_a_canonical_address_from_a_trusted_peer(values, peer):
    client = forwarded_client(values, peer, TRUSTED)
    assert client == peer or (peer in TRUSTED and normalize(client) == client)


def test_limit_key_groups_ipv6_by_64():
    assert limit_key("198.51.100.7") == "198.51.100.7"
    assert limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2::ffff") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("unix-socket") == "unix-socket"


def test_connection_key_skips_trusted_proxies_and_agrees_with_limit_key():
    assert connection_key("198.51.100.7", TrustedProxies()) == "198.51.100.7"
    assert connection_key("::ffff:198.51.100.7", TrustedProxies()) == "198.51.100.7"
    assert connection_key("2001:db8:1:2::a", TrustedProxies()) == "2001:db8:1:2::/64"
    assert connection_key("10.1.1.1", TRUSTED) is None and connection_key("/tmp/sock", TRUSTED) is None
    assert connection_key("198.51.100.7", TRUSTED) == "198.51.100.7"


@given(st.ip_addresses())
def test_connection_key_is_limit_key_for_untrusted_addresses(addr):
    assert connection_key(str(addr), TrustedProxies()) == limit_key(str(addr))
