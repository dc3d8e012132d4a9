"""What the deploy story rests on, proven through real HAProxy (tests/e2e/cluster.py): a CWMP
session whose requests arrive on several TCP connections stays on one node (ACSNODE cookie);
the registry records the phone's own address (PROXY v2), never one the phone wrote itself;
a graceful reload mid-push (-sf, the sockets handed over with -x) loses no session the phones
cannot retry; and phones with client certificates reach the nodes' HTTPS listeners through
the TCP passthrough, each authenticated by its own certificate."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.cluster import Cluster, cookies_of, https_post, metric
from tests.e2e.test_edge import needs_loopback_net
from tests.server.harness import inform
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@needs_loopback_net
def test_a_session_on_several_connections_stays_on_its_node_and_the_registry_has_the_phones_address(
        tmp_path, pg_db, haproxy_bin, dev_pki):
    ca = dev_pki["ca"]

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            await cluster.start()
            port = cluster.haproxy.cwmp_port
            results = []
            for i in range(6):
                serial, source = f"FCH00000H{i:02d}", f"127.0.0.{10 + i}"
                # Each request on its own TCP (and TLS) connection, as a phone that does not
                # keep connections alive; the phone also forges an X-Forwarded-For.
                first = await cluster.thread(https_post, port, inform(serial, ("1 BOOT",)), ca=ca, source=source,
                                             headers={"X-Forwarded-For": "6.6.6.6"})
                jar = cookies_of(first[1])
                node = dict(c.split("=", 1) for c in jar.split("; "))["ACSNODE"]
                if i % 2:
                    # The control: the same session's cookie pinned to the other node. That
                    # node does not know the session: to it an empty POST is no way to begin
                    # one (CWMP fault 8003).
                    other = "acs2" if node == "acs1" else "acs1"
                    wrong = await cluster.thread(https_post, port, b"", ca=ca, source=source,
                                                 cookie=jar.replace(f"ACSNODE={node}", f"ACSNODE={other}"))
                    results.append((serial, source, node, first[0], wrong, "wrong"))
                second = await cluster.thread(https_post, port, b"", ca=ca, source=source, cookie=jar)
                results.append((serial, source, node, first[0], second, "right"))
            devices = await cluster.thread(cluster.devices)
            log = cluster.haproxy.log_lines()
            front = next(row for row in cluster.haproxy.stats()
                         if row["pxname"] == "cwmp" and row["svname"] == "FRONTEND")
            metrics = {n: await cluster.metrics(n) for n in ("acs1", "acs2")}
            return results, devices, log, metrics, front
        finally:
            await cluster.stop()

    results, devices, log, metrics, front = run_in_reactor(go, timeout=120)
    # HAProxy spread the sessions over both nodes (round robin), and the cookie kept each one.
    assert {r[2] for r in results} == {"acs1", "acs2"}, results
    for serial, _source, node, inform_status, (status, _, body), kind in results:
        assert inform_status == 200
        if kind == "right":
            assert status == 204, (serial, node, status, body)
        else:
            assert b"<FaultCode>8003</FaultCode>" in body and b"a session starts with an Inform" in body, body
    # The registry has each phone's own address (from HAProxy's PROXY v2 header), not
    # HAProxy's 127.0.0.1 and not the X-Forwarded-For the phone wrote.
    assert {s: devices[s] for s, *_ in results} == {s: src for s, src, *_ in results}
    # The sessions ended as sessions do; none timed out for want of its second request.
    done = sum(metric(metrics[n], "acs_cwmp_sessions_total", outcome="done") for n in metrics)
    assert done == 6, metrics
    assert all(metric(metrics[n], "acs_cwmp_sessions_total", outcome="timeout") == 0 for n in metrics)
    # HAProxy's own log: a first request without the cookie (inserted: "NI"), the next ones
    # with a valid cookie ("VN"), each on a connection of its own (HAProxy's frontend counts them).
    requests = [line for line in log if '"POST /cwmp HTTP/1.1"' in line]
    assert len(requests) == 6 * 2 + 3
    assert sum(" --NI " in line for line in requests) == 6
    assert sum(" --VN " in line for line in requests) == 9
    assert int(front["stot"]) >= len(requests) and int(front["req_tot"]) == len(requests), front


def test_a_push_to_phones_that_reconnect_for_every_request(tmp_path, pg_db, haproxy_bin, dev_pki):
    n = 300

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=31, timeout=90, connection_per_request=True)
            job = await cluster.push("acs1")
            state = await cluster.wait_job("acs2", job["id"], timeout=150)
            metrics = {name: await cluster.metrics(name) for name in ("acs1", "acs2")}
            rows = await cluster.thread(cluster.tasks, job["id"])
            requests = await cluster.thread(cluster.sessions_by_server)

            def posts_logged() -> int:
                return sum('"POST /cwmp HTTP/1.1"' in line for line in cluster.haproxy.log_lines())

            # HAProxy writes a request's log line after the response has gone, so the last
            # lines may follow the job's end by a moment; a missing line still fails below.
            try:
                await wait_until(reactor, lambda: posts_logged() >= sum(requests.values()), timeout=10,
                                 what="HAProxy's log lines of every request")
            except AssertionError:  # the assertion below says which lines are missing
                pass
            log = cluster.haproxy.log_lines()
            front = next(row for row in cluster.haproxy.stats()
                         if row["pxname"] == "cwmp" and row["svname"] == "FRONTEND")
            return state, [p.spv_by_key[job["parameter_key"]] for p in sims.phones], metrics, rows, \
                requests, sims.stats, log, front
        finally:
            await cluster.stop()

    state, received, metrics, rows, requests, stats, log, front = run_in_reactor(go, timeout=360)
    assert state["state"] == "completed" and state["applied"] + state["applied_pending_reboot"] == n, state
    assert received == [1] * n
    assert set(Counter(r.node for r in rows)) == {"acs1", "acs2"}
    sessions = sum(metric(metrics[m], "acs_cwmp_sessions_total", outcome="done") for m in metrics)
    # Every session ended "done" on the node that began it: none lost its later requests to
    # the other node, none timed out, none was refused for running on two nodes at once.
    for name in metrics:
        assert metric(metrics[name], "acs_cwmp_sessions_total", outcome="timeout") == 0, name
        assert metric(metrics[name], "acs_cwmp_refusals_total", reason="device_other_node") == 0, name
    assert stats.sessions_failed == 0, stats.failures
    # A boot session is 2 requests (Inform, empty POST), a push session 3 (Inform, empty POST
    # answered by SetParameterValues, its response). HAProxy's frontend counted a connection for
    # every request (kept-alive connections would give about one per 2.5 requests; client ports
    # cannot show it, as the OS hands a closed connection's port to a later one), and its log shows
    # the later requests of a session carrying a valid ACSNODE cookie ("VN").
    assert sessions >= 2 * n and sum(requests.values()) >= 5 * n, (requests, sessions)
    posts = [line for line in log if '"POST /cwmp HTTP/1.1"' in line]
    assert len(posts) == sum(requests.values())
    assert int(front["stot"]) >= len(posts) and int(front["req_tot"]) == len(posts), front
    assert sum(" --VN " in line for line in posts) >= 3 * n


def test_haproxy_reloaded_mid_push_loses_no_session_the_phones_cannot_retry(tmp_path, pg_db, haproxy_bin, dev_pki):
    n = 600

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki)
        try:
            sims = await cluster.boot(await cluster.start(), n, seed=32, timeout=90)
            failed_before = sims.stats.sessions_failed
            job = await cluster.push("acs1", max_in_progress=60)
            key = job["parameter_key"]
            pids = []
            for share in (0.2, 0.5):
                await wait_until(reactor, lambda s=share: sum(p.spv_by_key[key] for p in sims.phones) >= s * n,
                                 timeout=120, what=f"{share:.0%} of the fleet applied")
                in_flight = sims.in_session
                pids.append((*await cluster.thread(cluster.haproxy.reload), in_flight))
                await sleep(reactor, 0.5)
            state = await cluster.wait_job("acs2", job["id"], timeout=150)
            # The old processes finish their connections and leave by themselves.
            olds = cluster.haproxy.procs[:-1]
            await wait_until(reactor, lambda: all(p.poll() is not None for p in olds), timeout=60,
                             what="the old HAProxy processes to exit")
            return state, [p.spv_by_key[key] for p in sims.phones], pids, sims.stats, failed_before, \
                [p.returncode for p in olds]
        finally:
            await cluster.stop()

    state, received, pids, stats, failed_before, codes = run_in_reactor(go, timeout=420)
    assert all(in_flight > 0 for *_, in_flight in pids), "the reloads came while sessions ran"
    assert codes == [0, 0], codes
    assert state["state"] == "completed" and state["applied"] + state["applied_pending_reboot"] == n, state
    assert received == [1] * n  # nothing lost, nothing applied twice
    # Sessions the reload cut (if any) were retried by their phones, which is what ended them
    # as applied above; none failed on TLS.
    assert not any("TLS" in f for f in stats.failures), stats.failures
    assert stats.sessions_failed - failed_before <= 2 * max(in_flight for *_, in_flight in pids), stats.failures


@needs_loopback_net
def test_phones_with_client_certificates_through_the_tcp_passthrough(tmp_path, pg_db, haproxy_bin, dev_pki):
    n = 38  # dev_pki holds certificates for SIM00000000-SIM00000039; 38 and 39 for the raw phones

    async def go(reactor):
        cluster = Cluster(reactor, tmp_path, pg_db, haproxy_bin=haproxy_bin, pki=dev_pki, mtls=True)
        try:
            await cluster.start()
            for name in cluster.cwmp:
                await cluster.thread(cluster.haproxy.wait_server, "acs_cwmp_mtls", name, "UP", 30)
            sims = await cluster.boot(cluster.url(mtls=True), n, seed=33, timeout=90,
                                      client_cert_dir=dev_pki["devices"])
            job = await cluster.push("acs1")
            state = await cluster.wait_job("acs2", job["id"], timeout=120)
            port, ca, devices = cluster.haproxy.mtls_port, dev_pki["ca"], dev_pki["devices"]
            own = (devices / "SIM00000038.pem", devices / "SIM00000038.key")
            other = (devices / "SIM00000039.pem", devices / "SIM00000039.key")
            raw = {
                "own": await cluster.thread(https_post, port, inform("SIM00000038"), ca=ca, source="127.0.0.21",
                                            client_cert=own),
                "other's": await cluster.thread(https_post, port, inform("SIM00000038"), ca=ca,
                                                source="127.0.0.22", client_cert=other),
            }
            try:
                await cluster.thread(https_post, port, inform("SIM00000039"), ca=ca, source="127.0.0.23")
                raw["none"] = "answered"
            except OSError as exc:  # the TLS handshake fails: the node asks for a certificate
                raw["none"] = type(exc).__name__
            registry = await cluster.thread(cluster.devices)
            return state, [p.spv_by_key[job["parameter_key"]] for p in sims.phones], sims.stats, raw, registry
        finally:
            await cluster.stop()

    state, received, stats, raw, registry = run_in_reactor(go, timeout=300)
    assert state["state"] == "completed" and state["applied"] + state["applied_pending_reboot"] == n, state
    assert received == [1] * n
    assert stats.sessions_failed == 0, stats.failures
    # The nodes tie the certificate to the Inform's device themselves, through the passthrough.
    assert raw["own"][0] == 200 and raw["other's"][0] == 403, raw
    assert raw["none"] != "answered"
    # The PROXY v2 header came before the phone's TLS handshake: the phone's own address.
    assert registry.pop("SIM00000038") == "127.0.0.21"
    assert len(registry) == n and set(registry.values()) == {"127.0.0.1"}, registry
