"""Server nonces for HTTP digest: self-validating, plus a bounded record of what was used.

A nonce is ``base64url(issued_at || random || mac)``: ``issued_at`` is the issue time in
whole seconds (8 bytes, big-endian), ``random`` the caller's random bytes, ``mac`` the
first 16 bytes of HMAC-SHA256 over realm, time and random under the server's secret key.
So the server tells a nonce it minted, and how old it is, without storing it (RFC 7616
section 3.3 leaves the nonce's content to the server and suggests a time stamp and a
private key). Several ACS processes sharing the key accept each other's nonces.

Replays need state: RFC 7616 section 3.4 has the client count its uses of a nonce in
``nc``, and the server refuses a nonce-count it has already seen. :class:`NonceCountTracker`
keeps the highest ``nc`` per nonce, with a hard bound on the number of nonces tracked.
When it must drop a nonce that has not expired it remembers the newest issue time it ever
dropped, and from then on treats an untracked nonce issued no later than that as stale:
the client transparently fetches a fresh nonce, and no replay slips through the gap.

That record is one process's. Several ACS nodes behind a load balancer accept each other's
nonces, so a header captured on one node could be replayed once on another: the verifier
therefore hands every use it accepts back to its caller as a :class:`NonceUse`, which the
server also records where every node sees it (the store, store/nonces.py) and refuses
when another node accepted that count first.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "MIN_SECRET_KEY_BYTES",
    "NonceCodec",
    "NonceCountTracker",
    "NonceUse",
    "ReplayVerdict",
]

MIN_SECRET_KEY_BYTES = 16
_RANDOM_MIN = 8
_RANDOM_MAX = 32
_TS_LEN = 8
_MAC_LEN = 16
_CONTEXT = b"acs-security digest nonce v1\x00"


class NonceCodec:
    """Mints and authenticates nonces for one realm under one secret key."""

    __slots__ = ("_key", "_realm")

    def __init__(self, secret_key: bytes, realm: str) -> None:
        """Raises:
        ValueError: the key is shorter than :data:`MIN_SECRET_KEY_BYTES`.
        """
        if not isinstance(secret_key, bytes) or len(secret_key) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"secret_key must be at least {MIN_SECRET_KEY_BYTES} bytes")
        self._key = secret_key
        self._realm = realm.encode("utf-8")

    def __repr__(self) -> str:
        return "NonceCodec(<key hidden>)"

    def _mac(self, body: bytes) -> bytes:
        msg = _CONTEXT + self._realm + b"\x00" + body
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:_MAC_LEN]

    def mint(self, now: float, random_bytes: bytes) -> str:
        """A new nonce issued at ``now`` (Unix seconds).

        Raises:
            ValueError: ``now`` is negative, or ``random_bytes`` is not 8 to 32 bytes.
        """
        if not _RANDOM_MIN <= len(random_bytes) <= _RANDOM_MAX:
            raise ValueError(f"random_bytes must be {_RANDOM_MIN} to {_RANDOM_MAX} bytes")
        if now < 0:
            raise ValueError("now must not be negative")
        body = int(now).to_bytes(_TS_LEN, "big") + bytes(random_bytes)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def issued_at(self, nonce: str) -> int | None:
        """The issue time of a nonce this codec minted, or None when it did not mint it."""
        if not 0 < len(nonce) <= 128:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if not _TS_LEN + _RANDOM_MIN + _MAC_LEN <= len(raw) <= _TS_LEN + _RANDOM_MAX + _MAC_LEN:
            return None
        body, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        return int.from_bytes(body[:_TS_LEN], "big")


@dataclass(frozen=True, slots=True)
class NonceUse:
    """One accepted use of a server nonce: its nonce-count, and when the nonce expires
    (Unix seconds: issue time + lifetime), after which no record of it is needed."""

    nonce: str
    nc: int
    expires_at: float


class ReplayVerdict(enum.Enum):
    FRESH = "fresh"  # first use of this nonce-count: accepted and recorded
    REPLAYED = "replayed"  # same or lower nc than already seen for this nonce
    FORGOTTEN = "forgotten"  # dropped under memory pressure: answer stale, client re-fetches


class NonceCountTracker:
    """Highest nonce-count seen per nonce, for at most ``max_nonces`` nonces.

    Entries leave when their nonce expires (``issued_at + lifetime``) or, under pressure,
    oldest first; see the module docstring for why that stays replay-safe.
    """

    __slots__ = ("_lifetime", "_max", "_seen", "_floor")

    def __init__(self, *, lifetime: float, max_nonces: int = 10_000) -> None:
        """Raises:
        ValueError: ``lifetime`` is not positive or ``max_nonces`` is below 1.
        """
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self._lifetime = lifetime
        self._max = max_nonces
        # nonce -> (issued_at, highest nc); insertion order = order of first use.
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._floor = -1  # newest issue time of a live nonce dropped under pressure

    def __len__(self) -> int:
        return len(self._seen)

    def _expired(self, issued_at: int, now: float) -> bool:
        return now - issued_at > self._lifetime

    def check_and_record(self, nonce: str, issued_at: int, nc: int, now: float) -> ReplayVerdict:
        """Record use ``nc`` of ``nonce`` unless it repeats or goes back on an earlier use."""
        # Drop expired entries from the front: first-use order is close to issue order,
        # and the hard bound below catches whatever this lazy sweep leaves.
        while self._seen:
            first_nonce, (first_issued, _) = next(iter(self._seen.items()))
            if not self._expired(first_issued, now):
                break
            del self._seen[first_nonce]
        entry = self._seen.get(nonce)
        if entry is not None:
            if nc <= entry[1]:
                return ReplayVerdict.REPLAYED
            self._seen[nonce] = (issued_at, nc)
            return ReplayVerdict.FRESH
        if issued_at <= self._floor:
            return ReplayVerdict.FORGOTTEN
        while len(self._seen) >= self._max:
            _, (dropped_issued, _) = self._seen.popitem(last=False)
            if not self._expired(dropped_issued, now):
                self._floor = max(self._floor, dropped_issued)
        # A nonce dropped earlier while still live has issued_at <= floor and was refused
        # above; one dropped after expiring is refused as stale by the verifier first.
        self._seen[nonce] = (issued_at, nc)
        return ReplayVerdict.FRESH
