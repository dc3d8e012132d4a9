"""Authentication of the phones that open CWMP sessions (TR-069 section 3.4.4).

Three ways, checked in this order:
1. a client certificate (mutual TLS): the handshake already proved it chains to the
   configured CA; here it must also belong to the device of the Inform (serial number or
   CN, as configured), so one phone's certificate cannot open another phone's session;
2. HTTP digest (RFC 7616: SHA-256 and MD5, qop=auth, expiring server nonces, replayed
   nonce/nc refused) with the credential kept in the store for that device, its serial, or
   the shared one;
3. HTTP basic, only over TLS unless the operator allows it in clear (TR-069 section 3.4.4
   forbids basic without TLS).

Refusals are 401 (with a fresh challenge) or 403 and are logged with the reason and the
device, never with a password or a digest response.

A digest nonce-count is accepted once across every node on the database, not only by
the node that checked it (RFC 7616 section 3.4; store/nonces.py): with several nodes
behind a load balancer, a header captured on one node is refused on the others too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.httpauth import basic as basic_auth
from acs_security.httpauth.digest import DigestVerifier
from acs_security.httpauth.nonces import NonceUse
from acs_security.store.errors import StoreUnavailable

__all__ = ["AuthDecision", "CpeAuthenticator", "StoreNonceUses", "certificate_identities"]

log = Logger(namespace="acs_security.cwmp")


@dataclass(frozen=True, slots=True)
class AuthDecision:
    ok: bool
    scheme: str  # certificate, digest, basic, none
    username: str | None = None
    status: int = 200
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    reason: str = ""


def certificate_identities(cert: x509.Certificate) -> tuple[str | None, str | None]:
    """(subject serialNumber, subject CN) of a client certificate, either may be None."""
    serial = cn = None
    for attr in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        serial = str(attr.value)
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        cn = str(attr.value)
    return serial, cn


class StoreNonceUses:
    """Digest nonce uses recorded in the store, where every node sees them (store/nonces.py).

    ``store`` is a DeferredStore (``call(method, *args)`` returns a Deferred); the record
    joins the session's group commit. Records of expired nonces are purged at most every
    ``purge_every`` seconds, on the way of a use (no timer: with no phone authenticating
    nothing is added either), ``grace`` seconds after they expire so that a node whose
    clock lags still finds the record while it accepts the nonce.
    """

    def __init__(self, store: Any, clock: IReactorTime, *, purge_every: float = 60.0,
                 grace: float = 60.0) -> None:
        self._store = store
        self._clock = clock
        self._purge_every = purge_every
        self._grace = grace
        self._next_purge = 0.0
        self._purging = False

    async def use(self, use: NonceUse) -> bool:
        """True when no node accepted this nonce-count (or a higher one) before. Raises
        the store's error (StoreUnavailable: the session is answered 503)."""
        fresh = await self._store.call("use_digest_nonce", use.nonce, use.nc,
                                       datetime.fromtimestamp(use.expires_at, UTC))
        self._maybe_purge()
        return bool(fresh)

    def _maybe_purge(self) -> None:
        now = self._clock.seconds()
        if self._purging or now < self._next_purge:
            return
        self._next_purge = now + self._purge_every
        self._purging = True

        def failed(failure: Failure) -> None:
            # An outage is logged once by the store's watch (server/outages.py).
            if not failure.check(StoreUnavailable):
                log.warn("cannot purge expired digest nonces: {error}", error=failure.getErrorMessage())

        def done(result: Any) -> Any:
            self._purging = False
            return result

        self._store.call("purge_digest_nonces", datetime.fromtimestamp(now - self._grace, UTC)
                         ).addErrback(failed).addBoth(done)


class CpeAuthenticator:
    """Decides whether the first request of a session comes from the device it claims to be."""

    def __init__(
        self,
        *,
        find_credential: Callable[..., Any],
        verifier: DigestVerifier,
        clock: IReactorTime,
        random_bytes: Callable[[int], bytes],
        allow_basic: bool = True,
        allow_insecure_basic: bool = False,
        client_cert_match: str = "serial",
        realm: str = "acs-security",
        nonce_uses: Callable[[NonceUse], Awaitable[bool]] | None = None,
    ) -> None:
        # find_credential(device_id=..., serial_number=...) -> Deferred[Credential | None]
        self._find = find_credential
        # nonce_uses(use) -> True when no other node accepted it first (StoreNonceUses.use);
        # None: this process's record alone (one node, or tests).
        self._nonce_uses = nonce_uses
        self._verifier = verifier
        self._clock = clock
        self._random = random_bytes
        self._allow_basic = allow_basic
        self._allow_insecure_basic = allow_insecure_basic
        self._match = client_cert_match
        self._realm = realm

    def challenge_headers(self, *, is_tls: bool, stale: bool = False) -> tuple[tuple[str, str], ...]:
        values = self._verifier.challenge(self._clock.seconds(), self._random(16), stale=stale)
        headers = [("WWW-Authenticate", v) for v in values]
        if self._allow_basic and (is_tls or self._allow_insecure_basic):
            headers.append(("WWW-Authenticate", basic_auth.basic_challenge(self._realm)))
        return tuple(headers)

    def _refuse(self, reason: str, *, is_tls: bool, stale: bool = False) -> AuthDecision:
        return AuthDecision(
            ok=False,
            scheme="none",
            status=401,
            headers=self.challenge_headers(is_tls=is_tls, stale=stale),
            reason=reason,
        )

    def check_certificate(
        self, cert: x509.Certificate, *, device_id: str, serial_number: str
    ) -> AuthDecision:
        cert_serial, cert_cn = certificate_identities(cert)
        by_serial = cert_serial is not None and cert_serial == serial_number
        by_cn = cert_cn is not None and cert_cn in (serial_number, device_id)
        matched = {"serial": by_serial, "cn": by_cn, "either": by_serial or by_cn}[self._match]
        if matched:
            return AuthDecision(ok=True, scheme="certificate", username=cert_cn or cert_serial)
        return AuthDecision(
            ok=False,
            scheme="certificate",
            status=403,
            reason=(
                f"client certificate (serialNumber={cert_serial!r}, CN={cert_cn!r}) does not "
                f"belong to device {device_id} (match by {self._match})"
            ),
        )

    async def authenticate(
        self,
        *,
        method: str,
        uri: str,
        authorization: Sequence[str],
        is_tls: bool,
        peer_certificate: x509.Certificate | None,
        device_id: str,
        serial_number: str,
    ) -> AuthDecision:
        """Decide on the Inform's request. Never raises for anything the peer sent; raises
        the store's StoreError when the credential or the nonce record cannot be read or
        written (the caller answers 503)."""
        if peer_certificate is not None:
            return self.check_certificate(
                peer_certificate, device_id=device_id, serial_number=serial_number
            )
        if not authorization:
            return self._refuse("no credentials", is_tls=is_tls)
        header = authorization[0]
        scheme = header.split(None, 1)[0].lower() if header.strip() else ""
        if scheme == "digest":
            credential = await self._find(device_id=device_id, serial_number=serial_number)
            expected_user = credential.username if credential is not None else None

            def lookup(username: str) -> str | None:
                if credential is not None and username == expected_user:
                    return credential.password
                return None

            result = self._verifier.verify(method, uri, header, self._clock.seconds(), lookup)
            if result.ok:
                if (self._nonce_uses is not None and result.nonce_use is not None
                        and not await self._nonce_uses(result.nonce_use)):
                    # RFC 7616 section 3.4: a replayed nonce-count, accepted first by another node.
                    return self._refuse("digest: nonce count already used (on another node)",
                                        is_tls=is_tls)
                return AuthDecision(ok=True, scheme="digest", username=result.username)
            if credential is None:
                reason = "no credential configured for this device"
            else:
                reason = f"digest: {result.reason}"
            return self._refuse(reason, is_tls=is_tls, stale=bool(getattr(result, "stale", False)))
        if scheme == "basic":
            if not self._allow_basic:
                return self._refuse("basic authentication is disabled", is_tls=is_tls)
            if not is_tls and not self._allow_insecure_basic:
                return self._refuse("basic authentication refused over plain HTTP", is_tls=is_tls)
            try:
                username, password = basic_auth.parse_basic(header)
            except Exception:  # noqa: BLE001 - any malformed header is a refusal, not a crash
                return self._refuse("malformed basic credentials", is_tls=is_tls)
            credential = await self._find(device_id=device_id, serial_number=serial_number)
            if credential is not None and basic_auth.credentials_match(
                username, password, credential.username, credential.password
            ):
                return AuthDecision(ok=True, scheme="basic", username=username)
            return self._refuse("basic: wrong username or password", is_tls=is_tls)
        return self._refuse(f"unsupported authorization scheme {scheme[:20]!r}", is_tls=is_tls)
