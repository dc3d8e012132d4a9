"""Figure 2, server CPU per session: the ACS under load from lean CWMP clients in other
processes, next to a bare ``twisted.web`` server under the same load, in the same run.

1. ``acs-security serve`` (SQLite, CPE authentication off) gets one unmeasured round of boot
   sessions that registers the phones and warms the process up;
2. measured: periodic sessions of the same phones (Inform, empty POST, 204);
3. a job pushing the example hardening policy to them is submitted through the API; the
   phones report no ConnectionRequestURL, so the job waits for their sessions; measured: a
   push sessions (Inform, empty POST, SetParameterValues, response, 204), the real push
   path (plan against the stored values, the store writes, the outcome committed);
4. the bare servers (``bench.bare``) get the same sessions from the same load generator, in
   rounds that alternate with the ACS's (a third of the sessions each), so that drifts of
   the machine's speed hit both alike.

Figures: server CPU seconds per session and per HTTP exchange, and their ratio to the bare
server's CPU per exchange.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.procs import PY, REPO, Proc, start_acs, wait_for_line

__all__ = ["run_loadgen", "measure_sessions", "bare_exchange_us", "HARDENING"]

HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"


def run_loadgen(url: str, mode: str, first: int, count: int, *, procs: int = 2,
                concurrency: int = 32, timeout: float = 300, parameter_key: str = "") -> dict[str, Any]:
    """``count`` sessions from ``procs`` load-generator processes; the summed counters."""
    share = (count + procs - 1) // procs
    children = []
    for i in range(procs):
        lo = first + i * share
        n = min(share, first + count - lo)
        if n <= 0:
            break
        children.append(Proc([PY, "-m", "bench.loadgen", "--url", url, "--mode", mode,
                              "--first", str(lo), "--count", str(n), "--concurrency",
                              str(max(1, concurrency // procs)), "--timeout", str(timeout),
                              "--parameter-key", parameter_key],
                             stdout_pipe=True))
    total: dict[str, Any] = {"sessions": 0, "exchanges": 0, "failed": 0, "pushed": 0,
                             "no_push": 0, "errors": {}, "keys": {}, "wall_s": 0.0, "p50_ms": 0.0,
                             "p99_ms": 0.0}
    for child in children:
        out, _ = child.popen.communicate(timeout=timeout + 60)
        child.stop()
        stats = json.loads(out.decode().strip().splitlines()[-1])
        for key in ("sessions", "exchanges", "failed", "pushed", "no_push"):
            total[key] += stats[key]
        for key, n in stats["errors"].items():
            total["errors"][key] = total["errors"].get(key, 0) + n
        for key, n in stats.get("keys", {}).items():
            total["keys"][key] = total["keys"].get(key, 0) + n
        for key in ("wall_s", "p50_ms", "p99_ms"):
            total[key] = max(total[key], stats.get(key, 0.0))
    return total


def _measured(server: Proc, url: str, mode: str, first: int, count: int,
              **kw: Any) -> dict[str, Any]:
    cpu0 = server.cpu_s()
    stats = run_loadgen(url, mode, first, count, **kw)
    stats["server_cpu_s"] = server.cpu_s() - cpu0
    if stats["failed"]:
        raise RuntimeError(f"{mode} round against {url}: {stats['failed']} sessions failed: "
                           f"{stats['errors']}")
    return stats


def _add(total: dict[str, Any] | None, stats: dict[str, Any]) -> dict[str, Any]:
    if total is None:
        return dict(stats)
    for key in ("sessions", "exchanges", "pushed", "server_cpu_s", "wall_s"):
        total[key] += stats[key]
    total["p99_ms"] = max(total["p99_ms"], stats["p99_ms"])
    return total


def _start_bare(mode: str) -> tuple[Proc, str]:
    proc = Proc([PY, "-m", "bench.bare", "--port", "0", "--mode", mode], stdout_pipe=True)
    port = int(wait_for_line(proc, "PORT").split()[1])
    return proc, f"http://127.0.0.1:{port}/"


def bare_exchange_us(sessions: int = 1000, **kw: Any) -> float:
    """CPU microseconds per HTTP exchange of the bare server right now: the machine's speed
    at this moment, to put figures measured minutes apart on one scale (this VM's speed
    drifts by tens of percent)."""
    proc, url = _start_bare("periodic")
    try:
        run_loadgen(url, "periodic", 0, min(sessions, 500), **kw)  # warm-up
        return _per(_measured(proc, url, "periodic", 0, sessions, **kw), "exchanges") * 1e6
    finally:
        proc.stop()


def _per(stats: dict[str, Any], unit: str) -> float:
    return float(stats["server_cpu_s"]) / max(1, stats[unit])


def measure_sessions(workdir: Path, *, phones: int, pushes: int, rounds: int = 3, procs: int = 2,
                     concurrency: int = 32) -> dict[str, Any]:
    """Figure 2 with ``phones`` periodic sessions and ``pushes`` push sessions, each split in
    ``rounds`` rounds that alternate with the bare server's rounds, so that both see the same
    machine (this VM's speed drifts by tens of percent within a minute). Raises RuntimeError
    when a round has failed sessions or a push session got no SetParameterValues."""
    kw: dict[str, Any] = {"procs": procs, "concurrency": concurrency}
    acs = start_acs(workdir / "sessions", f"sqlite:///{workdir}/sessions/acs.db")
    bare_periodic, bare_periodic_url = _start_bare("periodic")
    bare_push, bare_push_url = _start_bare("push")
    results: dict[str, dict[str, Any] | None] = {
        "periodic": None, "push": None, "bare_periodic": None, "bare_push": None}
    try:
        run_loadgen(acs.cwmp_url, "periodic", 0, phones, **kw)  # boot round: registers them
        run_loadgen(bare_periodic_url, "periodic", 0, min(phones, 1000), **kw)  # warm-up
        run_loadgen(bare_push_url, "push", 0, min(pushes, 1000), **kw)
        share = -(-phones // rounds)
        for r in range(rounds):
            lo, n = r * share, min(share, phones - r * share)
            results["periodic"] = _add(results["periodic"],
                                       _measured(acs.proc, acs.cwmp_url, "periodic", lo, n, **kw))
            results["bare_periodic"] = _add(results["bare_periodic"], _measured(
                bare_periodic, bare_periodic_url, "periodic", lo, n, **kw))
        acs.call("POST", "/api/v1/jobs", {
            "policy": HARDENING.read_text(), "policy_name": "hardening", "select": "all",
            "max_fault_rate": 1.0, "deadline": "1h", "max_in_progress": 100_000})
        time.sleep(1.0)  # the engine's first ticks: no ConnectionRequestURL, wait for sessions
        share = -(-pushes // rounds)
        for r in range(rounds):
            lo, n = r * share, min(share, pushes - r * share)
            results["push"] = _add(results["push"],
                                   _measured(acs.proc, acs.cwmp_url, "push", lo, n, **kw))
            results["bare_push"] = _add(results["bare_push"], _measured(
                bare_push, bare_push_url, "push", lo, n, **kw))
        acs_rss = acs.proc.peak_rss_mb()
    finally:
        acs.proc.stop()
        bare_periodic.stop()
        bare_push.stop()
    periodic, push = results["periodic"], results["push"]
    assert periodic is not None and push is not None
    if push["pushed"] < pushes * 0.99:
        raise RuntimeError(f"push rounds: only {push['pushed']} of {pushes} sessions got a "
                           f"SetParameterValues")
    out: dict[str, Any] = {}
    for name in ("periodic", "push"):
        acs_stats, bare_stats = results[name], results[f"bare_{name}"]
        assert acs_stats is not None and bare_stats is not None
        acs_ex = _per(acs_stats, "exchanges")
        bare_ex = _per(bare_stats, "exchanges")
        out[f"cpu_per_session_us_{name}"] = round(_per(acs_stats, "sessions") * 1e6, 1)
        out[f"cpu_per_exchange_us_{name}"] = round(acs_ex * 1e6, 1)
        out[f"bare_cpu_per_exchange_us_{name}"] = round(bare_ex * 1e6, 1)
        out[f"cpu_per_exchange_ratio_{name}"] = round(acs_ex / bare_ex, 3)
        out[f"sessions_{name}"] = acs_stats["sessions"]
        out[f"session_p99_ms_{name}"] = acs_stats["p99_ms"]
        out[f"sessions_per_s_{name}"] = round(acs_stats["sessions"] / acs_stats["wall_s"], 1)
    out["periodic_sessions_per_core_s"] = round(1 / _per(periodic, "sessions"), 1)
    out["push_sessions_per_core_s"] = round(1 / _per(push, "sessions"), 1)
    bp = results["bare_periodic"]
    assert bp is not None
    out["bare_exchanges_per_core_s"] = round(1 / _per(bp, "exchanges"), 1)
    out["sessions_server_peak_rss_mb"] = round(acs_rss, 1)
    return out


if __name__ == "__main__":
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(prefix="acs-bench-") as tmp:
        print(json.dumps(measure_sessions(Path(tmp), phones=n, pushes=n), indent=2))
