"""Two nodes (two CwmpResources) on one database: one CWMP session per device across both,
and digest nonces one node issues accepted by the other.

Real store (a SQLite file), real resources driven with real CWMP envelopes over in-memory
HTTP (StubTreq), one MemoryReactorClock for both nodes and the store. No sockets, no
threads, no real time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope
from acs_security.httpauth.digest import DigestVerifier, digest_authorization
from acs_security.secrets import digest_nonce_key, open_codec
from acs_security.server.cpe_auth import CpeAuthenticator
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.server.leases import DeviceLeases
from acs_security.store import StoreUnavailable, open_store
from acs_security.store import schema as t
from acs_security.store.deferred import DeferredStore
from acs_security.store.records import make_device_id
from tests.server.harness import URL, InlineThreadPool, body_message, inform

DEV = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")
START = 1_800_000_000
LEASE = 60.0
TIMEOUT = 30.0


@dataclass
class Node:
    name: str
    resource: CwmpResource
    leases: DeviceLeases | None
    client: StubTreq
    log: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        hdrs = {"Content-Type": ["text/xml"]}
        for k, v in (headers or {}).items():
            hdrs[k] = [v]
        # StubTreq sets its request methods (treq's) as attributes in __init__.
        resp = await self.client.post(URL, data=body, headers=hdrs)  # type: ignore[attr-defined]
        return resp.code, resp, await resp.content()

    def new_connection(self) -> None:
        """A new TCP connection and no cookie (the phone's next session)."""
        self.client = StubTreq(self.resource)


class Cluster:
    def __init__(self, db: Path, *, lease: float | None = LEASE, authenticator: Any = None) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START)
        # The store's clock is the reactor's: lease expiries and "now" on one time line.
        self.store = open_store(f"sqlite:///{db}",
                                clock=lambda: datetime.fromtimestamp(self.reactor.seconds(), UTC))
        self.dstore = DeferredStore(self.store, self.reactor, InlineThreadPool(),
                                    call_from_thread=lambda f, *a: f(*a))
        self.nodes: dict[str, Node] = {}
        for name in ("a", "b"):
            ds = self.dstore
            leases = DeviceLeases(ds, self.reactor, name, lease) if lease is not None else None
            tokens = iter([f"{name}-tok{i}" for i in range(1000)])
            log: list[dict[str, Any]] = []
            resource = CwmpResource(
                clock=self.reactor, store=ds, session_timeout=TIMEOUT, retry_after=7,
                token_source=tokens.__next__, session_observer=log.append,
                device_leases=leases,
                authenticator=authenticator(name, ds, self.reactor) if authenticator else None)
            self.nodes[name] = Node(name, resource, leases, StubTreq(resource), log)

    @property
    def a(self) -> Node:
        return self.nodes["a"]

    @property
    def b(self) -> Node:
        return self.nodes["b"]

    def lease(self) -> tuple[str, str, datetime] | None:
        return self.store.device_session(DEV)

    def at(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(START + seconds, UTC)

    def run(self, coro: Any) -> Any:
        """Drive a coroutine: StubTreq and the inline store fire synchronously."""
        d = ensureDeferred(coro)
        for node in self.nodes.values():
            node.client.flush()
        results: list[Any] = []
        d.addBoth(results.append)
        assert results, "the coroutine did not finish"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "acs.db")
    yield c
    c.close()


def test_device_in_a_session_on_one_node_is_refused_by_the_other(cluster):
    a, b = cluster.a, cluster.b

    async def go():
        code, _, content = await a.post(inform(events=("2 PERIODIC",)))
        assert code == 200 and isinstance(body_message(content), m.InformResponse)
        assert cluster.lease() == ("a", "a-tok0", cluster.at(LEASE))

        code, resp, content = await b.post(inform(events=("1 BOOT",)))
        assert code == 503
        assert resp.headers.getRawHeaders("Retry-After") == ["7"]
        assert len(b.resource.sessions) == 0
        # b recorded nothing of its Inform: the device is as a's Inform left it.
        assert cluster.store.get_device(DEV).events == ("2 PERIODIC",)
        assert cluster.lease() == ("a", "a-tok0", cluster.at(LEASE))

        cluster.reactor.advance(5)
        assert (await a.post(b""))[0] == 204
        assert cluster.lease() is None

        b.new_connection()
        code, _, content = await b.post(inform(events=("1 BOOT",)))
        assert code == 200 and isinstance(body_message(content), m.InformResponse)
        assert cluster.store.get_device(DEV).events == ("1 BOOT",)
        assert cluster.lease() == ("b", "b-tok1", cluster.at(5 + LEASE))
        assert (await b.post(b""))[0] == 204

    cluster.run(go())
    assert b.log[0] == {"device": DEV, "remote": "127.0.0.1", "outcome": "refused",
                        "detail": "busy: device in a session on node a", "status": 503}
    assert a.log[-1]["outcome"] == "done" and b.log[-1]["outcome"] == "done"
    assert cluster.lease() is None


def test_idle_session_releases_its_lease_at_the_timeout(cluster):
    a, b = cluster.a, cluster.b

    async def go():
        assert (await a.post(inform()))[0] == 200
        cluster.reactor.advance(TIMEOUT - 1)
        assert cluster.lease() is not None
        cluster.reactor.advance(2)
        assert len(a.resource.sessions) == 0
        assert cluster.lease() is None
        assert (await b.post(inform()))[0] == 200
        assert cluster.lease()[0] == "b"

    cluster.run(go())
    assert a.log[-1]["outcome"] == "timeout"


def test_lease_of_a_dead_node_is_taken_over_once_it_lapses(cluster):
    b = cluster.b
    # Node c died in a session with the device: its lease stays until it lapses.
    with cluster.store.engine.begin() as conn:
        conn.execute(sa.insert(t.device_sessions).values(
            device_id=DEV, node="c", token="c-tok", expires_at=cluster.at(10)))

    async def go():
        assert (await b.post(inform()))[0] == 503
        cluster.reactor.advance(11)
        b.new_connection()
        code, _, content = await b.post(inform())
        assert code == 200 and isinstance(body_message(content), m.InformResponse)
        assert cluster.lease() == ("b", "b-tok1", cluster.at(11 + LEASE))

    cluster.run(go())
    assert b.log[0]["detail"] == "busy: device in a session on node c"


def test_leftover_lease_of_the_same_node_is_taken_over_at_once(cluster):
    # This node's previous process (same node name) died in a session with the device.
    with cluster.store.engine.begin() as conn:
        conn.execute(sa.insert(t.device_sessions).values(
            device_id=DEV, node="a", token="old-process", expires_at=cluster.at(50)))

    async def go():
        assert (await cluster.a.post(inform()))[0] == 200
        assert cluster.lease() == ("a", "a-tok0", cluster.at(LEASE))

    cluster.run(go())


def test_lease_is_renewed_as_messages_come_after_a_third_of_it(cluster):
    a = cluster.a

    def rpc(cwmp_id: str) -> bytes:
        return build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0, cwmp_id=cwmp_id)

    async def go():
        assert (await a.post(inform()))[0] == 200
        cluster.reactor.advance(LEASE / 3 - 1)
        assert (await a.post(rpc("2")))[0] == 200
        assert cluster.lease()[2] == cluster.at(LEASE)  # too early: not renewed
        cluster.reactor.advance(2)  # now LEASE/3 + 1 after the claim
        assert (await a.post(rpc("3")))[0] == 200
        renewed = LEASE / 3 + 1
        assert cluster.lease()[2] == cluster.at(renewed + LEASE)
        # Messages keep coming (each gap below the session timeout, above LEASE/3): past
        # the first expiry the device is still a's.
        for cwmp_id in ("4", "5"):
            cluster.reactor.advance(TIMEOUT - 5)
            renewed += TIMEOUT - 5
            assert (await a.post(rpc(cwmp_id)))[0] == 200
            assert cluster.lease()[2] == cluster.at(renewed + LEASE)
        assert cluster.reactor.seconds() - START > LEASE
        assert (await cluster.b.post(inform()))[0] == 503

    assert LEASE / 3 < TIMEOUT - 5 < TIMEOUT
    cluster.run(go())


def test_release_all_drops_the_nodes_leases_at_shutdown(cluster):
    a = cluster.a

    async def go():
        assert (await a.post(inform()))[0] == 200
        assert await a.leases.release_all() == 1
        assert cluster.lease() is None
        assert (await cluster.b.post(inform()))[0] == 200

    cluster.run(go())


class FailingClaims:
    """A DeferredStore whose lease claims fail as with the database down."""

    def __init__(self, inner: DeferredStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        if name == "claim_device_session":
            return fail(StoreUnavailable("cannot claim a device session: the database is unavailable"))
        return self.inner.call(name, *args, **kwargs)

    def record_inform(self, record: Any) -> Any:
        self.calls.append("record_inform")
        return self.inner.record_inform(record)


def test_store_failure_on_claim_is_answered_503_with_retry_after(tmp_path):
    cluster = Cluster(tmp_path / "acs.db")
    failing = FailingClaims(cluster.dstore)
    try:
        leases = DeviceLeases(failing, cluster.reactor, "a", LEASE)
        log: list[dict[str, Any]] = []
        resource = CwmpResource(clock=cluster.reactor, store=failing, session_timeout=TIMEOUT,
                                device_leases=leases, session_observer=log.append)
        client = StubTreq(resource)

        async def go():
            resp = await client.post(URL, data=inform(), headers={"Content-Type": ["text/xml"]})
            return resp.code, resp.headers.getRawHeaders("Retry-After"), await resp.content()

        d = ensureDeferred(go())
        client.flush()
        results: list[Any] = []
        d.addBoth(results.append)
        code, retry_after, content = results[0]
        # TR-069 3.7.1.5: the phone retries after Retry-After; no fault that fails its session.
        assert code == 503 and retry_after == [str(resource._retry_after)]
        assert b"retry later" in content
        assert failing.calls == ["claim_device_session"]  # nothing recorded
        assert len(resource.sessions) == 0
        assert cluster.store.get_device(DEV) is None
        assert log[-1]["outcome"] == "refused" and log[-1]["status"] == 503
        assert log[-1]["detail"].startswith("store: ") and "database is unavailable" in log[-1]["detail"]
    finally:
        cluster.close()


def test_single_node_takes_no_leases(tmp_path):
    cluster = Cluster(tmp_path / "acs.db", lease=None)
    try:
        async def go():
            assert (await cluster.a.post(inform()))[0] == 200
            assert cluster.lease() is None
            assert (await cluster.a.post(b""))[0] == 204

        cluster.run(go())
    finally:
        cluster.close()


def test_device_leases_refuses_bad_settings(cluster):
    with pytest.raises(ValueError, match="node must be"):
        DeviceLeases(cluster.dstore, cluster.reactor, "", 90)
    with pytest.raises(ValueError, match="lease must be a positive"):
        DeviceLeases(cluster.dstore, cluster.reactor, "a", 0)


# -- digest nonces across nodes ----------------------------------------------------------


def _digest_cluster(tmp_path: Path, key_b: Path) -> Cluster:
    key_a = tmp_path / "shared.key"
    db_url = f"sqlite:///{tmp_path / 'acs.db'}"
    nonces = iter(range(10_000))
    keys = {"a": key_a, "b": key_b}

    def authenticator(name: str, ds: Any, reactor: Any) -> CpeAuthenticator:
        # Each node reads the key file itself, as `acs-security serve` does at start.
        codec, _, _ = open_codec(keys[name], db_url)
        return CpeAuthenticator(
            find_credential=lambda **kw: ds.call("find_cpe_credential", **kw),
            verifier=DigestVerifier("acs-security", digest_nonce_key(codec)),
            clock=reactor,
            random_bytes=lambda n: next(nonces).to_bytes(n, "big"),
        )

    # The key file exists before the nodes start (a deployment copies it to every node).
    open_codec(key_a, db_url)
    cluster = Cluster(tmp_path / "acs.db", authenticator=authenticator)
    cluster.store.put_cpe_credential("FCH2231A0B1", "phone1", "s3cret-pass")
    return cluster


def _challenge(resp: Any) -> str:
    return next(v for v in resp.headers.getRawHeaders("WWW-Authenticate") if "algorithm=SHA-256" in v)


def test_nonce_issued_by_one_node_verifies_at_the_other(tmp_path):
    cluster = _digest_cluster(tmp_path, tmp_path / "shared.key")
    try:
        async def go():
            code, resp, _ = await cluster.a.post(inform())
            assert code == 401
            auth = digest_authorization(_challenge(resp), "POST", "/cwmp", "phone1", "s3cret-pass",
                                        cnonce="c1", nc=1)
            code, _, content = await cluster.b.post(inform(), {"Authorization": auth})
            assert code == 200 and isinstance(body_message(content), m.InformResponse)

        cluster.run(go())
        assert cluster.b.log == []  # b's session goes on (no refusal, nothing ended)
        assert cluster.lease()[0] == "b"
    finally:
        cluster.close()


def test_nonce_of_a_node_with_another_key_file_is_refused(tmp_path):
    other = tmp_path / "other.key"
    open_codec(other, f"sqlite:///{tmp_path / 'acs.db'}")
    cluster = _digest_cluster(tmp_path, other)
    try:
        async def go():
            _, resp, _ = await cluster.a.post(inform())
            auth = digest_authorization(_challenge(resp), "POST", "/cwmp", "phone1", "s3cret-pass",
                                        cnonce="c1", nc=1)
            code, _, _ = await cluster.b.post(inform(), {"Authorization": auth})
            assert code == 401

        cluster.run(go())
        # The opaque is derived from the key too: it is the first thing that differs.
        assert cluster.b.log[-1]["detail"] == "auth: digest: bad_opaque"
    finally:
        cluster.close()


def test_digest_nonce_key_is_derived_not_the_stored_secrets_key(tmp_path):
    codec, _, _ = open_codec(tmp_path / "k.key", "sqlite:///x.db")
    again, _, _ = open_codec(tmp_path / "k.key", "sqlite:///x.db")
    key = digest_nonce_key(codec)
    assert len(key) == 32 and key == digest_nonce_key(again)
    assert key != codec.ring.keys[0]
    with pytest.raises(TypeError, match="EncryptingCodec"):
        digest_nonce_key(object())  # type: ignore[arg-type]


class HeldClaims(FailingClaims):
    """A DeferredStore whose lease claim answers only when the test says so."""

    def __init__(self, inner: DeferredStore) -> None:
        super().__init__(inner)
        self.pending: list[Any] = []

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "claim_device_session":
            self.calls.append(name)
            late: Deferred[Any] = Deferred()
            # The claim is made now (the inline store); its answer is handed out later.
            self.inner.call(name, *args, **kwargs).addCallback(lambda result: self.pending.append((late, result)))
            return late
        return super().call(name, *args, **kwargs)


def test_session_timing_out_while_the_claim_runs_gives_its_lease_back(tmp_path):
    cluster = Cluster(tmp_path / "acs.db")
    held = HeldClaims(cluster.dstore)
    try:
        log: list[dict[str, Any]] = []
        resource = CwmpResource(clock=cluster.reactor, store=held, session_timeout=TIMEOUT,
                                device_leases=DeviceLeases(held, cluster.reactor, "a", LEASE),
                                session_observer=log.append)
        client = StubTreq(resource)
        results: list[Any] = []
        d = client.post(URL, data=inform(), headers={"Content-Type": ["text/xml"]})
        d.addCallback(lambda resp: results.append(resp.code))
        client.flush()
        # The claim is written but its answer is late: the session times out meanwhile.
        assert cluster.lease() is not None and not results
        cluster.reactor.advance(TIMEOUT + 1)
        assert len(resource.sessions) == 0
        late, answer = held.pending[0]
        assert answer is None  # the claim succeeded
        late.callback(answer)
        client.flush()
        assert results == [503]
        assert cluster.lease() is None  # given back, not left to lapse
        assert held.calls == ["claim_device_session", "release_device_session"]
        assert cluster.store.get_device(DEV) is None
        assert log[-1]["outcome"] == "timeout"
    finally:
        cluster.close()


class HeldRelease:
    """A DeferredStore whose lease releases wait until the test lets them through."""

    def __init__(self, inner: DeferredStore) -> None:
        self.inner = inner
        self.held: list[tuple[Deferred[Any], tuple[Any, ...]]] = []

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "release_device_session":
            d: Deferred[Any] = Deferred()
            self.held.append((d, args))
            return d
        return self.inner.call(name, *args, **kwargs)

    def record_inform(self, record: Any) -> Any:
        return self.inner.record_inform(record)

    def let_through(self) -> None:
        for d, args in self.held:
            self.inner.call("release_device_session", *args).chainDeferred(d)
        self.held = []


def test_the_204_goes_only_after_the_lease_is_released(tmp_path):
    """A phone that ends its session and opens the next one at once (on another node behind
    the balancer) must find its lease free: the session's 204 waits for the release."""
    cluster = Cluster(tmp_path / "acs.db")
    held = HeldRelease(cluster.dstore)
    try:
        leases = DeviceLeases(held, cluster.reactor, "a", LEASE)
        resource = CwmpResource(clock=cluster.reactor, store=held, session_timeout=TIMEOUT, device_leases=leases)
        client = StubTreq(resource)
        headers = {"Content-Type": ["text/xml"]}

        async def begin() -> int:
            return (await client.post(URL, data=inform(), headers=headers)).code

        results: list[Any] = []
        ensureDeferred(begin()).addBoth(results.append)
        client.flush()
        assert results == [200] and cluster.lease() is not None

        async def end() -> int:
            return (await client.post(URL, data=b"", headers=headers)).code

        ended: list[Any] = []
        ensureDeferred(end()).addBoth(ended.append)
        client.flush()
        assert ended == [] and len(held.held) == 1  # no 204 while the lease is still held
        assert cluster.lease() is not None
        held.let_through()
        client.flush()
        assert ended == [204] and cluster.lease() is None
    finally:
        cluster.close()
