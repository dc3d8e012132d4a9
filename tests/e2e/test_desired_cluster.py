"""Desired state on two nodes sharing PostgreSQL behind a load balancer (two `serve`
processes, a TCP balancer, simulated phones on loopback): an assignment made on one node is
enforced by both, each device exactly once (its ParameterKey counted on the phone), and both
nodes report the same compliance, from the store."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from acs_security.sim.balancer import TcpBalancer
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store import open_store
from acs_security.store import schema as t
from tests.e2e.test_cluster import NODE_ARGS, Cluster, pg_db  # noqa: F401 - pg_db is a fixture
from tests.e2e.test_push import CR_PASS, CR_USER, HARDENING, RESOLVE, make_token, start_serve
from tests.support import run_in_reactor, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class DesiredCluster(Cluster):
    async def start(self) -> str:
        self.token = await self.thread(make_token, self.db)
        for name in self.cwmp:
            self.procs[name] = await self.thread(
                start_serve, self.tmp_path, self.db, self.cwmp[name], self.api[name], "--node-id", name,
                *NODE_ARGS, "--desired-sync-interval", "1")
        self.balancer = TcpBalancer(self.reactor, [("127.0.0.1", p) for p in self.cwmp.values()], down_for=2.0)
        port = self.balancer.listen(0, "127.0.0.1").getHost().port
        return f"http://acs.example.net:{port}/cwmp"

    def rows(self) -> list[Any]:
        store = open_store(self.db)
        try:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(t.device_assignments.c.device_id, t.device_assignments.c.state,
                                              t.device_assignments.c.node)).all()
        finally:
            store.close()


def _compliant(phone: Any, want: dict[str, str]) -> bool:
    return all(phone.value(path) == value for path, value in want.items() if path in phone.table.params)


def test_two_nodes_enforce_an_assignment_once_per_device_and_agree_on_compliance(tmp_path, pg_db):  # noqa: F811
    n = 600
    want = {"Device.X_CISCO_SecuritySettings.FirewallOptions": "NO_ICMP_PING",
            "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains":
                "acs.example.net,sip.example.net,prov.example.net"}

    async def go(reactor):
        cluster = DesiredCluster(reactor, tmp_path, pg_db)
        try:
            url = await cluster.start()
            cluster.sims = sims = SimulatedFleet(
                reactor, url, phones=n, resolve=RESOLVE, inform_interval=15, jitter=0.2, boot_ramp_s=n / 200,
                seed=31, cr_delay=(0.02, 0.1), retry_scale=0.05, cr_password_mode="shared", cr_username=CR_USER,
                cr_password=CR_PASS, cr_min_interval=0.2)
            await sims.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in sims.phones), timeout=90,
                             interval=0.2, what="boot informs")
            made = await cluster.api_call("node-a", "POST", "/api/v1/assignments", {
                "policy": HARDENING.read_text(), "policy_name": "hardening.toml", "select": "all",
                "name": "hardening"})
            await wait_until(reactor, lambda: all(_compliant(p, want) for p in sims.phones), timeout=150,
                             interval=0.5, what="both nodes converge the fleet")
            # A few more periodic sessions everywhere: nothing is sent again.
            marks = {p.serial: p.sessions_completed for p in sims.phones}
            await wait_until(reactor, lambda: all(p.sessions_completed >= marks[p.serial] + 2 for p in sims.phones),
                             timeout=120, interval=0.5, what="two more sessions per phone")
            received = [p.spv_by_key[made["parameter_key"]] for p in sims.phones]
            rows = await cluster.thread(cluster.rows)
            a = await cluster.api_call("node-a", "GET", "/api/v1/assignments/hardening/compliance")
            b = await cluster.api_call("node-b", "GET", "/api/v1/assignments/hardening/compliance")
            return received, rows, a, b, cluster.balancer.counters
        finally:
            await cluster.stop()

    received, rows, a, b, counters = run_in_reactor(go, timeout=420)
    assert received == [1] * n  # each device enforced once, whichever node its sessions reached
    assert len(rows) == n and {r.state for r in rows} == {"applied"}
    by_node = Counter(r.node for r in rows)
    assert set(by_node) == {"node-a", "node-b"} and min(by_node.values()) > n // 5, by_node
    assert a == b and a["selected"] == n and a["compliant"] == n
    assert all(c["connections"] > n // 5 for c in counters.values()), counters
