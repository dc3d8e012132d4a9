"""Per-phone memory of the last digest challenge a phone accepted, for nonce reuse (pure).

RFC 7616 section 3.3/3.4 lets a client answer a server nonce again with an incremented
nonce count (``nc``) and a fresh ``cnonce``, so a connection request (TR-069 section
3.2.2) to a phone answered recently can carry ``Authorization`` at once: one HTTP request
instead of the unauthenticated GET, the 401 challenge and the answer. A phone that no longer
knows the nonce answers 401 (``stale=true`` or a new challenge) and the client answers
that fresh challenge, as it would have without the cache (http_client.py).

What is kept per phone: the challenge (realm, nonce, opaque, algorithm, qop options), the
last ``nc`` used and when the challenge arrived. Never the password: the answer is computed
from the password that comes with each request, so a changed password is never answered
with an old one (a phone still holding the old one refuses, and the fresh leg decides).
The key is the URL's scheme, authority and path plus a hash of the username, so a
different username for the same phone never reuses another's entry.

Bounded: at most ``max_entries`` phones, least recently used dropped first; an entry older
than ``max_age`` seconds is not used (it should stay below the phones' nonce lifetime;
the simulated phones use 300 s, DigestVerifier ``nonce_lifetime``). No I/O, no clock:
time comes in as arguments.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace

from acs_security.httpauth.digest import DigestChallenge

__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_MAX_ENTRIES", "DigestNonceCache", "NonceReuse", "cache_key"]

DEFAULT_MAX_ENTRIES = 200_000
# Below the 300 s nonce lifetime of the simulated phones (DigestVerifier nonce_lifetime):
# a nonce the phone would call stale costs an extra request, so it is not tried.
DEFAULT_MAX_AGE = 240.0
# RFC 7616 section 3.4: nc is 8 hex digits.
_NC_MAX = 0xFFFFFFFF


def cache_key(origin_path: str, username: str) -> str:
    """The key for one phone URL (scheme://authority/path, no query) and username.

    The username enters as a hash: the key shows up nowhere, but it costs nothing to keep
    names out of a structure holding 200,000 of them.
    """
    user = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{origin_path} {user}"


@dataclass(frozen=True, slots=True)
class NonceReuse:
    """A cached challenge to answer pre-emptively, the nonce count to use, and when the
    phone sent the challenge."""

    challenge: DigestChallenge
    nc: int
    received_at: float


@dataclass(slots=True)
class _Entry:
    challenge: DigestChallenge
    nc: int  # the last nonce count used with this nonce
    received_at: float  # when the phone sent the challenge


class DigestNonceCache:
    """Last accepted digest challenge per phone, LRU-bounded, with a maximum age.

    ``accepted`` / ``refused`` count pre-emptive answers the phones accepted or refused
    (for metrics); the requester reports them with :meth:`record_outcome`.
    """

    __slots__ = ("_max_entries", "_max_age", "_entries", "accepted", "refused")

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_age: float = DEFAULT_MAX_AGE) -> None:
        """Raises:
        ValueError: ``max_entries`` below 1 or ``max_age`` not positive.
        """
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self._max_entries = max_entries
        self._max_age = float(max_age)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.accepted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"DigestNonceCache({len(self._entries)}/{self._max_entries} entries, max_age={self._max_age:g})"

    def take(self, key: str, now: float) -> NonceReuse | None:
        """The challenge to answer pre-emptively and the next nc, or None.

        Taking consumes the nc (two concurrent requests get different counts: the phone
        refuses a repeated one, RFC 7616 section 3.4). An entry past ``max_age`` (or from
        the future: a clock stepped back) is dropped and None returned.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = now - entry.received_at
        if age > self._max_age or age < 0 or entry.nc >= _NC_MAX:
            del self._entries[key]
            return None
        entry.nc += 1
        self._entries.move_to_end(key)
        return NonceReuse(entry.challenge, entry.nc, entry.received_at)

    def remember(self, key: str, challenge: DigestChallenge, nc: int, received_at: float) -> None:
        """The phone accepted an answer to ``challenge`` (sent by the phone at
        ``received_at``) with nonce count ``nc``.

        A challenge already cached for ``key`` with the same nonce keeps its arrival time
        (the phone's nonce lifetime runs from issue, not from last use) and the higher nc.
        """
        entry = self._entries.get(key)
        if entry is not None and entry.challenge.nonce == challenge.nonce:
            entry.nc = max(entry.nc, nc)
            self._entries.move_to_end(key)
            return
        if entry is not None:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            self._entries.popitem(last=False)
        # stale=true described the answer that brought this challenge, not its future use.
        self._entries[key] = _Entry(replace(challenge, stale=False), nc, received_at)

    def forget(self, key: str) -> None:
        """Drop the entry (the phone refused its nonce)."""
        self._entries.pop(key, None)

    def record_outcome(self, accepted: bool) -> None:
        """Count one pre-emptive answer the phone accepted or refused."""
        if accepted:
            self.accepted += 1
        else:
            self.refused += 1

