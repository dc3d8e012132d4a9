"""HttpConnectionRequester and RetryingConnectionRequester, in memory.

The phone side is the real DigestProtectedResource (what the simulated phones use),
reached through treq's RequestTraversalAgent; time is a task.Clock.
"""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest
from treq.testing import RequestTraversalAgent
from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, Logger, formatEvent
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from acs_security.connreq.http_client import (
    ConnectionRequestResult,
    HttpConnectionRequester,
    ResultKind,
    RetryingConnectionRequester,
)
from acs_security.connreq.policy import BackoffPolicy
from acs_security.httpauth.basic import BasicVerifier
from acs_security.httpauth.digest import DigestVerifier
from acs_security.httpauth.result import AuthFailure, AuthResult
from acs_security.httpauth.twisted_resource import DigestProtectedResource

NOW = 1_700_000_000.0
URL = "http://192.0.2.10:7547/cr/4f2a"
USER, PASSWORD = "acs", "phone-secret-77"


class Accept(Resource):
    isLeaf = True

    def __init__(self, code: int = 200) -> None:
        super().__init__()
        self.code = code
        self.hits = 0

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's interface name
        self.hits += 1
        request.setResponseCode(self.code)
        return b""


class Scripted(Resource):
    """Answers each request with the next (status, headers) in the script."""

    isLeaf = True

    def __init__(self, *script: tuple[int, dict[bytes, bytes]]) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[bytes | None] = []

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's interface name
        self.requests.append(request.getHeader(b"authorization"))
        code, headers = self.script.pop(0)
        request.setResponseCode(code)
        for name, value in headers.items():
            request.setHeader(name, value)
        return b"body"


class Hang(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:  # noqa: N802 - Twisted's interface name
        return NOT_DONE_YET


class Phone:
    """A phone's connection-request endpoint guarded by digest, counting outcomes."""

    def __init__(self, clock: Clock, algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
                 inner: Resource | None = None) -> None:
        self.inner = inner if inner is not None else Accept()
        self.results: list[AuthResult] = []
        counter = itertools.count(1)
        self.resource = DigestProtectedResource(
            self.inner,
            DigestVerifier("phone", b"phone-key-0123456789", algorithms=algorithms),
            {USER: PASSWORD}.get,
            clock,
            lambda n: next(counter).to_bytes(n, "big"),
            on_result=self.results.append,
        )


def make_clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


def requester(agent: Any, clock: Clock, **kwargs: Any) -> HttpConnectionRequester:
    counter = itertools.count(1)
    return HttpConnectionRequester(agent, clock, nonce_source=lambda n: next(counter).to_bytes(n, "big"), **kwargs)


def result_of(d: Deferred[ConnectionRequestResult]) -> ConnectionRequestResult:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    value = out[0]
    assert isinstance(value, ConnectionRequestResult), value
    return value


@pytest.mark.parametrize(("offered", "used"), [(("MD5",), "MD5"), (("SHA-256",), "SHA-256"),
                                               (("SHA-256", "MD5"), "SHA-256")])
def test_digest_success(offered: tuple[str, ...], used: str) -> None:
    clock = make_clock()
    phone = Phone(clock, offered)
    result = result_of(requester(RequestTraversalAgent(phone.resource), clock).request(URL, USER, PASSWORD))
    assert result == ConnectionRequestResult(ResultKind.ACCEPTED, 200, auth=f"digest-{used}")
    assert [r.reason for r in phone.results] == [AuthFailure.MISSING, None]
    assert phone.results[1].algorithm == used


def test_204_and_query_string_uri_are_signed_correctly() -> None:
    clock = make_clock()
    phone = Phone(clock, inner=Accept(204))
    result = result_of(requester(RequestTraversalAgent(phone.resource), clock)
                       .request(URL + "?a=1&b=2", USER, PASSWORD))
    assert result.kind is ResultKind.ACCEPTED and result.status == 204


def test_wrong_password_is_auth_failed_after_exactly_one_answer() -> None:
    clock = make_clock()
    phone = Phone(clock)
    result = result_of(requester(RequestTraversalAgent(phone.resource), clock).request(URL, USER, "wrong"))
    assert result.kind is ResultKind.AUTH_FAILED and result.status == 401
    assert [r.reason for r in phone.results] == [AuthFailure.MISSING, AuthFailure.BAD_RESPONSE]
    assert phone.inner.hits == 0  # type: ignore[attr-defined]


def test_phone_without_authentication_is_accepted_directly() -> None:
    clock = make_clock()
    inner = Accept(204)
    result = result_of(requester(RequestTraversalAgent(inner), clock).request(URL, USER, PASSWORD))
    assert (result.kind, result.auth, inner.hits) == (ResultKind.ACCEPTED, None, 1)


def test_no_credential_reaches_a_listener_without_authentication() -> None:
    """Issue 19 item 4: with no credential configured, the request goes without one."""
    clock = make_clock()
    inner = Accept(200)
    result = result_of(requester(RequestTraversalAgent(inner), clock).request(URL, None, None))
    assert (result.kind, result.auth, inner.hits) == (ResultKind.ACCEPTED, None, 1)


def test_no_credential_against_a_challenge_says_one_is_needed() -> None:
    clock = make_clock()
    phone = Phone(clock)
    result = result_of(requester(RequestTraversalAgent(phone.resource), clock).request(URL, None, None))
    assert result.kind is ResultKind.NEEDS_CREDENTIAL and result.status == 401
    assert result.detail == "needs a connection-request credential"
    # One request, no answer to the challenge, nothing reached the phone's handler.
    assert [r.reason for r in phone.results] == [AuthFailure.MISSING]
    assert phone.inner.hits == 0  # type: ignore[attr-defined]


def test_stale_nonce_gets_one_more_answer() -> None:
    clock = make_clock()
    ch1 = b'Digest realm="phone", qop="auth", nonce="n1", algorithm=MD5'
    ch2 = b'Digest realm="phone", qop="auth", nonce="n2", algorithm=MD5, stale=true'
    phone = Scripted((401, {b"www-authenticate": ch1}), (401, {b"www-authenticate": ch2}), (200, {}))
    result = result_of(requester(RequestTraversalAgent(phone), clock).request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ACCEPTED
    assert phone.requests[0] is None
    assert b'nonce="n1"' in (phone.requests[1] or b"") and b'nonce="n2"' in (phone.requests[2] or b"")


def test_basic_only_when_allowed() -> None:
    clock = make_clock()
    basic = b'Basic realm="phone"'
    refused = Scripted((401, {b"www-authenticate": basic}))
    result = result_of(requester(RequestTraversalAgent(refused), clock).request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ERROR and "basic is not allowed" in result.detail
    assert len(refused.requests) == 1
    allowed = Scripted((401, {b"www-authenticate": basic}), (204, {}))
    result = result_of(requester(RequestTraversalAgent(allowed), clock, allow_basic=True).request(URL, USER, PASSWORD))
    assert (result.kind, result.auth) == (ResultKind.ACCEPTED, "basic")
    header = (allowed.requests[1] or b"").decode()
    assert BasicVerifier("phone").verify(header, {USER: PASSWORD}.get).ok


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "401 without WWW-Authenticate"),
        ({b"www-authenticate": b'Digest realm="unterminated'}, "malformed WWW-Authenticate"),
        ({b"www-authenticate": b'Digest realm="r", nonce="n", qop="auth-int"'}, "auth-int"),
        ({b"www-authenticate": b"Negotiate"}, "no supported authentication scheme"),
    ],
)
def test_unusable_challenges_are_errors_without_a_second_request(headers: dict[bytes, bytes], detail: str) -> None:
    clock = make_clock()
    phone = Scripted((401, headers))
    result = result_of(requester(RequestTraversalAgent(phone), clock).request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.ERROR and detail in result.detail and len(phone.requests) == 1


def test_busy_with_retry_after_and_other_statuses() -> None:
    clock = make_clock()
    busy = result_of(requester(RequestTraversalAgent(Scripted((503, {b"retry-after": b"7"}))), clock)
                     .request(URL, USER, PASSWORD))
    assert (busy.kind, busy.status, busy.retry_after) == (ResultKind.BUSY, 503, 7.0)
    plain = result_of(requester(RequestTraversalAgent(Scripted((503, {}))), clock).request(URL, USER, PASSWORD))
    assert plain.kind is ResultKind.BUSY and plain.retry_after is None
    other = result_of(requester(RequestTraversalAgent(Scripted((404, {}))), clock).request(URL, USER, PASSWORD))
    assert other.kind is ResultKind.ERROR and other.status == 404 and "404" in other.detail


def test_timeout_cancels_after_exactly_timeout_seconds() -> None:
    clock = make_clock()
    d = requester(RequestTraversalAgent(Hang()), clock, timeout=10.0).request(URL, USER, PASSWORD)
    out: list[Any] = []
    d.addBoth(out.append)
    clock.advance(9.9)
    assert out == []
    clock.advance(0.1)
    assert len(out) == 1 and out[0].kind is ResultKind.TIMEOUT
    assert clock.getDelayedCalls() == []


class FailingAgent:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def request(self, method: bytes, uri: bytes, headers: Any = None, body: Any = None) -> Deferred[Any]:
        self.calls += 1
        return fail(self.exc)


@pytest.mark.parametrize(
    ("exc", "kind", "detail"),
    [
        (net_error.ConnectionRefusedError(), ResultKind.REFUSED, "connection refused"),
        (net_error.TCPTimedOutError(), ResultKind.TIMEOUT, "connect timed out"),
        (net_error.DNSLookupError("phone.example"), ResultKind.ERROR, "DNS lookup failed"),
        (RuntimeError("boom " + PASSWORD), ResultKind.ERROR, "RuntimeError"),
    ],
)
def test_transport_failures(exc: Exception, kind: ResultKind, detail: str) -> None:
    clock = make_clock()
    result = result_of(requester(FailingAgent(exc), clock).request(URL, USER, PASSWORD))
    assert result.kind is kind and detail in result.detail and PASSWORD not in result.detail


@pytest.mark.parametrize(
    ("url", "detail"),
    [("ftp://192.0.2.1/", "not http or https"), ("http://", "no host"),
     ("http://u:pw@192.0.2.1/", "userinfo"), ("http://ph\u00f6ne/", "not ASCII")],
)
def test_unusable_urls_send_nothing(url: str, detail: str) -> None:
    agent = FailingAgent(RuntimeError())
    result = result_of(requester(agent, make_clock()).request(url, USER, PASSWORD))
    assert result.kind is ResultKind.ERROR and detail in result.detail and agent.calls == 0


def test_caller_cancellation_propagates() -> None:
    clock = make_clock()
    d = requester(RequestTraversalAgent(Hang()), clock).request(URL, USER, PASSWORD)
    out: list[Any] = []
    d.addErrback(lambda f: out.append(f.type))
    d.cancel()
    assert out == [CancelledError]


def test_password_never_in_log_events() -> None:
    clock = make_clock()
    events: list[LogEvent] = []
    log = Logger(observer=cast(ILogObserver, events.append))
    phone = Phone(clock)
    for password in (PASSWORD, "wrong-" + PASSWORD):
        result_of(requester(RequestTraversalAgent(phone.resource), clock, log=log).request(URL, USER, password))
    result_of(requester(FailingAgent(RuntimeError(PASSWORD)), clock, log=log).request(URL, USER, PASSWORD))
    assert len(events) == 3
    for event in events:
        assert PASSWORD not in formatEvent(event) and PASSWORD not in repr(event)
    assert "auth_failed" in formatEvent(events[1]) and URL in formatEvent(events[0])


class ScriptedRequester:
    """An inner requester returning canned results, recording when it was called."""

    def __init__(self, clock: Clock, *results: ConnectionRequestResult) -> None:
        self.clock = clock
        self.results = list(results)
        self.calls: list[float] = []

    def request(self, url: str, username: str | None, password: str | None) -> Deferred[ConnectionRequestResult]:
        self.calls.append(self.clock.seconds() - NOW)
        d: Deferred[ConnectionRequestResult] = Deferred()
        d.callback(self.results.pop(0))
        return d


def test_retry_honours_retry_after_on_the_clock_against_a_real_phone() -> None:
    clock = make_clock()
    inner = Scripted((503, {b"retry-after": b"5"}), (204, {}))
    retrying = RetryingConnectionRequester(requester(RequestTraversalAgent(inner), clock), clock,
                                           random=lambda: 0.0, attempts=3)
    d = retrying.request(URL, USER, PASSWORD)
    out: list[Any] = []
    d.addBoth(out.append)
    clock.advance(4.99)
    assert out == [] and len(inner.requests) == 1
    clock.advance(0.01)
    assert len(out) == 1 and out[0].kind is ResultKind.ACCEPTED and out[0].attempts == 2


def test_retry_backoff_with_jitter_then_gives_up() -> None:
    clock = make_clock()
    inner = ScriptedRequester(clock, *[ConnectionRequestResult(ResultKind.TIMEOUT)] * 2,
                              ConnectionRequestResult(ResultKind.REFUSED))
    retrying = RetryingConnectionRequester(inner, clock, random=lambda: 0.5, attempts=3,
                                           policy=BackoffPolicy(base=2.0, factor=3.0, cap=100.0, jitter=0.5))
    d = retrying.request(URL, USER, PASSWORD)
    out: list[Any] = []
    d.addBoth(out.append)
    # Delays: 2*(1-0.25)=1.5, then 6*(1-0.25)=4.5.
    clock.advance(1.49)
    assert inner.calls == [0.0]
    clock.advance(0.01)
    assert inner.calls == [0.0, 1.5]
    clock.advance(4.5)
    assert inner.calls == [0.0, 1.5, 6.0]
    assert out[0].kind is ResultKind.REFUSED and out[0].attempts == 3


def test_retry_never_repeats_auth_failed_or_error() -> None:
    clock = make_clock()
    for kind in (ResultKind.AUTH_FAILED, ResultKind.ERROR, ResultKind.ACCEPTED):
        inner = ScriptedRequester(clock, ConnectionRequestResult(kind))
        result = result_of(RetryingConnectionRequester(inner, clock, random=lambda: 0.0).request(URL, USER, PASSWORD))
        assert result.kind is kind and result.attempts == 1 and len(inner.calls) == 1


def test_retry_after_beyond_the_limit_is_returned_not_waited() -> None:
    clock = make_clock()
    inner = ScriptedRequester(clock, ConnectionRequestResult(ResultKind.BUSY, 503, retry_after=3600.0))
    result = result_of(RetryingConnectionRequester(inner, clock, random=lambda: 0.0).request(URL, USER, PASSWORD))
    assert result.kind is ResultKind.BUSY and result.retry_after == 3600.0 and len(inner.calls) == 1


def test_constructor_refusals() -> None:
    clock = make_clock()
    with pytest.raises(ValueError, match="timeout"):
        requester(FailingAgent(RuntimeError()), clock, timeout=0)
    with pytest.raises(ValueError, match="attempts"):
        RetryingConnectionRequester(requester(FailingAgent(RuntimeError()), clock), clock, random=lambda: 0.0,
                                    attempts=0)
