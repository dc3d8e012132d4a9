"""Two ACS nodes on one PostgreSQL behind real HAProxy, end to end: two `serve` processes,
HAProxy with the configuration of deploy/haproxy.cfg (TLS, ACSNODE cookie, /readyz health
checks, PROXY v2; tests/e2e/cluster.py) and the simulated phones over HTTPS on loopback (the
issue's scale-out tests). The ParameterKey each phone received is the proof that nothing was
applied twice."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from tests.e2e.cluster import NODE_ARGS, Cluster, cookies_of, https_post, metric
from tests.e2e.cluster import get as _get
from tests.e2e.test_push import free_port, make_token, start_serve
from tests.server.harness import inform
from tests.support import run_in_reactor, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_two_nodes_split_a_2000_phone_push_and_apply_each_phone_once(tmp_path, pg_db, haproxy_bin, dev_pki):
    n = 2000

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=21, timeout=120)
            job = await cluster.push("acs1")
            # Either node answers for the job: the summary comes from the store.
            state = await cluster.wait_job("acs2", job["id"], timeout=180)
            rows = await cluster.thread(cluster.tasks, job["id"])
            received = [p.spv_by_key[job["parameter_key"]] for p in sims.phones]
            counters = await cluster.thread(cluster.sessions_by_server)
            return state, rows, received, counters, sims.stats
        finally:
            await cluster.stop()

    state, rows, received, counters, stats = run_in_reactor(go, timeout=360)
    assert state["state"] == "completed", state
    assert state["applied"] + state["applied_pending_reboot"] == n, state["counts"]
    assert received == [1] * n  # every phone got the job's SetParameterValues exactly once
    by_node = Counter(r.node for r in rows)
    # The work was split: each node decided a real share of the outcomes.
    assert set(by_node) == {"acs1", "acs2"} and min(by_node.values()) > n // 5, by_node
    # HAProxy spread the phones' connections over both nodes (its own counters).
    assert set(counters) == {"acs1", "acs2"} and all(c > n // 5 for c in counters.values()), counters
    # Every handshake with HAProxy worked, before and after the pushed TLS settings.
    assert not stats.lockouts and not any("TLS" in f for f in stats.failures), stats.failures


def test_a_node_killed_mid_push_is_taken_out_by_the_health_check_and_the_other_finishes(
        tmp_path, pg_db, haproxy_bin, dev_pki):
    n = 600

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=22, timeout=60)
            job = await cluster.push("acs1", max_in_progress=20)
            key = job["parameter_key"]
            await wait_until(reactor, lambda: sum(p.spv_by_key[key] for p in sims.phones) >= 60,
                             timeout=60, what="a part of the fleet applied")
            cluster.procs["acs1"].send_signal(signal.SIGKILL)
            await cluster.thread(cluster.procs["acs1"].wait)
            rows = await cluster.thread(cluster.tasks, job["id"])
            orphaned = {r.device_id for r in rows if r.claimed_by == "acs1"
                        and r.state in ("pending", "requested", "in_session")}
            assert sum(p.spv_by_key[key] for p in sims.phones) < n, "the push ended before the kill"
            # HAProxy's health check (GET /readyz every 2 s, 3 failures) takes the node out.
            await cluster.thread(cluster.haproxy.wait_server, "acs_cwmp", "acs1", "DOWN", 30)
            down_at = await cluster.thread(cluster.sessions_by_server)
            state = await cluster.wait_job("acs2", job["id"], timeout=120)
            rows = await cluster.thread(cluster.tasks, job["id"])
            after = await cluster.thread(cluster.sessions_by_server)
            log = "\n".join(cluster.haproxy.log_lines())
            return state, orphaned, rows, [p.spv_by_key[key] for p in sims.phones], down_at, after, log
        finally:
            await cluster.stop()

    state, orphaned, rows, received, down_at, after, log = run_in_reactor(go, timeout=360)
    assert state["state"] == "completed", state
    assert state["applied"] + state["applied_pending_reboot"] == n, state["counts"]
    assert max(received) == 1 and sum(received) == n  # nothing applied twice
    # Node 1 held claims when it died; node 2 finished those devices after the lease.
    assert orphaned, "acs1 held no claims at the kill"
    finished_by = {r.device_id: (r.state, r.node) for r in rows}
    assert all(finished_by[d][0] in ("applied", "applied_pending_reboot") for d in orphaned)
    assert all(finished_by[d][1] == "acs2" for d in orphaned), [finished_by[d] for d in orphaned]
    # Once it was down, HAProxy sent the phones to acs2 only, and said why in its log.
    assert after["acs1"] == down_at["acs1"] and after["acs2"] > down_at["acs2"], (down_at, after)
    assert "Server acs_cwmp/acs1 is DOWN" in log


def _direct(port: int, body: bytes, cookie: str | None = None):
    """A POST straight to a node's CWMP port, as HAProxy sends it: a PROXY header first (the
    port requires one from 127.0.0.1), then plain HTTP."""
    line = f"PROXY TCP4 127.0.0.1 127.0.0.1 40000 {port}\r\n".encode()
    return https_post(port, body, ca=None, cookie=cookie, proxy_line=line, tls=False)


def test_one_device_informing_both_nodes_gets_one_session(tmp_path, pg_db, haproxy_bin, dev_pki):
    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            await cluster.start()
            a, b = cluster.cwmp["acs1"], cluster.cwmp["acs2"]
            first = await cluster.thread(_direct, a, inform("FCH0000C1U5", ("1 BOOT",)))
            second = await cluster.thread(_direct, b, inform("FCH0000C1U5", ("1 BOOT",)))
            end = await cluster.thread(_direct, a, b"", cookies_of(first[1]))
            third = await cluster.thread(_direct, b, inform("FCH0000C1U5", ("2 PERIODIC",)))
            return first, second, end, third, await cluster.metrics("acs2")
        finally:
            await cluster.stop()

    first, second, end, third, metrics = run_in_reactor(go, timeout=120)
    assert first[0] == 200 and b"InformResponse" in first[2]
    assert second[0] == 503 and second[1].get("retry-after") == ["1"], second
    assert end[0] == 204
    assert third[0] == 200 and b"InformResponse" in third[2]  # the lease went with a's session
    assert metric(metrics, "acs_cwmp_refusals_total", reason="device_other_node") == 1


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
            # The phones straight to the edge node: no balancer needed for one CWMP node.
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
