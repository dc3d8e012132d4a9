"""Desired state on two nodes sharing PostgreSQL behind a load balancer (two `serve`
processes, real HAProxy with deploy/haproxy.cfg's configuration (tests/e2e/cluster.py),
simulated phones over HTTPS on loopback): an assignment made on one node is
enforced by both, each device exactly once (its ParameterKey counted on the phone), and both
nodes report the same compliance, from the store."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from acs_security.store import open_store
from acs_security.store import schema as t
from tests.e2e.cluster import Cluster
from tests.e2e.test_push import HARDENING
from tests.support import run_in_reactor, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class DesiredCluster(Cluster):
    def rows(self) -> list[Any]:
        store = open_store(self.db)
        try:
            with store.engine.connect() as conn:
                return list(conn.execute(sa.select(t.device_assignments.c.device_id, t.device_assignments.c.state,
                                                   t.device_assignments.c.node)).all())
        finally:
            store.close()


def _compliant(phone: Any, want: dict[str, str]) -> bool:
    return all(phone.value(path) == value for path, value in want.items() if path in phone.table.params)


def test_two_nodes_enforce_an_assignment_once_per_device_and_agree_on_compliance(tmp_path, pg_db, haproxy_bin,
                                                                                  dev_pki):
    n = 600
    want = {"Device.X_CISCO_SecuritySettings.FirewallOptions": "NO_ICMP_PING",
            "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains":
                "acs.example.net,sip.example.net,prov.example.net"}

    async def go(reactor):
        cluster = DesiredCluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki,
                                 extra_args=("--desired-sync-interval", "1"))
        try:
            url = await cluster.start()
            cluster.sims = sims = cluster.fleet(url, n, seed=31, inform_interval=15, jitter=0.2)
            await sims.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in sims.phones), timeout=90,
                             interval=0.2, what="boot informs")
            made = await cluster.api_call("acs1", "POST", "/api/v1/assignments", {
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
            a = await cluster.api_call("acs1", "GET", "/api/v1/assignments/hardening/compliance")
            b = await cluster.api_call("acs2", "GET", "/api/v1/assignments/hardening/compliance")
            return received, rows, a, b, await cluster.thread(cluster.sessions_by_server)
        finally:
            await cluster.stop()

    received, rows, a, b, counters = run_in_reactor(go, timeout=420)
    assert received == [1] * n  # each device enforced once, whichever node its sessions reached
    assert len(rows) == n and {r.state for r in rows} == {"applied"}
    by_node = Counter(r.node for r in rows)
    assert set(by_node) == {"acs1", "acs2"} and min(by_node.values()) > n // 5, by_node
    assert a == b and a["selected"] == n and a["compliant"] == n
    # HAProxy spread the phones' requests over both nodes.
    assert set(counters) == {"acs1", "acs2"} and all(c > n // 5 for c in counters.values()), counters
