"""``make bench`` / ``make bench-quick``: every figure next to its baseline, as a table and
as JSON in ``bench/results/`` (``latest.json`` and a dated copy).

    .venv/bin/python -m bench.run [--quick] [--only codec,sessions,push,growth,postgres,cluster,desired,files]
                                  [--postgres URL] [--profile DIR] [--keep] [--pin [--cpus 0-3]]

PostgreSQL (figures 5 and 6) uses ``--postgres``, else $ACS_BENCH_POSTGRES_URL, else
$ACS_TEST_POSTGRES_URL; without one, those figures are reported as not measured. Exit status 0
when every figure was measured (targets missed or not), 1 when one could not run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import REPO

__all__ = ["SIZES", "main"]

#: Counts of a full and a quick run (same figures and keys, smaller fleets).
SIZES: dict[str, dict[str, Any]] = {
    "full": {"codec_s": 4.0, "periodic": 10_000, "pushes": 5_000, "push": 10_000, "files": 5_000,
             "growth": (1_000, 10_000, 50_000), "growth_push": 10_000, "boot_ramp": 15.0,
             "rounds": 5, "cluster": 10_000, "cluster_timeout": 900.0, "nat": 5_000},
    "quick": {"codec_s": 1.5, "periodic": 2_000, "pushes": 1_000, "push": 2_000, "files": 1_000,
              "growth": (200, 2_000, 10_000), "growth_push": 1_000, "boot_ramp": 4.0,
              "rounds": 3, "cluster": 2_000, "cluster_timeout": 300.0, "nat": 1_000},
}
FIGURES = ("codec", "sessions", "push", "growth", "postgres", "cluster", "desired", "files", "nat")
#: HTTP exchanges of one pushed phone: the connection request (a digest challenge, then the
#: authenticated request) and the session (Inform, empty POST, SetParameterValues response).
EXCHANGES_PER_PUSH = 5


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (about 3 minutes)")
    p.add_argument("--only", default=",".join(FIGURES), help=f"figures to run ({','.join(FIGURES)})")
    p.add_argument("--postgres", default=os.environ.get("ACS_BENCH_POSTGRES_URL")
                   or os.environ.get("ACS_TEST_POSTGRES_URL"), metavar="URL")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy profiles of the server and the simulator during the push")
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results", metavar="DIR")
    p.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    p.add_argument("--balancer", choices=("haproxy", "tcp"), default="haproxy",
                   help="figure 6's load balancer: real HAProxy with TLS (default; deploy/haproxy.cfg) "
                        "or the project's TCP balancer with plain HTTP (the figure before HAProxy)")
    p.add_argument("--pin", action="store_true",
                   help="figure 6 with each node on a core of its own and the simulator, PostgreSQL and "
                        "the balancer on the other cores, the same in both runs (needs 3 cores or more; "
                        "bench/pinning.py)")
    p.add_argument("--cpus", metavar="LIST",
                   help="the CPUs figure 6 lays out when pinned, e.g. 0-3 (default: all this process "
                        "may use); implies --pin")
    args = p.parse_args(argv)
    if args.cpus is not None:
        from bench.pinning import PinningRefused, parse_cpus

        try:
            parse_cpus(args.cpus)
        except PinningRefused as exc:
            p.error(str(exc))
        args.pin = True
    only = {f.strip() for f in args.only.split(",") if f.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        p.error(f"--only: unknown figure(s) {sorted(unknown)}")
    size = SIZES["quick" if args.quick else "full"]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    from bench.report import check_targets, machine, render_table, write_results

    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(),
                               "sizes": {k: v for k, v in size.items()}, "notes": []}
    failed: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="acs-bench-"))
    started = time.monotonic()

    def step(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        if name not in only:
            return
        _log(f"{name} ...")
        t0 = time.monotonic()
        try:
            results.update(fn())
        except Exception as exc:  # noqa: BLE001 - one figure failing must not lose the others
            traceback.print_exc()
            failed.append(name)
            results["notes"].append(f"{name}: not measured ({type(exc).__name__}: {exc})"[:300])
        _log(f"{name} done in {time.monotonic() - t0:.0f} s")

    try:
        step("codec", lambda: _codec(size))
        step("sessions", lambda: _sessions(work, size))
        step("desired", lambda: _desired(work, size))
        step("push", lambda: _push(work, size, args.profile))
        step("growth", lambda: _growth(work, size))
        if "postgres" in only and not args.postgres:
            results["notes"].append("5 PostgreSQL: not measured (no --postgres, "
                                    "$ACS_BENCH_POSTGRES_URL or $ACS_TEST_POSTGRES_URL)")
            results["push_phones_per_s_postgres"] = None
        else:
            step("postgres", lambda: _postgres(work, size, args.postgres, args.profile))
        if "cluster" in only and not args.postgres:
            results["notes"].append("6 cluster: not measured (no --postgres, "
                                    "$ACS_BENCH_POSTGRES_URL or $ACS_TEST_POSTGRES_URL)")
            results["cluster_phones_per_s_2nodes"] = None
        else:
            step("cluster", lambda: _cluster(work, size, args.postgres, results["notes"], args.balancer,
                                             args.pin, args.cpus))
            if (results.get("cluster_pinning") or {}).get("refused"):
                failed.append("cluster")  # asked pinned, could not be: not measured
        step("files", lambda: _files(work, size))
        step("nat", lambda: _nat(work, size))
    finally:
        if args.keep:
            _log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if "push_bare_limit_phones_per_s" not in results and "bare_exchanges_per_core_s" in results:
        results["push_bare_limit_phones_per_s"] = round(
            results["bare_exchanges_per_core_s"] / EXCHANGES_PER_PUSH, 1)
    if args.quick:
        results["notes"].append(
            "quick run: smaller fleets (see sizes); growth compares "
            f"{size['growth'][0]:,} and {size['growth'][-1]:,} registered under the 1k/50k keys")
    results["targets"] = check_targets(results)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    latest, dated = write_results(results, args.results)
    m = results["machine"]
    print(f"\nacs-security benchmarks ({results['mode']}) on {m['cores']} cores, {m['cpu']}, "
          f"{m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v))
    print(render_table(results))
    print(f"\nwritten {latest} and {dated.name} ({results['elapsed_s']:.0f} s)")
    return 1 if failed else 0


def _codec(size: dict[str, Any]) -> dict[str, Any]:
    from bench.codec import measure_codec

    return measure_codec(budget_s=size["codec_s"])


def _sessions(work: Path, size: dict[str, Any]) -> dict[str, Any]:
    from bench.sessions import measure_sessions

    out = measure_sessions(work, phones=size["periodic"], pushes=size["pushes"],
                           rounds=size["rounds"])
    out["push_bare_limit_phones_per_s"] = round(out["bare_exchanges_per_core_s"] / EXCHANGES_PER_PUSH, 1)
    return out


def _desired(work: Path, size: dict[str, Any]) -> dict[str, Any]:
    from bench.desired import measure_desired

    return measure_desired(work / "desired", phones=size["periodic"], rounds=2 * size["rounds"])


def _push(work: Path, size: dict[str, Any], profile: Path | None) -> dict[str, Any]:
    from bench.push import fleet_push

    r = fleet_push(work / "push", f"sqlite:///{work}/push/acs.db", phones=size["push"],
                   boot_ramp=size["boot_ramp"], profile=profile / "push" if profile else None)
    return {f"push_{k}": v for k, v in r.items()}


def _growth(work: Path, size: dict[str, Any]) -> dict[str, Any]:
    """The same push with more and more phones registered. The cost per pushed phone is the
    server's CPU per phone in units of the bare server's CPU per HTTP exchange, measured just
    before and just after each push: the runs are minutes apart and this VM's speed drifts by
    tens of percent, which the raw CPU figures carry (growth_raw_ratio_50k_vs_1k)."""
    from bench.push import fleet_push
    from bench.sessions import bare_exchange_us

    out: dict[str, Any] = {}
    cost: list[float] = []
    raw: list[float] = []
    for label, extra in zip(("1k", "10k", "50k"), size["growth"], strict=True):
        where = work / f"growth-{label}"
        before = bare_exchange_us()
        r = fleet_push(where, f"sqlite:///{where}/acs.db", phones=size["growth_push"],
                       registered=extra, boot_ramp=size["boot_ramp"])
        bare_us = (before + bare_exchange_us()) / 2
        out[f"growth_registered_{label}"] = r["registered"]
        out[f"growth_cpu_ms_per_phone_{label}"] = r["server_cpu_ms_per_phone"]
        out[f"growth_bare_exchange_us_{label}"] = round(bare_us, 1)
        out[f"growth_cost_bare_exchanges_per_phone_{label}"] = round(
            r["server_cpu_ms_per_phone"] * 1000 / bare_us, 2)
        out[f"growth_phones_per_s_{label}"] = r["phones_per_s"]
        out[f"growth_register_bulk_s_{label}"] = r["register_bulk_s"]
        cost.append(r["server_cpu_ms_per_phone"] * 1000 / bare_us)
        raw.append(r["server_cpu_ms_per_phone"])
    out["growth_ratio_50k_vs_1k"] = round(cost[-1] / cost[0], 3)
    out["growth_raw_ratio_50k_vs_1k"] = round(raw[-1] / raw[0], 3)
    out["growth_wall_ratio_50k_vs_1k"] = round(out["growth_phones_per_s_1k"]
                                               / out["growth_phones_per_s_50k"], 3)
    return out


def _postgres(work: Path, size: dict[str, Any], url: str, profile: Path | None = None) -> dict[str, Any]:
    from bench.push import fleet_push, postgres_schema

    db, drop = postgres_schema(url, f"acs_bench_{os.getpid()}")
    try:
        r = fleet_push(work / "postgres", db, phones=size["push"], boot_ramp=size["boot_ramp"],
                       profile=profile / "postgres" if profile else None)
    finally:
        drop()
    return {f"push_{k}_postgres": v for k, v in r.items() if k not in ("phones", "registered")}


def _files(work: Path, size: dict[str, Any]) -> dict[str, Any]:
    """Figure 8: the same push by SetParameterValues and by cfg.xml Download (bench/push.py)."""
    from bench.push import push_with_download

    return push_with_download(work / "files", phones=size["files"], boot_ramp=size["boot_ramp"])


def _nat(work: Path, size: dict[str, Any]) -> dict[str, Any]:
    """Figure 9: the push with 60 % of the phones behind NAT beside the same push without
    (bench/nat.py)."""
    from bench.nat import push_behind_nat

    return push_behind_nat(work / "nat", phones=size["nat"], boot_ramp=size["boot_ramp"])


def _cluster(work: Path, size: dict[str, Any], url: str, notes: list[str],
             balancer: str = "haproxy", pin: bool = False, cpus: str | None = None) -> dict[str, Any]:
    """Figure 6: the push of figure 5 with one and with two nodes behind the balancer (real
    HAProxy unless ``balancer`` is "tcp"), each on a fresh schema (bench/cluster.py); ``pin``:
    a core per node (bench/pinning.py)."""
    from bench.cluster import measure_cluster

    out = measure_cluster(work, url, phones=size["cluster"], boot_ramp=size["boot_ramp"],
                          timeout=size["cluster_timeout"], balancer=balancer, pin=pin, cpus=cpus)
    notes.extend(out.pop("cluster_notes"))
    return out


if __name__ == "__main__":
    sys.exit(main())
