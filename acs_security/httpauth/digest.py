"""HTTP Digest access authentication (RFC 7616), both sides, without I/O.

Client side (the ACS answering a phone's connection-request challenge):
:func:`digest_authorization` picks the strongest challenge offered and writes the
``Authorization`` value. Server side (the ACS checking phones that post CWMP, and the
simulated phones checking the ACS's connection requests): :class:`DigestVerifier`
issues challenges and checks answers. Time, nonce randomness and the client nonce come in
as arguments, so every computation is reproducible from its inputs.

Supported: MD5 and SHA-256 and their ``-sess`` variants, ``qop=auth``, ``opaque``,
``stale``, ``charset=UTF-8`` and ``username*`` (RFC 7616 section 3.4.4). Not supported,
refused with a precise reason: ``qop=auth-int`` (the CWMP connection request has no
body worth protecting, and few CPEs implement it), ``userhash=true`` answers (RFC 7616
makes userhash optional for the server) and RFC 2069 answers without qop on the server.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from acs_security.httpauth.headers import (
    AuthHeaderError,
    AuthParams,
    parse_authorization,
    parse_challenges,
    render_params,
)
from acs_security.httpauth.nonces import NonceCodec, NonceCountTracker, NonceUse, ReplayVerdict
from acs_security.httpauth.result import AuthFailure, AuthResult

__all__ = [
    "ALGORITHMS",
    "DigestChallenge",
    "DigestCredentials",
    "DigestVerifier",
    "UnsupportedDigestError",
    "compute_response",
    "digest_authorization",
    "parse_digest_challenge",
    "parse_digest_credentials",
    "select_digest_challenge",
]

# Canonical name -> (hashlib name, session variant). RFC 7616 section 3.2 registry.
_ALGORITHM_TABLE: dict[str, tuple[str, bool]] = {
    "SHA-256": ("sha256", False),
    "SHA-256-sess": ("sha256", True),
    "MD5": ("md5", False),
    "MD5-sess": ("md5", True),
}
# Strongest first: a client facing several challenges takes the first it supports
# (RFC 7616 section 3.7), and a server lists its challenges in this order.
ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHM_TABLE)
_BY_UPPER = {name.upper(): name for name in ALGORITHMS}
# RFC 5987 attr-char, for username* (RFC 7616 section 3.4.4).
_ATTR_SAFE = "!#$&+-.^_`|~"
_NC_DIGITS = frozenset("0123456789abcdefABCDEF")


class UnsupportedDigestError(AuthHeaderError):
    """A well-formed digest header asking for something this code does not do
    (an unknown algorithm, only ``qop=auth-int``, ``userhash``)."""


def _canonical_algorithm(value: str | None) -> str:
    # RFC 7616 section 3.3: "If this is not present, it is assumed to be MD5."
    if value is None:
        return "MD5"
    name = _BY_UPPER.get(value.upper())
    if name is None:
        raise UnsupportedDigestError(f"unsupported digest algorithm {value[:32]!r}")
    return name


def _h(hash_name: str, text: str) -> str:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # The codec's message would quote a character of the (password-bearing) input.
        raise ValueError("digest input is not encodable as UTF-8") from None
    return hashlib.new(hash_name, data).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    qop: str | None,
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1 (hex, lower case).

    ``qop=None`` gives the RFC 2069 form ``H(HA1:nonce:HA2)``, kept for old servers.

    Raises:
        UnsupportedDigestError: unknown algorithm or a qop other than ``auth``.
        ValueError: qop is set but nc or cnonce is missing, or an input is not
            encodable as UTF-8 (lone surrogates).
    """
    name = _canonical_algorithm(algorithm)
    hash_name, sess = _ALGORITHM_TABLE[name]
    ha1 = _h(hash_name, f"{username}:{realm}:{password}")
    if sess:
        # RFC 7616 section 3.4.2: the session variant folds both nonces into HA1.
        if cnonce is None:
            raise ValueError("a -sess algorithm needs a cnonce")
        ha1 = _h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(hash_name, f"{method}:{uri}")
    if qop is None:
        return _h(hash_name, f"{ha1}:{nonce}:{ha2}")
    if qop.lower() != "auth":
        raise UnsupportedDigestError(f"unsupported qop {qop[:16]!r} (only auth)")
    if nc is None or cnonce is None:
        raise ValueError("qop=auth needs nc and cnonce")
    return _h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ---------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One ``Digest`` challenge from ``WWW-Authenticate`` (RFC 7616 section 3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop_options: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    charset_utf8: bool = False
    userhash: bool = False


def parse_digest_challenge(challenge: AuthParams) -> DigestChallenge:
    """A parsed ``Digest`` challenge as a :class:`DigestChallenge`.

    Raises:
        AuthHeaderError: not a Digest challenge, or realm or nonce missing.
        UnsupportedDigestError: unknown algorithm.
    """
    if challenge.scheme != "digest":
        raise AuthHeaderError(f"not a Digest challenge (scheme {challenge.scheme[:16]!r})")
    realm = challenge.get("realm")
    nonce = challenge.get("nonce")
    if realm is None:
        raise AuthHeaderError("Digest challenge without realm")
    if not nonce:
        raise AuthHeaderError("Digest challenge without nonce")
    qop_raw = challenge.get("qop")
    qops = tuple(q.strip().lower() for q in qop_raw.split(",") if q.strip()) if qop_raw else ()
    return DigestChallenge(
        realm=realm,
        nonce=nonce,
        algorithm=_canonical_algorithm(challenge.get("algorithm")),
        qop_options=qops,
        opaque=challenge.get("opaque"),
        stale=(challenge.get("stale") or "").lower() == "true",
        charset_utf8=(challenge.get("charset") or "").lower() == "utf-8",
        userhash=(challenge.get("userhash") or "").lower() == "true",
    )


def select_digest_challenge(
    challenges: str | Sequence[str] | Sequence[AuthParams],
) -> DigestChallenge:
    """The strongest usable Digest challenge among those offered.

    Usable: a known algorithm and ``qop`` absent (RFC 2069 server) or offering ``auth``.

    Raises:
        AuthHeaderError: the header is malformed or holds no Digest challenge.
        UnsupportedDigestError: Digest challenges were offered, none usable.
    """
    if isinstance(challenges, str):
        parsed = parse_challenges(challenges)
    else:
        items = list(challenges)
        if all(isinstance(item, str) for item in items):
            parsed = parse_challenges([str(item) for item in items])
        else:
            parsed = [item for item in items if isinstance(item, AuthParams)]
    digest = [c for c in parsed if c.scheme == "digest"]
    if not digest:
        raise AuthHeaderError("no Digest challenge offered")
    usable: list[DigestChallenge] = []
    first_problem: AuthHeaderError | None = None
    for item in digest:
        try:
            candidate = parse_digest_challenge(item)
        except AuthHeaderError as exc:
            first_problem = first_problem or exc
            continue
        if candidate.qop_options and "auth" not in candidate.qop_options:
            first_problem = first_problem or UnsupportedDigestError(
                "Digest challenge offers no qop=auth (auth-int is not supported)"
            )
            continue
        usable.append(candidate)
    if not usable:
        assert first_problem is not None
        raise first_problem
    usable.sort(key=lambda c: ALGORITHMS.index(c.algorithm))
    return usable[0]


def _username_params(username: str) -> list[tuple[str, str, bool]]:
    if username.isascii():
        return [("username", username, True)]
    # RFC 7616 section 3.4.4: a name that is not ASCII travels as username*.
    encoded = quote(username.encode("utf-8"), safe=_ATTR_SAFE)
    return [("username*", f"UTF-8''{encoded}", False)]


def digest_authorization(
    challenge: str | Sequence[str] | DigestChallenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
) -> str:
    """The ``Authorization`` value answering ``challenge`` (RFC 7616 section 3.4).

    ``challenge`` is the ``WWW-Authenticate`` value(s) or an already selected challenge;
    the strongest usable one is answered. ``cnonce`` must be fresh client randomness.

    Raises:
        AuthHeaderError: the challenge is malformed or holds no Digest challenge.
        UnsupportedDigestError: no offered challenge is usable.
        ValueError: ``nc`` is outside 1..0xFFFFFFFF, ``cnonce`` is empty, or a value
            holds a control character. The password never appears in the message.
    """
    chosen = challenge if isinstance(challenge, DigestChallenge) else select_digest_challenge(challenge)
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError("nc must be between 1 and 0xFFFFFFFF")
    if not cnonce:
        raise ValueError("cnonce must not be empty")
    qop = "auth" if chosen.qop_options else None
    nc_text = f"{nc:08x}"
    response = compute_response(
        algorithm=chosen.algorithm,
        username=username,
        realm=chosen.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=chosen.nonce,
        nc=nc_text if qop else None,
        cnonce=cnonce if (qop or chosen.algorithm.endswith("-sess")) else None,
        qop=qop,
    )
    # Order and quoting as in RFC 7616 section 3.9.1; algorithm, qop and nc are never
    # quoted ("For historical reasons, a sender MUST NOT generate the quoted string
    # syntax for ... algorithm, qop, and nc", section 3.4).
    params: list[tuple[str, str, bool]] = _username_params(username)
    params += [
        ("realm", chosen.realm, True),
        ("uri", uri, True),
        ("algorithm", chosen.algorithm, False),
        ("nonce", chosen.nonce, True),
    ]
    if qop:
        params += [("nc", nc_text, False), ("cnonce", cnonce, True), ("qop", qop, False)]
    elif chosen.algorithm.endswith("-sess"):
        params.append(("cnonce", cnonce, True))
    params.append(("response", response, True))
    if chosen.opaque is not None:
        params.append(("opaque", chosen.opaque, True))
    return render_params("Digest", params)


# ---------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """A parsed ``Authorization: Digest`` value. ``response`` is left out of repr."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str = field(repr=False)
    algorithm: str
    qop: str
    nc: str
    cnonce: str
    opaque: str | None = None


def _decode_ext_value(value: str) -> str:
    # RFC 5987 ext-value: charset "'" [ language ] "'" value-chars
    parts = value.split("'", 2)
    if len(parts) != 3:
        raise AuthHeaderError("username* is not an RFC 5987 ext-value")
    if parts[0].lower() != "utf-8":
        raise AuthHeaderError("username* must use the UTF-8 charset")
    try:
        return unquote_to_bytes(parts[2]).decode("utf-8")
    except UnicodeDecodeError:
        raise AuthHeaderError("username* is not valid percent-encoded UTF-8") from None


def parse_digest_credentials(authorization: str) -> DigestCredentials:
    """Parse an ``Authorization: Digest ...`` value and check its form (not its answer).

    Raises:
        AuthHeaderError: malformed, not Digest, or a required parameter missing/invalid.
        UnsupportedDigestError: unknown algorithm, qop other than auth, no qop, userhash.
    """
    params = parse_authorization(authorization)
    if params.scheme != "digest":
        raise AuthHeaderError(f"expected Digest credentials, got scheme {params.scheme[:16]!r}")
    if params.token68 is not None:
        raise AuthHeaderError("Digest credentials must be parameters, not a token68")
    username = params.get("username")
    username_ext = params.get("username*")
    if username is not None and username_ext is not None:
        # RFC 7616 section 3.4: "MUST NOT ... both".
        raise AuthHeaderError("both username and username* given")
    if username_ext is not None:
        username = _decode_ext_value(username_ext)
    if (params.get("userhash") or "").lower() == "true":
        raise UnsupportedDigestError("userhash is not supported")
    missing = [n for n in ("realm", "nonce", "uri", "response") if params.get(n) is None]
    if username is None:
        missing.insert(0, "username")
    if missing:
        raise AuthHeaderError("Digest credentials lack " + ", ".join(missing))
    algorithm = _canonical_algorithm(params.get("algorithm"))
    qop = params.get("qop")
    if qop is None:
        # RFC 7616 drops the RFC 2069 form: qop is required in answers.
        raise UnsupportedDigestError("Digest credentials without qop (RFC 2069) are not accepted")
    if qop.lower() != "auth":
        raise UnsupportedDigestError(f"unsupported qop {qop[:16]!r} (only auth)")
    nc = params.get("nc")
    cnonce = params.get("cnonce")
    if nc is None or cnonce is None:
        raise AuthHeaderError("qop=auth credentials lack nc or cnonce")
    # RFC 7616 section 3.4: nc is exactly 8 hex digits.
    if len(nc) != 8 or not set(nc) <= _NC_DIGITS or int(nc, 16) == 0:
        raise AuthHeaderError("nc must be 8 hexadecimal digits, not zero")
    if not cnonce:
        raise AuthHeaderError("empty cnonce")
    response = params.get("response") or ""
    assert username is not None
    return DigestCredentials(
        username=username,
        realm=params.get("realm") or "",
        nonce=params.get("nonce") or "",
        uri=params.get("uri") or "",
        response=response,
        algorithm=algorithm,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        opaque=params.get("opaque"),
    )


class DigestVerifier:
    """Issues digest challenges and checks the answers, for one realm.

    Nonces are minted with :class:`NonceCodec` (no storage needed to tell they are ours
    and how old), and each (nonce, nc) is accepted once via :class:`NonceCountTracker`.
    ``lookup(username)`` returns that user's password, or None when unknown.
    """

    __slots__ = ("_realm", "_codec", "_lifetime", "_algorithms", "_opaque", "_tracker")

    def __init__(
        self,
        realm: str,
        secret_key: bytes,
        *,
        nonce_lifetime: float = 300.0,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        opaque: str | None = None,
        max_tracked_nonces: int = 10_000,
    ) -> None:
        """Raises:
        ValueError: short key, non-positive lifetime, empty or unknown algorithms, or a
            realm/opaque holding a control character.
        """
        if not algorithms:
            raise ValueError("at least one digest algorithm is required")
        try:
            names = {_canonical_algorithm(a) for a in algorithms}
        except UnsupportedDigestError as exc:
            raise ValueError(str(exc)) from None
        if nonce_lifetime <= 0:
            raise ValueError("nonce_lifetime must be positive")
        self._realm = realm
        self._codec = NonceCodec(secret_key, realm)
        self._lifetime = float(nonce_lifetime)
        # Challenge order: strongest first (RFC 7616 section 3.7).
        self._algorithms = tuple(a for a in ALGORITHMS if a in names)
        if opaque is None:
            # Derived, not random: every process sharing the key sends the same opaque.
            opaque = hmac.new(secret_key, b"acs-security digest opaque", hashlib.sha256).hexdigest()[:24]
        self._opaque = opaque
        self._tracker = NonceCountTracker(lifetime=self._lifetime, max_nonces=max_tracked_nonces)
        render_params("Digest", [("realm", realm, True), ("opaque", opaque, True)])  # validates

    def __repr__(self) -> str:
        return f"DigestVerifier(realm={self._realm!r}, algorithms={self._algorithms!r})"

    @property
    def realm(self) -> str:
        return self._realm

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self._algorithms

    @property
    def tracked_nonces(self) -> int:
        return len(self._tracker)

    def challenge(self, now: float, random_bytes: bytes, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` values, one per algorithm, strongest first, one nonce.

        Only non-session algorithms are offered in challenges when both forms are
        configured; ``-sess`` answers are accepted for any configured base algorithm.

        Raises:
            ValueError: ``random_bytes`` is not 8 to 32 bytes, or ``now`` is negative.
        """
        nonce = self._codec.mint(now, random_bytes)
        values = []
        for algorithm in self._algorithms:
            if algorithm.endswith("-sess") and algorithm[: -len("-sess")] in self._algorithms:
                continue
            params: list[tuple[str, str, bool]] = [
                ("realm", self._realm, True),
                ("qop", "auth", True),
                ("algorithm", algorithm, False),
                ("nonce", nonce, True),
                ("opaque", self._opaque, True),
                ("charset", "UTF-8", False),
            ]
            if stale:
                params.append(("stale", "true", False))
            values.append(render_params("Digest", params))
        return values

    def _accepts(self, algorithm: str) -> bool:
        if algorithm in self._algorithms:
            return True
        return algorithm.endswith("-sess") and algorithm[: -len("-sess")] in self._algorithms

    def verify(
        self,
        method: str,
        uri: str,
        authorization: str | None,
        now: float,
        lookup: Callable[[str], str | None],
    ) -> AuthResult:
        """Check one request's ``Authorization`` value. Never raises for peer input.

        ``uri`` is the request-target exactly as received; the header's ``uri`` must
        equal it (RFC 7616 section 3.4.6). A correct answer to an expired nonce gives
        ``STALE_NONCE`` (answer with ``challenge(..., stale=True)``). A successful
        check records the nonce-count, so the same header is refused the second time by
        this verifier, and returns it as ``nonce_use`` for a record shared by processes.

        Raises:
            Whatever ``lookup`` raises (a store failure is the caller's to answer, 500);
            nothing for what the peer sent.
        """
        if authorization is None or not authorization.strip():
            return AuthResult.failure(AuthFailure.MISSING, "no Authorization header")
        try:
            creds = parse_digest_credentials(authorization)
        except UnsupportedDigestError as exc:
            return AuthResult.failure(AuthFailure.UNSUPPORTED, str(exc))
        except AuthHeaderError as exc:
            try:
                scheme = parse_authorization(authorization).scheme
            except AuthHeaderError:
                scheme = "digest"
            if scheme != "digest":
                return AuthResult.failure(AuthFailure.WRONG_SCHEME, f"scheme {scheme[:16]!r} is not Digest")
            return AuthResult.failure(AuthFailure.MALFORMED, str(exc))
        user = creds.username
        alg = creds.algorithm
        if not self._accepts(alg):
            return AuthResult.failure(AuthFailure.UNSUPPORTED, f"algorithm {alg} not offered", user, alg)
        if creds.realm != self._realm:
            return AuthResult.failure(AuthFailure.BAD_REALM, "realm does not match", user, alg)
        if creds.uri != uri:
            return AuthResult.failure(AuthFailure.BAD_URI, "uri does not match the request target", user, alg)
        if creds.opaque is None or not hmac.compare_digest(
            creds.opaque.encode("utf-8", "surrogatepass"), self._opaque.encode("utf-8", "surrogatepass")
        ):
            return AuthResult.failure(AuthFailure.BAD_OPAQUE, "opaque missing or altered", user, alg)
        issued_at = self._codec.issued_at(creds.nonce)
        if issued_at is None:
            return AuthResult.failure(
                AuthFailure.INVALID_NONCE, "nonce was not issued by this server", user, alg
            )
        password = lookup(user)
        try:
            expected = compute_response(
                algorithm=alg,
                username=user,
                realm=creds.realm,
                # An unknown user still costs one hash, so timing does not tell names apart.
                password=password if password is not None else "\x00unknown",
                method=method,
                uri=creds.uri,
                nonce=creds.nonce,
                nc=creds.nc,
                cnonce=creds.cnonce,
                qop=creds.qop,
            )
        except ValueError:
            return AuthResult.failure(
                AuthFailure.MALFORMED, "credentials are not valid UTF-8 text", user, alg
            )
        answer_ok = hmac.compare_digest(
            expected.encode("ascii"), creds.response.lower().encode("utf-8", "surrogatepass")
        )
        if password is None:
            return AuthResult.failure(AuthFailure.UNKNOWN_USER, "unknown user", user, alg)
        if not answer_ok:
            return AuthResult.failure(AuthFailure.BAD_RESPONSE, "wrong digest response", user, alg)
        # Clock stepped back far past issue: treat like expiry so the client re-fetches.
        if now - issued_at > self._lifetime or issued_at - now > 60:
            return AuthResult.failure(AuthFailure.STALE_NONCE, "nonce expired", user, alg)
        nc = int(creds.nc, 16)
        verdict = self._tracker.check_and_record(creds.nonce, issued_at, nc, now)
        if verdict is ReplayVerdict.REPLAYED:
            return AuthResult.failure(AuthFailure.REPLAYED_NONCE, "nonce count already used", user, alg)
        if verdict is ReplayVerdict.FORGOTTEN:
            return AuthResult.failure(AuthFailure.STALE_NONCE, "nonce no longer tracked", user, alg)
        # This process's record is not another node's: the caller records the use where
        # every node sees it (server/cpe_auth.py), see nonces.py.
        return AuthResult.success(user, alg, NonceUse(creds.nonce, nc, issued_at + self._lifetime))
