"""The simulated fleet's one shared connection-request DigestVerifier under nonce reuse.

100,000 phones share one verifier (sim/fleet.py). The ACS reuses each phone's last nonce
with nc+1 (RFC 7616 section 3.3/3.4, connreq/digest_cache.py); every live nonce must stay
tracked, or its reuse is answered stale: one extra request per phone.
"""

from __future__ import annotations

from acs_security.httpauth.nonces import NonceCountTracker, ReplayVerdict
from acs_security.sim.listeners import tracked_nonces_for

PHONES = 100_000
NOW = 1_700_000_000


def first_uses_then_reuse(tracker: NonceCountTracker) -> list[ReplayVerdict]:
    # A push to every phone within a minute: one nonce per phone, answered with nc=1 ...
    for i in range(PHONES):
        assert tracker.check_and_record(f"n{i}", NOW + i // 2000, 1, NOW + i // 2000 + 1) is ReplayVerdict.FRESH
    # ... and a second push two minutes later reuses each with nc=2.
    return [tracker.check_and_record(f"n{i}", NOW + i // 2000, 2, NOW + 120) for i in range(PHONES)]


def test_a_fleet_of_100000_keeps_every_live_nonce() -> None:
    tracker = NonceCountTracker(lifetime=300.0, max_nonces=tracked_nonces_for(PHONES))
    verdicts = first_uses_then_reuse(tracker)
    assert set(verdicts) == {ReplayVerdict.FRESH}
    # A replayed nonce count is still refused, for the first phone and the last.
    assert tracker.check_and_record("n0", NOW, 2, NOW + 121) is ReplayVerdict.REPLAYED
    assert tracker.check_and_record(f"n{PHONES - 1}", NOW + 49, 1, NOW + 121) is ReplayVerdict.REPLAYED


def test_the_old_bound_would_answer_most_reuses_stale() -> None:
    # Why the bound was raised: with 10,000 tracked nonces, 90% of reuses are "forgotten"
    # (DigestVerifier answers them stale=true, one more request each).
    tracker = NonceCountTracker(lifetime=300.0, max_nonces=10_000)
    verdicts = first_uses_then_reuse(tracker)
    assert verdicts.count(ReplayVerdict.FORGOTTEN) >= 0.9 * PHONES


def test_bound_grows_with_the_fleet_and_keeps_the_old_floor() -> None:
    assert tracked_nonces_for(10) == 10_000
    assert tracked_nonces_for(PHONES) == 2 * PHONES
