"""HTTP connection requests from the ACS to phones (TR-069 section 3.2.2), over Twisted.

``GET`` to the phone's ConnectionRequestURL, first without credentials; the phone answers
401 with a digest challenge (TR-069 section 3.2.2: the CPE must authenticate the ACS with
digest, MD5 or SHA-256), the ACS answers once with the ConnectionRequestUsername/Password,
and 200/204 means the phone will open a session with event ``6 CONNECTION REQUEST``.
With no credential configured for the phone (username None), the request goes without
one: a phone whose listener asks for none (TR-069 allows the CPE to skip authentication of
the request) accepts it, and one that challenges gets no answer and the result says it
needs a connection-request credential.
503 means busy or rate-limited. Outcomes are values (:class:`ConnectionRequestResult`),
not exceptions, so the fleet engine can count and schedule them.

Collaborators are constructor arguments: an ``IAgent`` (``twisted.web.client.Agent`` in
production, ``treq.testing.RequestTraversalAgent`` in tests), an ``IReactorTime`` for the
deadline and backoff, and the randomness sources. The password is used to compute the
answer and goes nowhere else: not into log events, results or exception messages.

With a :class:`~acs_security.connreq.digest_cache.DigestNonceCache`, a phone that accepted
a digest answer recently gets the next request with ``Authorization`` at once (its nonce,
nc+1, RFC 7616 section 3.3/3.4): one request instead of two. A 401 to that pre-emptive
answer is never a verdict on the password: its challenge is answered as a first answer
would be, so the worst case stays three requests, as without the cache.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import URI, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse

from acs_security.connreq.digest_cache import DigestNonceCache, NonceReuse, cache_key
from acs_security.connreq.policy import BackoffPolicy, parse_retry_after
from acs_security.httpauth.basic import basic_authorization
from acs_security.httpauth.digest import (
    DigestChallenge,
    UnsupportedDigestError,
    digest_authorization,
    select_digest_challenge,
)
from acs_security.httpauth.headers import AuthHeaderError, parse_challenges

__all__ = [
    "RETRYABLE",
    "ConnectionRequestResult",
    "ConnectionRequester",
    "HttpConnectionRequester",
    "ResultKind",
    "RetryingConnectionRequester",
]

_T = TypeVar("_T")
# A connection-request answer has no meaningful body; read at most this much of it.
_MAX_BODY = 64 * 1024


class ResultKind(enum.StrEnum):
    ACCEPTED = "accepted"  # 200 or 204: the phone will call in
    BUSY = "busy"  # 503 (retry_after set when the phone sent Retry-After)
    AUTH_FAILED = "auth_failed"  # 401 after the ACS answered the challenge
    NEEDS_CREDENTIAL = "needs_credential"  # 401 to a request sent without a credential (none configured)
    REFUSED = "refused"  # TCP connection refused
    TIMEOUT = "timeout"  # no complete answer within the timeout
    ERROR = "error"  # other status, DNS failure, bad URL, unusable challenge, ...


# What a retry may fix. auth_failed never: retrying a wrong password locks phones out.
RETRYABLE = frozenset({ResultKind.BUSY, ResultKind.TIMEOUT, ResultKind.REFUSED})


@dataclass(frozen=True, slots=True)
class ConnectionRequestResult:
    """Outcome of one connection request (after retries, ``attempts`` counts them)."""

    kind: ResultKind
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""
    auth: str | None = None  # "digest-SHA-256", "digest-MD5", "basic" or None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.kind is ResultKind.ACCEPTED


class ConnectionRequester(Protocol):
    """Anything that sends one connection request and reports the outcome."""

    def request(self, url: str, username: str | None, password: str | None
                ) -> Deferred[ConnectionRequestResult]: ...


class _Timeout(Exception):
    """The request's deadline passed (internal)."""


class _Discard(TwistedProtocol):
    """Reads and drops a response body, aborting past ``limit`` bytes."""

    def __init__(self, done: Deferred[None], limit: int) -> None:
        self._done = done
        self._left = limit

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        self._left -= len(data)
        if self._left < 0 and self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure | None = None) -> None:  # type: ignore[override]  # noqa: N802 - Twisted's interface name
        if not self._done.called:
            self._done.callback(None)


@dataclass(frozen=True, slots=True)
class _Target:
    url: bytes
    request_target: str  # what the request line carries, and what digest signs
    safe: str  # for logs: no userinfo, no query


def _parse_target(url: str) -> _Target | str:
    """The parsed URL, or a reason it cannot be used (never quoting the URL)."""
    if not url.isascii():
        return "URL is not ASCII"
    try:
        parsed = URI.fromBytes(url.encode("ascii"))
    except Exception:  # noqa: BLE001 - any unparsable URL is one precise answer
        return "URL cannot be parsed"
    if parsed.scheme not in (b"http", b"https"):
        return "URL scheme is not http or https"
    if not parsed.host:
        return "URL has no host"
    if b"@" in parsed.netloc:
        return "URL carries userinfo; give credentials separately"
    safe = f"{parsed.scheme.decode()}://{parsed.netloc.decode()}{parsed.path.decode() or '/'}"
    return _Target(url.encode("ascii"), parsed.originForm.decode("ascii"), safe)


class HttpConnectionRequester:
    """Sends one HTTP connection request, answering a digest (or allowed basic) challenge.

    ``timeout`` bounds the whole exchange (both legs), measured on ``clock``.
    ``nonce_source(n)`` returns n random bytes for the digest cnonce. ``allow_basic``
    lets the ACS answer a phone that offers only Basic (its password then travels in
    clear unless the URL is https; off by default). ``digest_cache`` turns on nonce reuse
    (None: every request starts without credentials, as before).
    """

    def __init__(
        self,
        agent: IAgent,
        clock: IReactorTime,
        *,
        nonce_source: Callable[[int], bytes],
        timeout: float = 10.0,
        allow_basic: bool = False,
        digest_cache: DigestNonceCache | None = None,
        log: Logger | None = None,
    ) -> None:
        """Raises:
        ValueError: timeout is not positive.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._agent = agent
        self._clock = clock
        self._nonce_source = nonce_source
        self._timeout = float(timeout)
        self._allow_basic = allow_basic
        self._cache = digest_cache
        self._log = log if log is not None else Logger(namespace="acs_security.connreq.http")

    def request(self, url: str, username: str | None, password: str | None
                ) -> Deferred[ConnectionRequestResult]:
        """Send the request (without a credential when ``username`` is None). The Deferred
        always fires with a result (or CancelledError when the caller cancels it)."""
        return Deferred.fromCoroutine(self._request(url, username, password))

    async def _within(self, d: Deferred[_T], deadline: float) -> _T:
        remaining = deadline - self._clock.seconds()
        fired: list[bool] = []

        def expire() -> None:
            fired.append(True)
            d.cancel()

        if remaining <= 0:
            expire()
        call: IDelayedCall | None = None if fired else self._clock.callLater(remaining, expire)
        try:
            return await d
        except Exception as exc:
            if fired:
                raise _Timeout() from None
            if isinstance(_root_cause(exc), CancelledError):
                # The caller cancelled us (Agent wraps that in ResponseNeverReceived).
                raise CancelledError() from None
            raise
        finally:
            if call is not None and call.active():
                call.cancel()

    async def _get(self, target: _Target, authorization: str | None, deadline: float) -> IResponse:
        headers = Headers({b"user-agent": [b"acs-security"]})
        if authorization is not None:
            headers.setRawHeaders(b"authorization", [authorization.encode("utf-8")])
        response: IResponse = await self._within(
            self._agent.request(b"GET", target.url, headers, None), deadline
        )
        return response

    async def _drain(self, response: IResponse, deadline: float) -> None:
        done: Deferred[None] = Deferred()
        response.deliverBody(_Discard(done, _MAX_BODY))
        try:
            await self._within(done, deadline)
        except _Timeout:
            pass  # the status is what counts; a body that never ends is dropped

    @property
    def digest_cache(self) -> DigestNonceCache | None:
        return self._cache

    def _answer(
        self, challenges: list[bytes], target: _Target, username: str, password: str
    ) -> tuple[str, str, DigestChallenge | None] | str:
        """(Authorization value, auth label, the digest challenge answered or None for
        basic), or why the challenge cannot be answered."""
        if not challenges:
            return "401 without WWW-Authenticate"
        texts = [raw.decode("latin-1") for raw in challenges]
        try:
            parsed = parse_challenges(texts)
        except AuthHeaderError as exc:
            return f"malformed WWW-Authenticate: {exc}"
        digest_problem = ""
        if any(c.scheme == "digest" for c in parsed):
            try:
                chosen = select_digest_challenge(parsed)
            except (UnsupportedDigestError, AuthHeaderError) as exc:
                digest_problem = str(exc)
            else:
                cnonce = self._nonce_source(16).hex()
                try:
                    value = digest_authorization(
                        chosen, "GET", target.request_target, username, password, cnonce, 1
                    )
                except ValueError as exc:  # includes AuthHeaderError; never names the password
                    return f"cannot answer digest challenge: {exc}"
                return value, f"digest-{chosen.algorithm}", chosen
        if any(c.scheme == "basic" for c in parsed):
            if not self._allow_basic:
                return "phone offers only Basic and basic is not allowed"
            try:
                return basic_authorization(username, password), "basic", None
            except ValueError as exc:
                return f"cannot answer basic challenge: {exc}"
        return digest_problem or "no supported authentication scheme offered"

    def _classify(self, response: IResponse, answered: bool, auth: str | None) -> ConnectionRequestResult:
        code = response.code
        if code in (200, 204):
            return ConnectionRequestResult(ResultKind.ACCEPTED, code, auth=auth)
        if code == 503:
            values = response.headers.getRawHeaders(b"retry-after") or []
            retry_after = (
                parse_retry_after(values[0].decode("latin-1"), self._clock.seconds()) if values else None
            )
            return ConnectionRequestResult(ResultKind.BUSY, code, retry_after, "phone busy", auth=auth)
        if code == 401 and answered:
            return ConnectionRequestResult(
                ResultKind.AUTH_FAILED, code, detail="credentials refused by the phone", auth=auth
            )
        return ConnectionRequestResult(
            ResultKind.ERROR, code, detail=f"unexpected HTTP status {code}", auth=auth
        )

    def _preemptive(self, cache: DigestNonceCache, key: str, target: _Target, username: str,
                    password: str) -> tuple[str, NonceReuse] | None:
        """An Authorization answering the phone's cached nonce with the next nc, or None."""
        reuse = cache.take(key, self._clock.seconds())
        if reuse is None:
            return None
        try:
            value = digest_authorization(reuse.challenge, "GET", target.request_target, username, password,
                                         self._nonce_source(16).hex(), reuse.nc)
        except ValueError:  # e.g. a password not encodable as UTF-8: go the plain way
            cache.forget(key)
            return None
        return value, reuse

    async def _exchange(self, target: _Target, username: str | None, password: str | None
                        ) -> ConnectionRequestResult:
        deadline = self._clock.seconds() + self._timeout
        # Nonce reuse needs a credential: without one the request goes bare, as before.
        cache: DigestNonceCache | None = None
        key, pre = "", None
        if self._cache is not None and username is not None and password is not None:
            cache, key = self._cache, cache_key(target.safe, username)
            pre = self._preemptive(cache, key, target, username, password)
        auth: str | None = None
        answered: DigestChallenge | None = None
        nc, received_at = 1, self._clock.seconds()
        if cache is not None and pre is not None:
            authorization, reuse = pre
            auth, answered, nc = f"digest-{reuse.challenge.algorithm}", reuse.challenge, reuse.nc
            received_at = reuse.received_at
            response = await self._get(target, authorization, deadline)
            cache.record_outcome(response.code != 401)
            if response.code == 401:
                # RFC 7616 section 3.3: the phone forgot the nonce or calls it stale. Not a
                # verdict on the password: its fresh challenge is answered below as a first
                # answer is (a 401 to that one is AUTH_FAILED), one request more at worst.
                cache.forget(key)
                auth, answered, nc = None, None, 1
        else:
            response = await self._get(target, None, deadline)
        # One answer to the challenge, plus one more only if the phone says our nonce
        # went stale meanwhile (RFC 7616 section 3.3: stale=true, retry without asking).
        for leg in range(2):
            if response.code != 401:
                break
            challenges = response.headers.getRawHeaders(b"www-authenticate") or []
            await self._drain(response, deadline)
            if username is None or password is None:
                return ConnectionRequestResult(ResultKind.NEEDS_CREDENTIAL, 401,
                                               detail="needs a connection-request credential")
            if leg == 1 and not _says_stale(challenges):
                return self._classify(response, True, auth)
            answer = self._answer(challenges, target, username, password)
            if isinstance(answer, str):
                return ConnectionRequestResult(ResultKind.ERROR, 401, detail=answer)
            authorization, auth, answered = answer
            nc, received_at = 1, self._clock.seconds()
            response = await self._get(target, authorization, deadline)
        result = self._classify(response, auth is not None, auth)
        if cache is not None and answered is not None and response.code in (200, 204, 503):
            # The phone took the answer (a 503 may come before or after its digest check;
            # either way the nonce was not refused): remember it for the next request.
            cache.remember(key, answered, nc, received_at)
        await self._drain(response, deadline)
        return result

    async def _request(self, url: str, username: str | None, password: str | None) -> ConnectionRequestResult:
        target = _parse_target(url)
        if isinstance(target, str):
            result = ConnectionRequestResult(ResultKind.ERROR, detail=target)
            self._log.warn("connection request refused before sending: {detail}", detail=target)
            return result
        try:
            result = await self._exchange(target, username, password)
        except _Timeout:
            result = ConnectionRequestResult(
                ResultKind.TIMEOUT, detail=f"no answer within {self._timeout:g} s"
            )
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every network failure becomes a result
            result = _classify_failure(exc)
        # An accepted request is routine (debug: the session line follows); a failed one is
        # worth a line at the default level.
        emit = self._log.debug if result.ok else self._log.info
        emit(
            "connection request to {url} as {username}: {kind} (status {status}, {auth}) {detail}",
            url=target.safe,
            username=username if username is not None else "(no credential)",
            kind=str(result.kind),
            status=result.status,
            auth=result.auth or "no auth",
            detail=result.detail,
        )
        return result


def _says_stale(challenges: list[bytes]) -> bool:
    try:
        parsed = parse_challenges([raw.decode("latin-1") for raw in challenges])
    except AuthHeaderError:
        return False
    return any(c.scheme == "digest" and (c.get("stale") or "").lower() == "true" for c in parsed)


def _root_cause(exc: BaseException) -> BaseException:
    # Agent wraps transport failures in ResponseFailed/RequestTransmissionFailed.
    reasons = getattr(exc, "reasons", None)
    if reasons:
        first = reasons[0]
        if isinstance(first, Failure) and isinstance(first.value, BaseException):
            return first.value
    return exc


def _classify_failure(exc: BaseException) -> ConnectionRequestResult:
    cause = _root_cause(exc)
    if isinstance(cause, net_error.ConnectionRefusedError):
        return ConnectionRequestResult(ResultKind.REFUSED, detail="connection refused")
    if isinstance(cause, (net_error.TimeoutError, net_error.TCPTimedOutError)):
        return ConnectionRequestResult(ResultKind.TIMEOUT, detail="connect timed out")
    if isinstance(cause, net_error.DNSLookupError):
        return ConnectionRequestResult(ResultKind.ERROR, detail="DNS lookup failed")
    if isinstance(exc, ResponseFailed):
        return ConnectionRequestResult(
            ResultKind.ERROR, detail=f"connection failed before a full answer ({type(cause).__name__})"
        )
    # The class name only: messages of arbitrary exceptions may quote the URL or headers.
    return ConnectionRequestResult(ResultKind.ERROR, detail=f"request failed: {type(cause).__name__}")


class RetryingConnectionRequester:
    """Retries busy / timeout / refused with capped exponential backoff and jitter.

    A 503's Retry-After is waited out exactly, unless it exceeds
    ``policy.max_retry_after``: then the busy result is returned at once so the job
    engine can schedule the phone later. ``auth_failed`` and ``error`` are never retried.
    ``random()`` returns a float in [0, 1) for the jitter.
    """

    def __init__(
        self,
        inner: ConnectionRequester,
        clock: IReactorTime,
        *,
        random: Callable[[], float],
        attempts: int = 3,
        policy: BackoffPolicy | None = None,
    ) -> None:
        """Raises:
        ValueError: attempts below 1.
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._inner = inner
        self._clock = clock
        self._random = random
        self._attempts = attempts
        self._policy = policy if policy is not None else BackoffPolicy()

    def request(self, url: str, username: str | None, password: str | None
                ) -> Deferred[ConnectionRequestResult]:
        """Like :meth:`HttpConnectionRequester.request`, with retries; ``attempts`` in
        the result says how many requests were sent."""
        coro: Coroutine[Any, Any, ConnectionRequestResult] = self._request(url, username, password)
        return Deferred.fromCoroutine(coro)

    async def _request(self, url: str, username: str | None, password: str | None) -> ConnectionRequestResult:
        attempt = 1
        while True:
            result = await self._inner.request(url, username, password)
            result = replace(result, attempts=attempt)
            if result.kind not in RETRYABLE or attempt >= self._attempts:
                return result
            if result.kind is ResultKind.BUSY and result.retry_after is not None:
                if result.retry_after > self._policy.max_retry_after:
                    return result
                delay = result.retry_after
            else:
                delay = self._policy.delay(attempt, self._random())
            await deferLater(self._clock, delay, lambda: None)
            attempt += 1
