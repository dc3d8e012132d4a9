"""The CWMP endpoint when its store fails, and digest nonce counts shared by nodes through
the store: real envelopes over in-memory HTTP, a fake clock, the real store (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.httpauth.digest import DigestVerifier, digest_authorization
from acs_security.httpauth.nonces import NonceUse
from acs_security.server.cpe_auth import CpeAuthenticator, StoreNonceUses
from acs_security.server.metrics import AcsMetrics
from acs_security.server.outages import OutageLog
from acs_security.store.errors import StoreError, StoreUnavailable
from acs_security.store.health import UNREACHABLE, StoreHealth
from acs_security.store.records import make_device_id
from tests.server.harness import inform, make_harness, run

DEV = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")
DOWN = StoreUnavailable("cannot read device parameters: the database at test is unavailable: down")


class FailingProvisioner:
    """Sends one GetParameterValues; its store fails where ``fail_at`` says."""

    def __init__(self, fail_at: str) -> None:
        self.fail_at = fail_at
        self.ended: list[str] = []
        self.refused: list[str] = []

    async def session_started(self, ctx: Any) -> None:
        if self.fail_at == "session_started":
            raise DOWN

    async def next_request(self, ctx: Any) -> Any:
        if ctx.rpcs:
            return None
        return m.GetParameterValues(("Device.X_CISCO_SecuritySettings.TLSCipherList",))

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        if self.fail_at == "handle_response":
            raise DOWN

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        self.ended.append(outcome)

    def session_refused(self, device_id: str) -> None:
        self.refused.append(device_id)


def gpv_response(cwmp_id: str | None) -> bytes:
    reply = m.GetParameterValuesResponse(
        (m.ParameterValue("Device.X_CISCO_SecuritySettings.TLSCipherList", "HIGH", "string"),))
    return build_envelope(reply, namespace=CWMP_1_0, cwmp_id=cwmp_id)


def test_a_store_failure_mid_session_answers_503_and_ends_the_session():
    prov = FailingProvisioner("handle_response")
    h = make_harness(provisioner=prov)

    async def go():
        assert (await h.post(inform()))[0] == 200
        code, _, content = await h.post(b"")
        env = parse_envelope(content)
        code, resp, content = await h.post(gpv_response(env.cwmp_id))
        # TR-069 3.7.1.5: 503 + Retry-After, never a 500; the CPE retries later.
        assert code == 503 and resp.headers.getRawHeaders("Retry-After") == ["10"]
        assert b"retry later" in content

    run(h, go())
    assert len(h.resource.sessions) == 0 and prov.ended == ["error"]
    entry = h.log[-1]
    assert entry["outcome"] == "error" and entry["status"] == 503 and entry["detail"].startswith("store: ")
    assert prov.refused == []  # the Inform was answered: not a refusal
    h.close()


def test_a_store_failure_before_the_inform_response_refuses_with_503_and_tells_the_provisioner():
    prov = FailingProvisioner("session_started")
    h = make_harness(provisioner=prov)

    async def go():
        code, resp, content = await h.post(inform())
        assert code == 503 and resp.headers.getRawHeaders("Retry-After") == ["10"]
        assert content.startswith(b"the ACS cannot use its database now")  # no envelope, no fault

    run(h, go())
    assert len(h.resource.sessions) == 0 and prov.ended == ["refused"] and prov.refused == [DEV]
    assert h.log[-1]["outcome"] == "refused" and h.log[-1]["status"] == 503
    h.close()


def test_a_store_failure_while_authenticating_answers_503():
    h = make_harness(cpe_auth=True)
    h.store.close()  # the credential cannot be read

    async def go():
        code, resp, _ = await h.post(inform(), {"Authorization": 'Digest username="x"'})
        assert code == 503 and resp.headers.getRawHeaders("Retry-After") == ["10"]

    run(h, go())
    assert len(h.resource.sessions) == 0
    assert h.log[-1]["status"] == 503 and h.log[-1]["detail"].startswith("store: cannot find a CPE credential")


def test_503s_are_counted_by_reason_in_the_metrics():
    metrics = AcsMetrics()
    metrics.observe_session({"outcome": "refused", "status": 503, "detail": "store: cannot x"})
    metrics.observe_session({"outcome": "error", "status": 503, "detail": "store: cannot y"})
    metrics.observe_session({"outcome": "refused", "status": 503, "detail": "busy: session limit reached"})
    metrics.observe_session({"outcome": "refused", "detail": "auth: no credentials"})
    text = metrics.render().decode()
    assert 'acs_cwmp_http_503_total{reason="store_unavailable"} 2.0' in text
    assert 'acs_cwmp_http_503_total{reason="capacity"} 1.0' in text
    assert 'reason="auth"} 1.0' in text and 'acs_cwmp_http_503_total{reason="auth"}' not in text


# -- the outage log and its metrics ------------------------------------------------------------


@pytest.fixture
def logged():
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(logged):
    clock = Clock()
    health = StoreHealth(clock.seconds, settle=5.0)
    outages = OutageLog(health, clock=clock)
    metrics = AcsMetrics()
    metrics.watch_store(health)
    for i in range(50):
        health.failed(UNREACHABLE, f"cannot call {i}: down")
        outages.check()
        clock.advance(0.1)
    text = metrics.render().decode()
    assert 'acs_store_unavailable{kind="unreachable"} 1.0' in text and "acs_store_outages_total 1.0" in text
    health.ok(wrote=False)
    outages.check()
    assert 'acs_store_unavailable{kind="unreachable"} 0.0' in metrics.render().decode()
    clock.advance(5)  # no store call: the check every second logs the end anyway
    lines = [e for e in logged if str(e.get("log_format", "")).startswith("store ")]
    assert [e["log_format"].split(":")[0].split(" after")[0] for e in lines] == [
        "store unavailable", "store available again"]
    assert "cannot call 0" in lines[0]["error"] and lines[1]["failures"] == 50
    assert lines[1]["duration"] == pytest.approx(5.0)
    [seconds] = [line for line in metrics.render().decode().splitlines()
                 if line.startswith("acs_store_outage_seconds_total")]
    assert float(seconds.split()[1]) == pytest.approx(5.0)
    assert clock.getDelayedCalls() == []  # the periodic check stopped with the outage
    outages.stop()


# -- digest nonce counts across nodes ------------------------------------------------------------


def node(url: str, *, shared: bool) -> Any:
    """An endpoint on the database at ``url``, checking digest like a node of a cluster:
    the nonce key is the cluster's; with ``shared`` the counts go to the store too."""
    h = make_harness(store_url=url, cpe_auth=True)
    randoms = iter(range(1, 10_000))
    h.resource._auth = CpeAuthenticator(
        find_credential=lambda **kw: h.dstore.call("find_cpe_credential", **kw),
        verifier=DigestVerifier("acs-security", b"k" * 32), clock=h.clock,
        random_bytes=lambda n: next(randoms).to_bytes(n, "big"),
        nonce_uses=StoreNonceUses(h.dstore, h.clock).use if shared else None)
    return h


def test_a_captured_authorization_replayed_on_another_node_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/acs.db"
    a, b = node(url, shared=True), node(url, shared=True)
    a.store.put_cpe_credential("FCH2231A0B1", "phone1", "s3cret-pass")

    async def go(h: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h.client = type(h.client)(h.resource)  # a new connection
        code, resp, _ = await h.post(inform(), headers)
        if code == 200:
            assert (await h.post(b""))[0] == 204
        return code, resp

    _, challenge = run(a, go(a))
    value = next(v for v in challenge.headers.getRawHeaders("WWW-Authenticate") if "SHA-256" in v)
    captured = digest_authorization(value, "POST", "/cwmp", "phone1", "s3cret-pass", cnonce="c1", nc=1)
    assert run(a, go(a, {"Authorization": captured}))[0] == 200
    code, resp = run(b, go(b, {"Authorization": captured}))
    assert code == 401 and resp.headers.getRawHeaders("WWW-Authenticate")
    assert b.log[-1]["detail"] == "auth: digest: nonce count already used (on another node)"
    # The phone itself may go on counting with the same nonce on any node (RFC 7616 3.4).
    second = digest_authorization(value, "POST", "/cwmp", "phone1", "s3cret-pass", cnonce="c2", nc=2)
    assert run(b, go(b, {"Authorization": second}))[0] == 200
    assert run(a, go(a, {"Authorization": second}))[0] == 401
    assert a.store.digest_nonce_count() == 1
    a.close()
    b.close()


def test_without_the_shared_record_another_node_took_the_replay(tmp_path):
    # What the shared record fixes (issue 13 item 8): each node's own record alone.
    url = f"sqlite:///{tmp_path}/acs.db"
    a, b = node(url, shared=False), node(url, shared=False)
    a.store.put_cpe_credential("FCH2231A0B1", "phone1", "s3cret-pass")

    async def go(h: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        code, resp, _ = await h.post(inform(), headers)
        return code, resp

    _, challenge = run(a, go(a))
    value = next(v for v in challenge.headers.getRawHeaders("WWW-Authenticate") if "SHA-256" in v)
    captured = digest_authorization(value, "POST", "/cwmp", "phone1", "s3cret-pass", cnonce="c1", nc=1)
    assert run(a, go(a, {"Authorization": captured}))[0] == 200
    assert run(b, go(b, {"Authorization": captured}))[0] == 200
    a.close()
    b.close()


class CallLog:
    def __init__(self, results: dict[str, Any]) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.results = results

    def call(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        result = self.results.get(name)
        return fail(result) if isinstance(result, Exception) else succeed(result)


def test_expired_nonce_records_are_purged_at_most_once_a_minute_with_a_grace(logged):
    clock = Clock()
    clock.advance(1_800_000_000)
    store = CallLog({"use_digest_nonce": True, "purge_digest_nonces": 3})
    uses = StoreNonceUses(store, clock)
    use = NonceUse("n1", 1, 1_800_000_300)

    def run_use() -> bool:
        out: list[Any] = []
        from twisted.internet.defer import ensureDeferred

        ensureDeferred(uses.use(use)).addBoth(out.append)
        return out[0]

    assert run_use() is True
    assert store.calls[0] == ("use_digest_nonce", ("n1", 1, datetime.fromtimestamp(1_800_000_300, UTC)))
    assert store.calls[1] == ("purge_digest_nonces", (datetime.fromtimestamp(1_800_000_000 - 60, UTC),))
    clock.advance(30)
    run_use()
    assert [c[0] for c in store.calls].count("purge_digest_nonces") == 1
    clock.advance(31)
    store.results["purge_digest_nonces"] = StoreUnavailable("down")
    run_use()
    store.results["purge_digest_nonces"] = StoreError("cannot purge: something else")
    clock.advance(61)
    run_use()
    assert [c[0] for c in store.calls].count("purge_digest_nonces") == 3
    warnings = [e for e in logged if str(e.get("log_format", "")).startswith("cannot purge")]
    assert len(warnings) == 1  # an outage is not logged here (server/outages.py does, once)


# -- the management API ----------------------------------------------------------------------------


class DownService:
    async def list_jobs(self, **kwargs: Any) -> Any:
        raise StoreUnavailable("cannot list jobs: the database at postgresql+psycopg://acs@db.internal/acs "
                               "is unavailable: connection refused")


class AnyToken:
    async def authenticate(self, header: Any) -> Any:
        from acs_security.server.auth import Principal

        return Principal(name="t", role="viewer", token_id=1)


def test_the_api_answers_503_without_naming_the_database_and_without_a_traceback(logged):
    from treq.testing import StubTreq

    from acs_security.server.api import ApiResource

    client = StubTreq(ApiResource(DownService(), authenticator=AnyToken()))  # type: ignore[arg-type]
    out: list[Any] = []

    async def go() -> None:
        resp = await client.get("http://acs/api/v1/jobs", headers={"Authorization": ["Bearer x"]})
        out.append((resp.code, resp.headers.getRawHeaders("Retry-After"), await resp.json()))

    from twisted.internet.defer import ensureDeferred

    ensureDeferred(go())
    client.flush()
    code, retry_after, problem = out[0]
    assert code == 503 and retry_after == ["10"] and problem["title"] == "store unavailable"
    assert "db.internal" not in repr(problem)
    assert [e for e in logged if "log_failure" in e] == []
