"""DigestNonceCache: the per-phone memory of digest nonces for reuse (pure, no Twisted)."""

from __future__ import annotations

import pytest

from acs_security.connreq.digest_cache import DEFAULT_MAX_AGE, DEFAULT_MAX_ENTRIES, DigestNonceCache, cache_key
from acs_security.httpauth.digest import DigestChallenge

NOW = 1_700_000_000.0
KEY = cache_key("http://192.0.2.10:7547/cr/4f2a", "acs")


def challenge(nonce: str = "n1", stale: bool = False) -> DigestChallenge:
    return DigestChallenge(realm="phone", nonce=nonce, algorithm="SHA-256", qop_options=("auth",),
                           opaque="op", stale=stale)


def test_defaults_are_below_the_phone_nonce_lifetime() -> None:
    assert DEFAULT_MAX_ENTRIES == 200_000
    assert DEFAULT_MAX_AGE == 240.0 < 300.0  # DigestVerifier's default nonce_lifetime


def test_take_counts_up_from_the_remembered_nc() -> None:
    cache = DigestNonceCache()
    assert cache.take(KEY, NOW) is None
    cache.remember(KEY, challenge(), 1, NOW)
    first = cache.take(KEY, NOW + 1)
    second = cache.take(KEY, NOW + 2)
    assert first is not None and second is not None
    assert (first.challenge.nonce, first.nc, first.received_at) == ("n1", 2, NOW)
    assert second.nc == 3  # concurrent requests never share a count (RFC 7616 section 3.4)


def test_remembering_the_same_nonce_keeps_its_age_and_the_higher_nc() -> None:
    cache = DigestNonceCache(max_age=100)
    cache.remember(KEY, challenge(), 1, NOW)
    assert cache.take(KEY, NOW + 10) is not None  # nc 2
    cache.remember(KEY, challenge(), 1, NOW + 90)
    reuse = cache.take(KEY, NOW + 99)
    assert reuse is not None and reuse.nc == 3 and reuse.received_at == NOW
    assert cache.take(KEY, NOW + 101) is None  # age counts from the challenge, not from use


def test_a_new_nonce_replaces_the_old_and_restarts_nc() -> None:
    cache = DigestNonceCache()
    cache.remember(KEY, challenge("n1"), 5, NOW)
    cache.remember(KEY, challenge("n2", stale=True), 1, NOW + 50)
    reuse = cache.take(KEY, NOW + 60)
    assert reuse is not None
    assert (reuse.challenge.nonce, reuse.nc, reuse.received_at) == ("n2", 2, NOW + 50)
    assert reuse.challenge.stale is False  # stale described the old answer, not this nonce


def test_entry_expires_after_max_age_and_is_dropped() -> None:
    cache = DigestNonceCache(max_age=240)
    cache.remember(KEY, challenge(), 1, NOW)
    assert cache.take(KEY, NOW + 240) is not None
    assert cache.take(KEY, NOW + 240.5) is None
    assert len(cache) == 0


def test_clock_stepped_back_does_not_reuse() -> None:
    cache = DigestNonceCache()
    cache.remember(KEY, challenge(), 1, NOW)
    assert cache.take(KEY, NOW - 5) is None


def test_nc_never_passes_eight_hex_digits() -> None:
    cache = DigestNonceCache()
    cache.remember(KEY, challenge(), 0xFFFFFFFE, NOW)
    reuse = cache.take(KEY, NOW)
    assert reuse is not None and reuse.nc == 0xFFFFFFFF
    assert cache.take(KEY, NOW) is None


def test_bound_drops_the_least_recently_used() -> None:
    cache = DigestNonceCache(max_entries=2)
    a, b, c = (cache_key(f"http://192.0.2.{i}:7547/", "acs") for i in (1, 2, 3))
    cache.remember(a, challenge("na"), 1, NOW)
    cache.remember(b, challenge("nb"), 1, NOW)
    assert cache.take(a, NOW) is not None  # a is now the most recently used
    cache.remember(c, challenge("nc"), 1, NOW)
    assert len(cache) == 2
    assert cache.take(b, NOW) is None
    assert cache.take(a, NOW) is not None and cache.take(c, NOW) is not None


def test_forget_and_outcome_counters() -> None:
    cache = DigestNonceCache()
    cache.remember(KEY, challenge(), 1, NOW)
    cache.forget(KEY)
    cache.forget(KEY)  # absent: no error
    assert cache.take(KEY, NOW) is None
    cache.record_outcome(True)
    cache.record_outcome(True)
    cache.record_outcome(False)
    assert (cache.accepted, cache.refused) == (2, 1)


def test_key_separates_users_and_paths_and_holds_no_name() -> None:
    base = "http://192.0.2.10:7547/cr/4f2a"
    assert cache_key(base, "acs") != cache_key(base, "admin")
    assert cache_key(base, "acs") != cache_key(base + "x", "acs")
    assert "secret-user" not in cache_key(base, "secret-user")


def test_constructor_refusals() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        DigestNonceCache(max_entries=0)
    with pytest.raises(ValueError, match="max_age"):
        DigestNonceCache(max_age=0)
