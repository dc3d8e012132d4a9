"""Two job engines on one store, as two ACS nodes behind a load balancer: real CWMP bytes
over in-memory HTTP, one fake clock, the real store. Sessions alternate between the nodes'
endpoints; each node's job runner claims its share of the tasks. (tests/e2e/test_cluster.py
runs the same with two `serve` processes on PostgreSQL.)"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from twisted.internet.defer import ensureDeferred

from acs_security.fleet.cluster import ClusterOptions
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.fleet.live import JobOptions
from acs_security.fleet.selector import parse_selector
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.service import FleetService
from acs_security.store import schema as t
from tests.fleet.test_engine import POLICY, ScriptedPhones, watch_store_calls
from tests.server.harness import make_harness


class Node:
    def __init__(self, h, phones, name: str, resource: CwmpResource | None = None) -> None:
        self.name = name
        self.engine = FleetEngine(
            store=h.dstore, clock=h.clock, http_requester=phones, default_cr_credential=("cr", "pw"),
            limits=EngineLimits(tick=0.5, cr_session_wait=5), random=lambda: 0.5,
            cluster=ClusterOptions(node=name, claim_lease=10, claim_batch=3, sync_interval=1))
        self.resource = resource or CwmpResource(clock=h.clock, store=h.dstore, provisioner=self.engine)
        self.resource._provisioner = self.engine
        self.service = FleetService(h.dstore, engine=self.engine, clock=h.clock)


class Balanced(ScriptedPhones):
    """Each session goes to the next live node (round robin), as a load balancer does."""

    def __init__(self, h) -> None:
        super().__init__(h)
        self.nodes: list[Node] = []
        self._next = itertools.count()
        self.sessions_at: Counter[str] = Counter()

    def request(self, url, username, password):
        return super().request(url, username, password)

    async def session(self, serial, event):
        live = [n for n in self.nodes if n.resource is not None]
        node = live[next(self._next) % len(live)]
        self.sessions_at[node.name] += 1
        saved = self.h.resource
        self.h.resource = node.resource
        try:
            return await super().session(serial, event)
        finally:
            self.h.resource = saved


def drive(h, coro):
    out = []
    ensureDeferred(coro).addBoth(out.append)
    h.client.flush()
    assert out and not hasattr(out[0], "raiseException"), out
    return out[0]


def advance(h, seconds, step=0.1):
    for _ in range(int(seconds / step)):
        h.clock.advance(step)
        h.client.flush()


@pytest.fixture
def cluster():
    h = make_harness()
    phones = Balanced(h)
    a = Node(h, phones, "node-a", h.resource)
    b = Node(h, phones, "node-b")
    phones.nodes = [a, b]
    for i in range(12):
        ensureDeferred(phones.session(f"P{i:03d}", "1 BOOT"))
    h.client.flush()
    assert h.store.count_devices() == 12
    yield h, phones, a, b
    h.close()


def tasks(h):
    with h.store.engine.connect() as conn:
        return conn.execute(sa.select(t.tasks.c.device_id, t.tasks.c.state, t.tasks.c.node,
                                      t.tasks.c.claimed_by, t.tasks.c.sent)).all()


def start(h, *nodes):
    for n in nodes:
        drive(h, n.engine.start())


def test_two_nodes_split_a_push_and_apply_each_phone_once(cluster):
    h, phones, a, b = cluster
    start(h, a, b)
    job = drive(h, a.engine.submit(POLICY, parse_selector("all"), JobOptions(), deadline=timedelta(hours=1)))
    advance(h, 20)
    rows = tasks(h)
    assert {r.state for r in rows} == {"applied"}, rows
    # Every phone received the job's SetParameterValues exactly once, whichever node sent it.
    assert {s: len(keys) for s, keys in phones.spv.items()} == {f"P{i:03d}": 1 for i in range(12)}
    assert all(keys == [job.parameter_key] for keys in phones.spv.values())
    # Both nodes claimed tasks and both ran sessions that decided outcomes.
    assert Counter(r.node for r in rows).keys() == {"node-a", "node-b"}
    for node in (a, b):
        summary = drive(h, node.service.job_summary(job.id))
        assert summary["state"] == "completed" and summary["applied"] == 12 and summary["p50_s"] is not None
    assert b.engine.jobs[job.id].state == "completed"
    # Operators see which node handled each phone, in the report and the devices page.
    csv_text = drive(h, b.service.job_report(job.id, fmt="csv")).decode()
    header, *lines = csv_text.strip().splitlines()
    assert header.split(",")[-1] == "node" and {ln.rsplit(",", 1)[1] for ln in lines} == {"node-a", "node-b"}
    page = drive(h, a.service.job_devices(job.id, limit=20))
    assert {d["node"] for d in page["devices"]} == {"node-a", "node-b"}


def test_a_dead_nodes_claims_lapse_and_the_other_node_finishes(cluster):
    h, phones, a, b = cluster
    phones.behaviour = {f"P{i:03d}": "silent" for i in range(12)}  # nobody calls back yet
    start(h, a)
    job = drive(h, a.engine.submit(POLICY, parse_selector("all"), JobOptions(), deadline=timedelta(hours=1)))
    advance(h, 1.5)
    claimed = {r.device_id for r in tasks(h) if r.claimed_by == "node-a"}
    assert claimed, "node a claimed nothing"
    # Node a dies: no more ticks, syncs or sessions, its claims are left in the store.
    a.engine._loop.stop()
    a.engine._cluster._loop.stop()
    a.resource = None
    phones.behaviour = {}
    start(h, b)
    advance(h, 5)
    # Within the lease, node b leaves a's devices alone.
    assert not any(r.device_id in claimed and r.state != "pending" for r in tasks(h))
    advance(h, 20)
    rows = tasks(h)
    assert {r.state for r in rows} == {"applied"}, rows
    assert {s: len(k) for s, k in phones.spv.items()} == {f"P{i:03d}": 1 for i in range(12)}
    assert phones.sessions_at["node-a"] == 6  # only the boot sessions
    assert drive(h, b.service.job_summary(job.id))["state"] == "completed"


def test_operator_actions_on_one_node_reach_the_other(cluster):
    h, phones, a, b = cluster
    phones.behaviour = {f"P{i:03d}": "fault" for i in range(12)}
    start(h, a, b)
    job = drive(h, b.engine.submit(POLICY, parse_selector("all"),
                                   JobOptions(canary=2, wave_size=5, max_fault_rate=0.1),
                                   deadline=timedelta(hours=1)))
    advance(h, 10)
    assert h.store.get_job(job.id).state == "halted"
    assert a.engine.jobs[job.id].state == "halted"
    # Resume on node a (the job was halted by whichever node judged the canary); the next
    # wave's phones accept connection requests but stay quiet, so the cancel finds them.
    phones.behaviour = {f"P{i:03d}": "silent" for i in range(12)}
    summary = drive(h, a.service.resume_job(job.id))
    assert summary["state"] == "running" and summary["current_wave"] == 1
    assert h.store.get_job(job.id).brake_released == 0
    advance(h, 3)
    summary = drive(h, b.service.cancel_job(job.id))
    assert summary["state"] == "cancelled"
    advance(h, 5)
    states = Counter(r.state for r in tasks(h))
    assert states["faulted"] == 2 and states["cancelled"] > 0 and not states["pending"], states
    # Nothing was sent after the cancel reached the store.
    sent = sum(len(k) for k in phones.spv.values())
    advance(h, 10)
    assert sum(len(k) for k in phones.spv.values()) == sent
    with pytest.raises(Exception, match="not running"):
        drive(h, a.service.cancel_job(job.id))


def test_a_node_stopped_cleanly_hands_its_devices_over_at_once(cluster):
    h, phones, a, b = cluster
    phones.behaviour = {f"P{i:03d}": "silent" for i in range(12)}
    start(h, a)
    job = drive(h, a.engine.submit(POLICY, parse_selector("all"), JobOptions(), deadline=timedelta(hours=1)))
    advance(h, 1.5)
    assert any(r.claimed_by == "node-a" for r in tasks(h))
    drive(h, a.engine.stop())
    a.resource = None
    assert not any(r.claimed_by == "node-a" for r in tasks(h))  # released, not left to lapse
    phones.behaviour = {}
    start(h, b)
    advance(h, 6)  # within the 10 s lease a last renewed: b did not wait for it
    assert {r.state for r in tasks(h)} == {"applied"}
    assert {s: len(k) for s, k in phones.spv.items()} == {f"P{i:03d}": 1 for i in range(12)}
    assert drive(h, b.service.job_summary(job.id))["state"] == "completed"


def test_a_cluster_push_session_reads_its_tasks_and_values_with_its_inform(cluster):
    # Issue 17: in cluster mode the device's tasks and stored values are read in the
    # Inform's store hop (store/deferred.py), not by calls of their own per session.
    h, phones, a, b = cluster
    calls, reads = watch_store_calls(h.dstore)
    start(h, a, b)
    drive(h, a.engine.submit(POLICY, parse_selector("all"), JobOptions(), deadline=timedelta(hours=1)))
    advance(h, 20)
    assert {r.state for r in tasks(h)} == {"applied"}
    assert {s: len(keys) for s, keys in phones.spv.items()} == {f"P{i:03d}": 1 for i in range(12)}
    assert reads and all(r == ("device_tasks", "device_parameters") for r in reads[:12])
    assert "device_tasks" not in calls and "device_parameters" not in calls
