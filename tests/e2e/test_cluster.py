"""Two ACS nodes on one PostgreSQL behind a load balancer, end to end: two `serve`
processes, a TCP balancer and the simulated phones on loopback (the issue's scale-out
tests). The ParameterKey each phone received is the proof that nothing was applied twice."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from twisted.internet.threads import deferToThreadPool

from acs_security.sim.balancer import TcpBalancer
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store import open_store
from acs_security.store import schema as t
from tests.e2e.test_push import CR_PASS, CR_USER, HARDENING, RESOLVE, api_json, free_port, make_token, start_serve
from tests.server.harness import inform
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# Short leases so that a dead node's work moves within seconds; the defaults are 30 s
# (claims) and 90 s (sessions).
# The balancer and the simulated phones are all 127.0.0.1: no per-address connection cap.
NODE_ARGS = ("--claim-lease", "6", "--claim-batch", "100", "--session-timeout", "5",
             "--session-lease", "8", "--retry-after", "1", "--max-cr-in-flight", "60",
             "--max-connections-per-ip", "0")


@pytest.fixture
def pg_db(postgres_url: str):
    schema = f"cluster_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Cluster:
    """Two nodes (node-a, node-b) and a balancer in front of their CWMP ports."""

    def __init__(self, reactor: Any, tmp_path: Path, db: str) -> None:
        self.reactor, self.tmp_path, self.db = reactor, tmp_path, db
        self.pool = reactor.getThreadPool()
        self.cwmp = {n: free_port() for n in ("node-a", "node-b")}
        self.api = {n: free_port() for n in ("node-a", "node-b")}
        self.procs: dict[str, Any] = {}
        self.balancer: TcpBalancer | None = None
        self.token = ""
        self.sims: SimulatedFleet | None = None

    def thread(self, fn: Any, *a: Any) -> Any:
        return deferToThreadPool(self.reactor, self.pool, fn, *a)

    async def start(self) -> str:
        self.token = await self.thread(make_token, self.db)
        # Both nodes start at once: the migrations serialise on an advisory lock.
        for name in self.cwmp:
            self.procs[name] = await self.thread(
                start_serve, self.tmp_path, self.db, self.cwmp[name], self.api[name], "--node-id", name, *NODE_ARGS)
        self.balancer = TcpBalancer(self.reactor, [("127.0.0.1", p) for p in self.cwmp.values()], down_for=2.0)
        port = self.balancer.listen(0, "127.0.0.1").getHost().port
        return f"http://acs.example.net:{port}/cwmp"

    async def boot(self, url: str, n: int, seed: int, timeout: float) -> SimulatedFleet:
        """Simulated phones through ``url``, once each completed its boot session."""
        self.sims = fleet(self.reactor, url, n, seed=seed)
        await self.sims.start()
        await wait_until(self.reactor, lambda: all(p.sessions_completed for p in self.sims.phones),
                         timeout=timeout, what="boot informs")
        return self.sims

    async def push(self, node: str, **options: Any) -> dict[str, Any]:
        """The hardening policy to every phone, submitted on ``node``'s API."""
        return await self.api_call(node, "POST", "/api/v1/jobs",
                                   {"policy": HARDENING.read_text(), "select": "all", **options})

    async def api_call(self, node: str, method: str, path: str, body: Any = None) -> Any:
        return await self.thread(api_json, self.api[node], method, path, body, self.token)

    async def wait_job(self, node: str, job_id: int, timeout: float) -> dict[str, Any]:
        deadline = self.reactor.seconds() + timeout
        state: dict[str, Any] = {}
        while self.reactor.seconds() < deadline:
            state = await self.api_call(node, "GET", f"/api/v1/jobs/{job_id}")
            if state["state"] == "completed":
                break
            await sleep(self.reactor, 0.5)
        return state

    def tasks(self, job_id: int) -> list[Any]:
        store = open_store(self.db)
        try:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(t.tasks.c.device_id, t.tasks.c.state, t.tasks.c.node,
                                              t.tasks.c.claimed_by).where(t.tasks.c.job_id == job_id)).all()
        finally:
            store.close()

    async def stop(self) -> None:
        if self.sims is not None:
            await self.sims.stop()
        if self.balancer is not None:
            await self.balancer.stop()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                await self.thread(proc.wait)


def fleet(reactor: Any, url: str, phones: int, seed: int) -> SimulatedFleet:
    return SimulatedFleet(reactor, url, phones=phones, resolve=RESOLVE, inform_interval=600,
                          boot_ramp_s=phones / 200, seed=seed, cr_delay=(0.02, 0.1), retry_scale=0.05,
                          cr_password_mode="shared", cr_username=CR_USER, cr_password=CR_PASS,
                          cr_min_interval=0.2)


def test_two_nodes_split_a_2000_phone_push_and_apply_each_phone_once(tmp_path, pg_db):
    n = 2000

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=21, timeout=90)
            job = await cluster.push("node-a")
            # Either node answers for the job: the summary comes from the store.
            state = await cluster.wait_job("node-b", job["id"], timeout=150)
            rows = await cluster.thread(cluster.tasks, job["id"])
            received = [p.spv_by_key[job["parameter_key"]] for p in sims.phones]
            return state, rows, received, cluster.balancer.counters
        finally:
            await cluster.stop()

    state, rows, received, counters = run_in_reactor(go, timeout=300)
    assert state["state"] == "completed", state
    assert state["applied"] + state["applied_pending_reboot"] == n, state["counts"]
    assert received == [1] * n  # every phone got the job's SetParameterValues exactly once
    by_node = Counter(r.node for r in rows)
    # The work was split: each node decided a real share of the outcomes.
    assert set(by_node) == {"node-a", "node-b"} and min(by_node.values()) > n // 5, by_node
    assert all(c["connections"] > n // 5 for c in counters.values()), counters


def test_a_node_killed_mid_push_leaves_its_devices_to_the_other(tmp_path, pg_db):
    n = 600

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=22, timeout=60)
            job = await cluster.push("node-a", max_in_progress=20)
            key = job["parameter_key"]
            await wait_until(reactor, lambda: sum(p.spv_by_key[key] for p in sims.phones) >= 60,
                             timeout=60, what="a part of the fleet applied")
            cluster.procs["node-a"].send_signal(signal.SIGKILL)
            await cluster.thread(cluster.procs["node-a"].wait)
            rows = await cluster.thread(cluster.tasks, job["id"])
            orphaned = {r.device_id for r in rows if r.claimed_by == "node-a"
                        and r.state in ("pending", "requested", "in_session")}
            assert sum(p.spv_by_key[key] for p in sims.phones) < n, "the push ended before the kill"
            state = await cluster.wait_job("node-b", job["id"], timeout=120)
            rows = await cluster.thread(cluster.tasks, job["id"])
            return state, orphaned, rows, [p.spv_by_key[key] for p in sims.phones]
        finally:
            await cluster.stop()

    state, orphaned, rows, received = run_in_reactor(go, timeout=300)
    assert state["state"] == "completed", state
    assert state["applied"] + state["applied_pending_reboot"] == n, state["counts"]
    assert max(received) == 1 and sum(received) == n  # nothing applied twice
    # Node a held claims when it died; node b finished those devices after the lease.
    assert orphaned, "node a held no claims at the kill"
    finished_by = {r.device_id: (r.state, r.node) for r in rows}
    assert all(finished_by[d][0] in ("applied", "applied_pending_reboot") for d in orphaned)
    assert all(finished_by[d][1] == "node-b" for d in orphaned), [finished_by[d] for d in orphaned]


def _post(port: int, body: bytes, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "text/xml"}
    if cookie:
        headers["Cookie"] = cookie
    req = urllib.request.Request(f"http://127.0.0.1:{port}/cwmp", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_one_device_informing_both_nodes_gets_one_session(tmp_path, pg_db):
    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db)
        try:
            await cluster.start()
            a, b = cluster.cwmp["node-a"], cluster.cwmp["node-b"]
            first = await cluster.thread(_post, a, inform("FCH0000C1U5", ("1 BOOT",)))
            second = await cluster.thread(_post, b, inform("FCH0000C1U5", ("1 BOOT",)))
            cookie = first[1].get("Set-Cookie", "").split(";")[0]
            end = await cluster.thread(_post, a, b"", cookie)
            third = await cluster.thread(_post, b, inform("FCH0000C1U5", ("2 PERIODIC",)))
            metrics = await cluster.thread(_get, cluster.api["node-b"], "/metrics", cluster.token)
            return first, second, end, third, metrics
        finally:
            await cluster.stop()

    first, second, end, third, metrics = run_in_reactor(go, timeout=120)
    assert first[0] == 200 and b"InformResponse" in first[2]
    assert second[0] == 503 and second[1].get("Retry-After") == "1", second
    assert end[0] == 204
    assert third[0] == 200 and b"InformResponse" in third[2]  # the lease went with a's session
    assert b'acs_cwmp_refusals_total{reason="device_other_node"} 1.0' in metrics[1]


def test_roles_split_the_endpoint_the_job_runner_and_the_api(tmp_path, pg_db):
    n = 200

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db)
        cluster.cwmp = {"edge": free_port(), "runner": free_port(), "north": free_port()}
        cluster.api = {name: free_port() for name in cluster.cwmp}
        roles = {"edge": "cwmp", "runner": "jobs", "north": "api"}
        try:
            cluster.token = await cluster.thread(make_token, pg_db)
            for name, role in roles.items():
                cluster.procs[name] = await cluster.thread(
                    start_serve, tmp_path, pg_db, cluster.cwmp[name], cluster.api[name],
                    "--node-id", name, "--role", role, *NODE_ARGS)
            sims = await cluster.boot(f"http://acs.example.net:{cluster.cwmp['edge']}/cwmp", n, seed=23,
                                      timeout=60)
            job = await cluster.push("north")
            state = await cluster.wait_job("north", job["id"], timeout=90)
            rows = await cluster.thread(cluster.tasks, job["id"])
            edge_ready = await cluster.thread(_get, cluster.api["edge"], "/readyz", "")
            edge_jobs = await cluster.thread(_get, cluster.api["edge"], "/api/v1/jobs", cluster.token)
            return state, rows, [p.spv_by_key[job["parameter_key"]] for p in sims.phones], edge_ready, edge_jobs
        finally:
            await cluster.stop()

    state, rows, received, edge_ready, edge_jobs = run_in_reactor(go, timeout=240)
    assert state["state"] == "completed" and state["applied"] + state["applied_pending_reboot"] == n, state
    assert received == [1] * n
    # The runner claimed and sent the connection requests; the edge ran every session.
    assert {r.node for r in rows} == {"edge"}
    assert {r.claimed_by for r in rows} <= {"runner", None} and any(r.claimed_by == "runner" for r in rows)
    assert edge_ready[0] == 200 and json.loads(edge_ready[1])["role"] == "cwmp"
    assert edge_jobs[0] == 404  # a CWMP node answers only health, readiness and metrics


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
