"""Figure 6: the push of figure 5 (PostgreSQL) with one and with two ACS nodes.

One run (:func:`cluster_push`), on a fresh PostgreSQL schema each:

1. ``nodes`` ``acs-security serve`` processes on the same database, each with its own CWMP
   and API port and ``--node-id acsN``, role all (cluster on, the default for PostgreSQL);
2. the load balancer in front of their CWMP ports; the phones' ACS URL and every node's
   public URL point at it. The one-node run goes through it too, so that the two runs differ
   only in the number of nodes. ``balancer="haproxy"`` (the figure): real HAProxy with the
   configuration of deploy/haproxy.cfg (:mod:`acs_security.deploy_config`; TLS termination
   with a dev-ca certificate, ACSNODE cookie, /readyz health checks, PROXY v2 to the nodes,
   which trust it), the phones speaking HTTPS to it. ``balancer="tcp"``: the project's TCP
   balancer (``bench/lb.py``) and plain HTTP, the figure as measured before HAProxy, kept to
   compare the two side by side;
3. ``acs-security simulate`` (its own process) boots the phones through the balancer;
   connection requests go from the nodes straight to the simulator's listener;
4. the hardening policy is submitted on node 1's API, as in figures 3-5, and measured the
   same way: submit to the last outcome in the job report;
5. afterwards, from the store: which node decided each of the job's tasks (``tasks.node``),
   and from the balancer (HAProxy's ``show stat``, the TCP balancer's counters): how many
   connections (phone sessions; one per request with HAProxy, which does not keep a node
   connection past its client's) each node got during the push.

``pin=True`` (``bench.run --pin``, ``python -m bench.cluster --pin``): each node on a core of its
own and the simulator, the balancer and PostgreSQL on the other cores, the same in both runs
(bench/pinning.py decides, bench/affinity.py applies and reads back); on a machine with fewer
cores than that needs, the figure is not measured and the reason is the result.

A two-node job that does not end within ``timeout`` (nodes that do not share the job's work
leave the phones that call the other node unserved) is reported as it stood, not raised.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acs_security.deploy_config import HaproxyNode
from acs_security.sim.haproxy import HaproxyProcess, find_haproxy, loopback_layout
from bench.affinity import PostgresPin, launching_on, observe, read_cores
from bench.pinning import PinningRefused, choose_cpus, describe_layout, format_cpus, plan_layout
from bench.procs import PY, REPO, AcsProcess, Proc, free_port, start_acs, wait_for_line
from bench.push import CR_PASSWORD, CR_USER, SIM_MODELS, _time, _wait, postgres_schema
from bench.sessions import HARDENING

__all__ = ["cluster_push", "measure_cluster", "main"]


def _lb_stats(lb: Proc, path: Path, previous: int) -> dict[str, Any]:
    """Ask the balancer for its counters (SIGUSR1) and wait for the fresh file."""
    import signal

    lb.popen.send_signal(signal.SIGUSR1)
    state: dict[str, Any] = {}

    def fresh() -> bool:
        try:
            state.update(json.loads(path.read_text()))
        except (OSError, ValueError):
            return False
        return int(state.get("seq", 0)) > previous

    _wait("the balancer's counters", fresh, 10, interval=0.05)
    return state


def _task_nodes(db_url: str, job_id: int) -> dict[str | None, int]:
    """Tasks of the job per deciding node, read from the store (None: not recorded)."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT node, count(*) FROM tasks WHERE job_id = %s GROUP BY node",
                            (job_id,)).fetchall()
    return {node: int(n) for node, n in rows}


class _Balancer:
    """The figure's balancer: HAProxy or the TCP balancer; connections per node and CPU."""

    def __init__(self, kind: str, workdir: Path, nodes: list[tuple[str, int, int]]) -> None:
        self.kind = kind
        self.names = {f"127.0.0.1:{cwmp}": name for name, cwmp, _ in nodes}
        self.haproxy: HaproxyProcess | None = None
        self.lb: Proc | None = None
        self._stats_file = workdir / "lb-stats.json"
        self._seq = 0
        if kind == "haproxy":
            pki = workdir / "pki"
            done = subprocess.run([PY, "-m", "acs_security.cli", "certs", "dev-ca", "--out", str(pki),
                                   "--server-cn", "acs.example.net", "--devices", "0", "--force"],
                                  cwd=REPO, capture_output=True, timeout=120, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"acs-security certs dev-ca failed: {done.stderr.decode()[-500:]}")
            crt = workdir / "acs.pem"
            crt.write_bytes((pki / "server.pem").read_bytes() + (pki / "server.key").read_bytes())
            self.ca: Path | None = pki / "ca.pem"
            runtime = Path(tempfile.mkdtemp(prefix="acs-haproxy-"))
            layout = loopback_layout([HaproxyNode(n, "127.0.0.1", c, a) for n, c, a in nodes], crt=crt,
                                     stats_socket=runtime / "admin.sock")
            self.haproxy = HaproxyProcess(find_haproxy(), layout, log=workdir / "haproxy.log")
            self.port = self.haproxy.cwmp_port
        elif kind == "tcp":
            self.ca = None
            self.port = free_port()
        else:
            raise ValueError(f"balancer {kind!r}: haproxy or tcp")

    @property
    def url(self) -> str:
        scheme = "https" if self.kind == "haproxy" else "http"
        return f"{scheme}://acs.example.net:{self.port}/"

    def node_args(self) -> list[str]:
        """What the nodes need behind it: HAProxy's PROXY v2 header, believed from 127.0.0.1."""
        return ["--trusted-proxies", "127.0.0.1", "--proxy-protocol", "cwmp"] if self.kind == "haproxy" else []

    def start(self, cpus: frozenset[int] | None = None) -> None:
        if self.haproxy is not None:
            if cpus is None:
                self.haproxy.start()
            else:
                with launching_on(cpus):  # HAProxy inherits the mask (and sizes its threads to it)
                    self.haproxy.start()
            for name in self.names.values():
                self.haproxy.wait_server("acs_cwmp", name, "UP", 30)
            return
        self.lb = Proc([PY, "-m", "bench.lb", "--listen", f"127.0.0.1:{self.port}",
                        *[x for k in self.names for x in ("--backend", k)],
                        "--stats", str(self._stats_file)], stdout_pipe=True, cpus=cpus)
        wait_for_line(self.lb, "listening")

    def connections(self) -> dict[str, int]:
        """Connections each node got so far, by node name."""
        if self.haproxy is not None:
            return {r["svname"]: int(r["stot"]) for r in self.haproxy.stats()
                    if r["pxname"] == "acs_cwmp" and r["svname"] in self.names.values()}
        assert self.lb is not None
        state = _lb_stats(self.lb, self._stats_file, self._seq)
        self._seq = int(state["seq"])
        return {self.names.get(k, k): int(v["connections"]) for k, v in state["backends"].items()}

    @property
    def pid(self) -> int:
        if self.haproxy is not None:
            return self.haproxy.current.pid
        assert self.lb is not None
        return self.lb.pid

    def cpu_s(self) -> float:
        if self.haproxy is not None:
            return self.haproxy.cpu_s()
        assert self.lb is not None
        return self.lb.cpu_s()

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        if self.lb is not None:
            self.lb.stop()


def cluster_push(workdir: Path, db_url: str, *, nodes: int, phones: int, boot_ramp: float,
                 max_in_progress: int = 2000, max_cr_in_flight: int = 400,
                 sim_sessions: int = 400, timeout: float = 600.0,
                 job_timeout: float = 600.0, node_args: Sequence[str] = (),
                 balancer: str = "haproxy",
                 layout: Mapping[str, frozenset[int]] | None = None) -> dict[str, Any]:
    """One push through the balancer to ``nodes`` nodes on ``db_url`` (a fresh database);
    ``node_args``: more ``serve`` flags for every node; ``layout``: bench/pinning.py's, to pin
    the processes by (None: unpinned)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cr.pw").write_text(CR_PASSWORD + "\n")
    os.chmod(workdir / "cr.pw", 0o600)
    ports = [(f"acs{i}", free_port(), free_port()) for i in range(1, nodes + 1)]
    lb = _Balancer(balancer, workdir, ports)
    public = lb.url
    acs: list[AcsProcess] = []
    sim = None
    shared = layout["shared"] if layout is not None else None
    pg = _postgres_pin(db_url, shared) if shared is not None else None
    pinning: dict[str, Any] = {"postgres": pg.pin()} if pg is not None else {}
    try:
        for i, (name, cwmp, api) in enumerate(ports, 1):
            # One at a time: the first applies the migrations, the others find them done.
            acs.append(start_acs(workdir, db_url, cwmp=cwmp, api=api, args=[
                "--public-url", public, "--node-id", name, "--role", "all",
                "--cr-username", CR_USER, "--cr-password-file", str(workdir / "cr.pw"),
                "--max-cr-in-flight", str(max_cr_in_flight), *lb.node_args(), *node_args],
                cpus=layout[f"node{i}"] if layout is not None else None))
        lb.start(shared)
        trust = ["--trust-ca", str(lb.ca)] if lb.ca is not None else []
        sim = Proc([PY, "-m", "acs_security.cli", "simulate", "--acs", public,
                    "--resolve", "acs.example.net:127.0.0.1", "--phones", str(phones),
                    "--inform-interval", "86400", "--seed", "7",
                    "--cr-password-mode", "shared", "--cr-username", CR_USER,
                    "--cr-password-file", str(workdir / "cr.pw"), *trust,
                    "--max-sessions", str(sim_sessions), "--boot-ramp", str(boot_ramp),
                    "--status-interval", "5"], log=workdir / f"simulate-{lb.port}.log", cpus=shared)
        first = acs[0]
        boot0 = time.monotonic()

        def registered_all() -> bool:
            if sim.popen.poll() is not None:
                raise RuntimeError(f"the simulator exited; see {workdir}/simulate-{lb.port}.log")
            for a in acs:
                if a.proc.popen.poll() is not None:
                    raise RuntimeError(f"a node exited; see {workdir}/serve-{a.cwmp_port}.log")
            return int(first.call("GET", "/api/v1/devices?limit=1")["total"]) >= phones

        _wait(f"{phones} simulated phones to register", registered_all, timeout)
        boot_s = time.monotonic() - boot0
        time.sleep(1.0)  # the boot sessions' last commits
        before = lb.connections()
        cpu0 = [a.proc.cpu_s() for a in acs]
        lb_cpu0 = lb.cpu_s()
        sim_cpu0 = sim.cpu_s()
        submitted = time.time()
        job = first.call("POST", "/api/v1/jobs", {
            "policy": HARDENING.read_text(), "policy_name": "hardening",
            "select": "model=" + ",".join(SIM_MODELS), "max_fault_rate": 1.0, "deadline": "30m",
            "max_in_progress": max_in_progress})
        job_id = int(job["id"])
        if layout is not None:
            # What the kernel has during the push: every thread of each process, and the
            # PostgreSQL processes (the nodes' backends among them).
            pinning["observed"] = observe({**{n: a.proc.pid for (n, _, _), a in zip(ports, acs, strict=True)},
                                           "simulator": sim.pid, "balancer": lb.pid,
                                           "bench": os.getpid()}, pg)
        state: dict[str, Any] = {}

        def finished() -> bool:
            state.update(first.call("GET", f"/api/v1/jobs/{job_id}"))
            return state["state"] != "running"

        ended = True
        try:
            _wait("the job to end", finished, job_timeout)
        except RuntimeError:
            ended = False
        waited = time.time() - submitted
        cpu = [a.proc.cpu_s() - c for a, c in zip(acs, cpu0, strict=True)]
        lb_cpu = lb.cpu_s() - lb_cpu0
        sim_cpu = sim.cpu_s() - sim_cpu0
        after = lb.connections()
        report = first.call("GET", f"/api/v1/jobs/{job_id}/report", timeout=120)
        tasks_by_node = _task_nodes(db_url, job_id)
    finally:
        if sim is not None:
            sim.stop()
        lb.stop()
        for a in acs:
            a.proc.stop()
        if pg is not None:
            pinning["postgres_restored"] = pg.restore()
    applied = [d for d in report["devices"] if str(d["state"]).startswith("applied")]
    sessions = {k: v - before.get(k, 0) for k, v in after.items()}
    complete = ended and state.get("state") == "completed" and len(applied) == phones
    times = sorted(_time(d["finished_at"]) - submitted for d in applied)
    duration = times[-1] if times else None
    return {
        "nodes": nodes,
        "phones": phones,
        "balancer": balancer,
        "state": state.get("state") if ended else f"still {state.get('state')} after {waited:.0f} s",
        "complete": complete,
        "applied": len(applied),
        "counts": state.get("counts"),
        # Phones per second only for a job that applied every phone: a partial one would
        # flatter or hide whatever went wrong.
        "phones_per_s": round(phones / duration, 1) if complete and duration else None,
        "duration_s": round(duration, 2) if duration is not None else None,
        "p50_s": round(times[len(times) // 2], 2) if times else None,
        "p99_s": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2) if times else None,
        "server_cpu_s": [round(c, 2) for c in cpu],
        "server_cpu_ms_per_phone": round(sum(cpu) / phones * 1000, 3),
        "balancer_cpu_ms_per_phone": round(lb_cpu / phones * 1000, 3),
        "simulator_cpu_ms_per_phone": round(sim_cpu / phones * 1000, 3),
        "boot_s": round(boot_s, 1),
        "tasks_by_node": {str(k) if k is not None else "unrecorded": v
                          for k, v in sorted(tasks_by_node.items(), key=lambda kv: str(kv[0]))},
        "sessions_by_node": dict(sorted(sessions.items())),
        "pinning": pinning,
    }


def _postgres_pin(db_url: str, cpus: frozenset[int]) -> PostgresPin:
    """The server of ``db_url``, found from this connection's backend (its parent is the
    postmaster), read while the backend is alive."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return PostgresPin(int(row[0]), cpus)


def pin_layout(counts: Sequence[int], cpus: str | None = None) -> dict[str, frozenset[int]]:
    """The layout for runs of ``counts`` nodes, from the CPUs this process may use (or
    ``cpus``, ``--cpus``). Raises PinningRefused with the reason."""
    chosen = choose_cpus(os.sched_getaffinity(0), cpus)
    return plan_layout(chosen, max(counts), cores=read_cores(chosen))


def measure_cluster(work: Path, base_url: str, *, phones: int, boot_ramp: float,
                    timeout: float, balancer: str = "haproxy", pin: bool = False,
                    cpus: str | None = None, counts: Sequence[int] = (1, 2)) -> dict[str, Any]:
    """The push with one node, then with two (``counts``), each on a fresh schema; the
    figure's keys. ``pin``: every run on the layout of bench/pinning.py for the largest count
    (``cpus``: the CPUs to lay out); when it cannot be made, nothing is measured and
    ``cluster_pinning`` says why (a figure measured unpinned is not the pinned one)."""
    out: dict[str, Any] = {"cluster_phones": phones, "cluster_balancer": balancer}
    layout = None
    if pin:
        try:
            layout = pin_layout(counts, cpus)
        except PinningRefused as exc:
            out["cluster_pinning"] = {"requested": True, "refused": str(exc)}
            out["cluster_phones_per_s_1node"] = out["cluster_phones_per_s_2nodes"] = None
            out["cluster_ratio_2_vs_1"] = None
            out["cluster_notes"] = []  # the report's pinning note says it (bench/report.py)
            return out
        out["cluster_pinning"] = {"requested": True, "layout": {k: format_cpus(v) for k, v in layout.items()},
                                  "described": describe_layout(layout)}
    else:
        out["cluster_pinning"] = {"requested": False}
    runs: dict[int, dict[str, Any]] = {}
    # Pinned, the bench (this thread, and the threads it starts: the memory samplers) runs on
    # the shared CPUs too, off the nodes' cores.
    with launching_on(layout["shared"]) if layout is not None else contextlib.nullcontext():
        for nodes in counts:
            db, drop = postgres_schema(base_url, f"acs_bench_cluster{nodes}_{os.getpid()}")
            try:
                runs[nodes] = cluster_push(work / f"cluster-{nodes}", db, nodes=nodes, phones=phones,
                                           boot_ramp=boot_ramp, job_timeout=timeout, balancer=balancer,
                                           layout=layout)
            finally:
                drop()
    notes: list[str] = []
    for nodes, r in runs.items():
        tag = "1node" if nodes == 1 else f"{nodes}nodes"
        for key in ("phones_per_s", "duration_s", "p50_s", "p99_s", "server_cpu_ms_per_phone",
                    "balancer_cpu_ms_per_phone", "simulator_cpu_ms_per_phone", "state", "applied", "tasks_by_node",
                    "sessions_by_node", "server_cpu_s", "boot_s", "pinning"):
            out[f"cluster_{key}_{tag}"] = r[key]
        if not r["complete"]:
            notes.append(f"6 cluster, {nodes} node(s): job {r['state']}, {r['applied']} of "
                         f"{phones} applied ({r['counts']}); phones/s not reported")
    if 1 not in runs or 2 not in runs:
        out["cluster_notes"] = notes
        return out
    one, two = runs[1]["phones_per_s"], runs[2]["phones_per_s"]
    out["cluster_ratio_2_vs_1"] = round(two / one, 3) if one and two else None
    tasks = runs[2]["tasks_by_node"]
    total = sum(tasks.values())
    for i in (1, 2):
        out[f"cluster_share_node{i}_2nodes"] = (
            round(tasks.get(f"acs{i}", 0) / total, 3) if total and tasks.get("unrecorded", 0) < total
            else None)
        sessions = runs[2]["sessions_by_node"]
        all_sessions = sum(sessions.values())
        out[f"cluster_session_share_node{i}_2nodes"] = (
            round(sessions.get(f"acs{i}", 0) / all_sessions, 3) if all_sessions else None)
    if total and tasks.get("unrecorded", 0) == total:
        notes.append("6 cluster: tasks.node is NULL for every task (the deciding node is not "
                      "recorded by this version); the connection split is the balancer's")
    elif tasks.get("unrecorded"):
        notes.append(f"6 cluster: tasks.node NULL for {tasks['unrecorded']} of {total} tasks")
    out["cluster_notes"] = notes
    return out


def main(argv: list[str] | None = None) -> int:
    """Figure 6 alone, or one of its runs: prints the result as JSON; exit 1 when not measured."""
    p = argparse.ArgumentParser(description="figure 6: the push with 1 and 2 nodes on PostgreSQL")
    p.add_argument("--postgres", default=os.environ.get("ACS_BENCH_POSTGRES_URL")
                   or os.environ.get("ACS_TEST_POSTGRES_URL"), metavar="URL")
    p.add_argument("--nodes", default="1,2", help="node counts to run (default 1,2: the comparison)")
    p.add_argument("--phones", type=int, default=2_000)
    p.add_argument("--boot-ramp", type=float, default=4.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--balancer", choices=("haproxy", "tcp"), default="haproxy")
    p.add_argument("--pin", action="store_true", help="a core per node, the shared processes on the rest")
    p.add_argument("--cpus", metavar="LIST", help="the CPUs to lay out (e.g. 0-3); implies --pin")
    p.add_argument("--work", type=Path, help="keep the logs there (default: a temporary folder)")
    args = p.parse_args(argv)
    try:
        counts = sorted({int(n) for n in args.nodes.split(",")})
    except ValueError:
        p.error(f"--nodes {args.nodes!r}: node counts such as 1,2")
    if not args.postgres or not counts or counts[0] < 1:
        p.error("needs --postgres URL (or $ACS_BENCH_POSTGRES_URL) and node counts of 1 or more")
    work = args.work or Path(tempfile.mkdtemp(prefix="acs-cluster-"))
    out = measure_cluster(work, args.postgres, phones=args.phones, boot_ramp=args.boot_ramp,
                          timeout=args.timeout, balancer=args.balancer, pin=args.pin or args.cpus is not None,
                          cpus=args.cpus, counts=counts)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 1 if out["cluster_pinning"].get("refused") else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
