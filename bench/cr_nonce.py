"""Connection-request nonce reuse (RFC 7616 nc, connreq/digest_cache.py): HTTP requests per
phone and the ACS's CPU per connection request, without and with the cache.

    .venv/bin/python -m bench.cr_nonce [--phones N] [--rounds R] [--in-flight C]

``acs-security simulate`` runs ``N`` phones in its own process (their boots pushed a day
away, so the phones only answer connection requests). This process is the ACS side: the
HTTP connection-request client exactly as ``serve`` builds it (server/requesters.py: Agent
over DirectIPEndpointFactory, no persistent connections), sending one connection request to
every phone, ``C`` at a time. Each round sends one such wave without the cache and one with
it (alternating, so drifts of a shared machine hit both); the cache persists across rounds,
so round 1 with it is cold (two requests per phone) and later rounds are warm. Figures:
HTTP requests per phone, this process's CPU per connection request, the simulator's CPU per
connection request, and the results. Never part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.task import react
from twisted.web.client import Agent

from acs_security.connreq.digest_cache import DigestNonceCache
from acs_security.connreq.http_client import HttpConnectionRequester
from acs_security.connreq.pool import QuietConnectionPool
from acs_security.server.requesters import DirectIPEndpointFactory
from acs_security.sim.build import serial_for
from bench.procs import PY, Proc, free_port

CR_USER, CR_PASSWORD = "acs-bench", "bench-connection-request-secret"


class CountingAgent:
    """Counts the HTTP requests (each one a request the phone's listener receives)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.inner.request(*args, **kwargs)


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the simulator's connection-request listener did not come up")


async def wave(reactor: Any, cr: HttpConnectionRequester, agent: CountingAgent, urls: list[str],
               in_flight: int, sim: Proc) -> dict[str, Any]:
    sem = DeferredSemaphore(in_flight)
    sent0, cpu0, sim0, wall0 = agent.count, time.process_time(), sim.cpu_s(), time.monotonic()
    results = await gatherResults([sem.run(cr.request, url, CR_USER, CR_PASSWORD) for url in urls])
    cpu, sim_cpu, wall = time.process_time() - cpu0, sim.cpu_s() - sim0, time.monotonic() - wall0
    return {"requests_per_phone": (agent.count - sent0) / len(urls), "acs_ms": 1000 * cpu / len(urls),
            "sim_ms": 1000 * sim_cpu / len(urls), "wall_s": wall,
            "kinds": dict(Counter(str(r.kind) for r in results))}


def run(phones: int, rounds: int, in_flight: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-cr-nonce-") as tmp:
        workdir = Path(tmp)
        (workdir / "cr.pw").write_text(CR_PASSWORD + "\n")
        sim = Proc([PY, "-m", "acs_security.cli", "simulate", "--acs", f"http://127.0.0.1:{free_port()}/",
                    "--phones", str(phones), "--cr-listen", f"127.0.0.1:{port}", "--boot-ramp", "86400",
                    "--inform-interval", "86400", "--seed", "7", "--cr-password-mode", "shared",
                    "--cr-username", CR_USER, "--cr-password-file", str(workdir / "cr.pw"),
                    "--status-interval", "0"], log=workdir / "simulate.log")
        try:
            wait_port(port)
            urls = [f"http://127.0.0.1:{port}/{serial_for('SIM', i)}" for i in range(phones)]

            async def main(reactor: Any) -> None:
                agent = CountingAgent(Agent.usingEndpointFactory(
                    reactor, DirectIPEndpointFactory(reactor, timeout=10.0),
                    pool=QuietConnectionPool(reactor, persistent=False)))
                cache = DigestNonceCache()
                without = HttpConnectionRequester(agent, reactor, nonce_source=os.urandom)  # type: ignore[arg-type]
                with_cache = HttpConnectionRequester(agent, reactor, nonce_source=os.urandom,  # type: ignore[arg-type]
                                                     digest_cache=cache)
                table: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
                for n in range(1, rounds + 1):
                    for name, cr in (("off", without), ("on", with_cache)):
                        figures = await wave(reactor, cr, agent, urls, in_flight, sim)
                        table[name].append(figures)
                        print(f"round {n} nonce reuse {name:3}: {figures['requests_per_phone']:.2f} requests/phone, "
                              f"ACS {figures['acs_ms']:.3f} ms CPU/CR, simulator {figures['sim_ms']:.3f} ms CPU/CR, "
                              f"{figures['wall_s']:.1f} s, {figures['kinds']}", flush=True)
                        await _pause(reactor, 1.2)  # past the phones' 1 s minimum interval between CRs
                warm = {name: rows[1:] or rows for name, rows in table.items()}
                off_ms = statistics.median(r["acs_ms"] for r in warm["off"])
                on_ms = statistics.median(r["acs_ms"] for r in warm["on"])
                off_sim = statistics.median(r["sim_ms"] for r in warm["off"])
                on_sim = statistics.median(r["sim_ms"] for r in warm["on"])
                print(f"warm rounds (median of {len(warm['on'])}), {phones} phones, {in_flight} in flight:")
                print(f"  requests/phone  off {statistics.median(r['requests_per_phone'] for r in warm['off']):.2f}"
                      f"  on {statistics.median(r['requests_per_phone'] for r in warm['on']):.2f}")
                print(f"  ACS CPU/CR      off {off_ms:.3f} ms  on {on_ms:.3f} ms  ratio {off_ms / on_ms:.2f}x")
                print(f"  sim CPU/CR      off {off_sim:.3f} ms  on {on_sim:.3f} ms  ratio {off_sim / on_sim:.2f}x")
                print(f"  pre-emptive answers accepted {cache.accepted}, refused {cache.refused}")

            react(main)  # type: ignore[no-untyped-call]
        finally:
            sim.stop()


def _pause(reactor: Any, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=200)
    ns = parser.parse_args()
    run(ns.phones, ns.rounds, ns.in_flight)
