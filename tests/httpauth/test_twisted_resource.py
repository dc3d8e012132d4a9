"""DigestProtectedResource: challenges, accepts, re-challenges stale, 400 on garbage.

Driven through treq's StubTreq against the real resource; the clock is a task.Clock.
"""

from __future__ import annotations

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Request

from acs_security.httpauth.digest import DigestVerifier, digest_authorization
from acs_security.httpauth.result import AuthFailure, AuthResult
from acs_security.httpauth.twisted_resource import DigestProtectedResource, header_text

NOW = 1_700_000_000.0


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's interface name
        return b"hello"


def setup(lifetime: float = 300) -> tuple[StubTreq, Clock, list[AuthResult]]:
    clock = Clock()
    clock.advance(NOW)
    results: list[AuthResult] = []
    counter = iter(range(1, 10_000))
    resource = DigestProtectedResource(
        Hello(),
        DigestVerifier("phone", b"k" * 32, nonce_lifetime=lifetime),
        {"acs": "pw"}.get,
        clock,
        lambda n: next(counter).to_bytes(n, "big"),
        on_result=results.append,
    )
    return StubTreq(resource), clock, results


def fetch(stub: StubTreq, headers: dict[bytes, bytes] | None = None) -> tuple[int, list[bytes], bytes]:
    out: list[object] = []
    # StubTreq sets its request methods (treq's) as attributes in __init__.
    d = stub.get("http://phone.example:7547/cr?x=1", headers=headers)  # type: ignore[attr-defined]

    def collect(response: object) -> object:
        body = stub.content(response)  # type: ignore[attr-defined]
        challenges = response.headers.getRawHeaders(b"www-authenticate") or []  # type: ignore[attr-defined]
        body.addCallback(lambda b: out.append((response.code, challenges, b)))  # type: ignore[attr-defined]
        return body

    d.addCallback(collect)
    stub.flush()
    assert out, "request did not complete"
    return out[0]  # type: ignore[return-value]


def test_no_credentials_gets_both_challenges_then_answer_is_accepted() -> None:
    stub, _, results = setup()
    code, challenges, _ = fetch(stub)
    assert code == 401 and len(challenges) == 2
    assert b"algorithm=SHA-256" in challenges[0]
    auth = digest_authorization([c.decode() for c in challenges], "GET", "/cr?x=1", "acs", "pw", "cn", 1)
    code, _, body = fetch(stub, {b"authorization": auth.encode()})
    assert (code, body) == (200, b"hello")
    assert [r.reason for r in results] == [AuthFailure.MISSING, None]
    # The same header again is a replay.
    code, challenges, _ = fetch(stub, {b"authorization": auth.encode()})
    assert code == 401 and results[-1].reason is AuthFailure.REPLAYED_NONCE


def test_expired_nonce_is_rechallenged_with_stale_true() -> None:
    stub, clock, results = setup(lifetime=30)
    _, challenges, _ = fetch(stub)
    auth = digest_authorization([c.decode() for c in challenges], "GET", "/cr?x=1", "acs", "pw", "cn", 1)
    clock.advance(31)
    code, challenges, _ = fetch(stub, {b"authorization": auth.encode()})
    assert code == 401 and results[-1].reason is AuthFailure.STALE_NONCE
    assert all(c.endswith(b"stale=true") for c in challenges)


def test_malformed_header_is_400_without_challenge() -> None:
    stub, _, results = setup()
    code, challenges, body = fetch(stub, {b"authorization": b'Digest username="unterminated'})
    assert code == 400 and challenges == [] and b"malformed" in body
    assert results[-1].reason is AuthFailure.MALFORMED


def test_header_text_decodes_utf8_then_latin1() -> None:
    assert header_text("J\u00e4".encode()) == "J\u00e4"
    assert header_text(b"J\xe4") == "J\u00e4"
