"""HttpConnectionRequester with a DigestNonceCache: the second request to a phone carries
Authorization at once (RFC 7616 section 3.3/3.4, nonce count), in memory.

The phone side is the real DigestProtectedResource + DigestVerifier (what the simulated
phones use), reached through treq's RequestTraversalAgent; time is a task.Clock. Every
request the phone sees goes through ``Recording``, so legs are counted exactly.
"""

from __future__ import annotations

import itertools
from typing import Any

from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Request

from acs_security.connreq.digest_cache import DigestNonceCache, cache_key
from acs_security.connreq.http_client import ConnectionRequestResult, HttpConnectionRequester, ResultKind
from acs_security.httpauth.digest import DigestVerifier, parse_digest_credentials
from acs_security.httpauth.result import AuthFailure, AuthResult
from acs_security.httpauth.twisted_resource import DigestProtectedResource

NOW = 1_700_000_000.0
URL = "http://192.0.2.10:7547/cr/4f2a"
USER, PASSWORD = "acs", "phone-secret-77"


class Accept(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's interface name
        request.setResponseCode(200)
        return b""


class Recording(Resource):
    """Records each request's Authorization, then hands it to the digest-guarded phone."""

    isLeaf = True

    def __init__(self, inner: Resource) -> None:
        super().__init__()
        self.inner = inner
        self.authorizations: list[bytes | None] = []

    def render(self, request: Request) -> Any:
        self.authorizations.append(request.getHeader(b"authorization"))
        return self.inner.render(request)


class Phone:
    def __init__(self, clock: Clock, *, key: bytes = b"phone-key-0123456789", lifetime: float = 300.0,
                 password: str = PASSWORD) -> None:
        self.results: list[AuthResult] = []
        self.password = password
        self.clock = clock
        counter = itertools.count(1)
        self.verifier = DigestVerifier("phone", key, nonce_lifetime=lifetime)
        self.resource = Recording(DigestProtectedResource(
            Accept(), self.verifier, lambda user: self.password if user == USER else None, clock,
            lambda n: next(counter).to_bytes(n, "big"), on_result=self.results.append,
        ))

    def legs(self) -> int:
        return len(self.resource.authorizations)

    def reasons(self) -> list[AuthFailure | None]:
        return [r.reason for r in self.results]

    def restart(self, key: bytes) -> None:
        """A rebooted phone: a new nonce key, so it knows none of the nonces it gave out."""
        self.resource.inner = DigestProtectedResource(
            Accept(), DigestVerifier("phone", key), lambda user: self.password if user == USER else None,
            self.clock, lambda n: b"\x07" * n, on_result=self.results.append)


def make_clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


def requester(phone: Phone, clock: Clock, cache: DigestNonceCache | None) -> HttpConnectionRequester:
    counter = itertools.count(1)
    return HttpConnectionRequester(RequestTraversalAgent(phone.resource), clock,
                                   nonce_source=lambda n: next(counter).to_bytes(n, "big"), digest_cache=cache)


def result_of(d: Deferred[ConnectionRequestResult]) -> ConnectionRequestResult:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    value = out[0]
    assert isinstance(value, ConnectionRequestResult), value
    return value


def nc_of(authorization: bytes | None) -> str | None:
    assert authorization is not None
    return parse_digest_credentials(authorization.decode()).nc


def test_first_request_two_legs_second_one_leg_with_nc_2() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cache = DigestNonceCache()
    cr = requester(phone, clock, cache)
    first = result_of(cr.request(URL, USER, PASSWORD))
    assert first.kind is ResultKind.ACCEPTED and phone.legs() == 2
    clock.advance(30)
    second = result_of(cr.request(URL, USER, PASSWORD))
    assert second == ConnectionRequestResult(ResultKind.ACCEPTED, 200, auth="digest-SHA-256")
    assert phone.legs() == 3  # one request for the second connection request
    creds = [parse_digest_credentials(a.decode()) for a in phone.resource.authorizations[1:] if a]
    assert [c.nc for c in creds] == ["00000001", "00000002"]
    assert creds[0].nonce == creds[1].nonce and creds[0].cnonce != creds[1].cnonce  # fresh cnonce
    third = result_of(cr.request(URL, USER, PASSWORD))
    assert third.ok and phone.legs() == 4 and nc_of(phone.resource.authorizations[-1]) == "00000003"
    assert phone.reasons() == [AuthFailure.MISSING, None, None, None]
    assert (cache.accepted, cache.refused) == (2, 0)


def test_without_a_cache_every_request_is_two_legs() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, None)
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    assert phone.legs() == 4 and phone.resource.authorizations[2] is None


def test_stale_nonce_costs_one_fresh_leg_and_succeeds() -> None:
    clock = make_clock()
    phone = Phone(clock, lifetime=60)  # the phone forgets nonces sooner than the cache's 240 s
    cache = DigestNonceCache()
    cr = requester(phone, clock, cache)
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    clock.advance(100)
    result = result_of(cr.request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ACCEPTED
    assert phone.legs() == 4  # pre-emptive (401 stale=true) + the answer to the new nonce
    assert phone.reasons()[2:] == [AuthFailure.STALE_NONCE, None]
    assert (cache.accepted, cache.refused) == (0, 1)
    # The new nonce is remembered: the next request is one leg again, nc 2 of the new nonce.
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    assert phone.legs() == 5 and nc_of(phone.resource.authorizations[-1]) == "00000002"


def test_phone_that_forgot_the_nonce_gets_the_new_challenge_answered_not_auth_failed() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, DigestNonceCache())
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    phone.restart(b"another-key-after-reboot")  # 401 without stale: not its nonce, nor opaque
    result = result_of(cr.request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ACCEPTED
    assert phone.legs() == 4
    assert phone.reasons()[2:] == [AuthFailure.BAD_OPAQUE, None]


def test_wrong_password_after_a_cached_nonce_is_auth_failed_after_the_fresh_leg() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cache = DigestNonceCache()
    cr = requester(phone, clock, cache)
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    phone.password = "changed-on-the-phone"
    result = result_of(cr.request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.AUTH_FAILED and result.status == 401
    # The pre-emptive answer refused is not the verdict; the answer to the fresh challenge
    # is: 2 requests, as without the cache (GET, answer).
    assert phone.legs() == 4
    assert phone.reasons()[2:] == [AuthFailure.BAD_RESPONSE, AuthFailure.BAD_RESPONSE]
    assert len(cache) == 0  # a refused nonce is not tried again
    # With the password the phone holds, the next request starts afresh and succeeds.
    assert result_of(cr.request(URL, USER, "changed-on-the-phone")).ok
    assert phone.legs() == 6 and phone.resource.authorizations[4] is None


def test_expired_entry_is_not_used() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, DigestNonceCache(max_age=240))
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    clock.advance(241)
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    assert phone.legs() == 4 and phone.resource.authorizations[2] is None
    assert phone.reasons()[2:] == [AuthFailure.MISSING, None]


def test_bound_evicts_the_oldest_phone() -> None:
    clock = make_clock()
    phone = Phone(clock)  # one resource stands for three phones at three paths
    cache = DigestNonceCache(max_entries=2)
    cr = requester(phone, clock, cache)
    urls = [f"http://192.0.2.10:7547/cr/{n}" for n in ("a", "b", "c")]
    for url in urls:
        assert result_of(cr.request(url, USER, PASSWORD)).ok
    assert len(cache) == 2 and phone.legs() == 6
    assert result_of(cr.request(urls[2], USER, PASSWORD)).ok
    assert phone.legs() == 7  # still cached: one leg
    assert result_of(cr.request(urls[0], USER, PASSWORD)).ok
    assert phone.legs() == 9  # evicted: two legs


def test_another_username_does_not_reuse_the_entry() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, DigestNonceCache())
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    result = result_of(cr.request(URL, "other", PASSWORD))
    assert result.kind is ResultKind.AUTH_FAILED
    assert phone.resource.authorizations[2] is None  # no pre-emptive answer for "other"


def test_replayed_nonce_count_is_refused_by_the_phone() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, DigestNonceCache())
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    replay = phone.resource.authorizations[-1]
    assert replay is not None
    result = phone.verifier.verify("GET", "/cr/4f2a", replay.decode(), clock.seconds(), {USER: PASSWORD}.get)
    assert result.reason is AuthFailure.REPLAYED_NONCE


class Scripted(Resource):
    """Answers each request with the next (status, WWW-Authenticate) in the script."""

    isLeaf = True

    def __init__(self, *script: tuple[int, bytes | None]) -> None:
        super().__init__()
        self.script = list(script)
        self.authorizations: list[bytes | None] = []

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's interface name
        self.authorizations.append(request.getHeader(b"authorization"))
        code, challenge = self.script.pop(0)
        request.setResponseCode(code)
        if challenge is not None:
            request.setHeader(b"www-authenticate", challenge)
        return b""


def test_worst_case_with_a_cached_nonce_is_three_requests_as_without() -> None:
    # Pre-emptive refused, the fresh answer called stale, one more answer: the same three
    # requests as without the cache (GET, answer, stale answer), and success.
    clock = make_clock()
    cache = DigestNonceCache()
    first = b'Digest realm="phone", qop="auth", algorithm=MD5, nonce="n0", opaque="o"'
    phone = Scripted((401, first), (200, None))
    cr = HttpConnectionRequester(RequestTraversalAgent(phone), clock, nonce_source=lambda n: b"\x01" * n,
                                 digest_cache=cache)
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    phone.script = [
        (401, b'Digest realm="phone", qop="auth", algorithm=MD5, nonce="n1", opaque="o"'),
        (401, b'Digest realm="phone", qop="auth", algorithm=MD5, nonce="n2", opaque="o", stale=true'),
        (200, None),
    ]
    result = result_of(cr.request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ACCEPTED
    nonces = [parse_digest_credentials(a.decode()).nonce for a in phone.authorizations[2:] if a]
    assert nonces == ["n0", "n1", "n2"]
    assert len(phone.authorizations) == 5
    reuse = cache.take(cache_key("http://192.0.2.10:7547/cr/4f2a", USER), clock.seconds())
    assert reuse is not None and reuse.challenge.nonce == "n2" and not reuse.challenge.stale


def test_no_credential_never_uses_the_cache() -> None:
    clock = make_clock()
    phone = Phone(clock)
    cr = requester(phone, clock, DigestNonceCache())
    assert result_of(cr.request(URL, USER, PASSWORD)).ok
    result = result_of(cr.request(URL, None, None))
    assert result.kind is ResultKind.NEEDS_CREDENTIAL
    assert phone.resource.authorizations[2] is None and phone.legs() == 3


def test_basic_is_not_cached() -> None:
    clock = make_clock()
    cache = DigestNonceCache()
    phone = Scripted((401, b'Basic realm="phone"'), (200, None), (401, b'Basic realm="phone"'), (200, None))
    cr = HttpConnectionRequester(RequestTraversalAgent(phone), clock, nonce_source=lambda n: b"\x01" * n,
                                 allow_basic=True, digest_cache=cache)
    assert result_of(cr.request(URL, USER, PASSWORD)).auth == "basic"
    assert result_of(cr.request(URL, USER, PASSWORD)).auth == "basic"
    assert phone.authorizations[0] is None and phone.authorizations[2] is None
    assert len(cache) == 0
