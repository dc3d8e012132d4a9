"""``make bench-large [PHONES=N]``: a fleet of N simulated phones (default 100,000) registered
and pushed on one node, on SQLite and on PostgreSQL (issue 17, target 6). Not part of
``make bench``: each store's run takes a quarter of an hour at 100,000 phones on 2 cores.

    .venv/bin/python -m bench.large [--phones N] [--stores sqlite,postgres] [--postgres URL]
                                    [--boot-ramp S] [--results DIR] [--keep]

Per store, one :func:`bench.push.fleet_push` (the simulator in its own process, every
phone registering through its own boot Inform over ``--boot-ramp`` seconds, then the
hardening policy pushed to all of them): phones per second, p50/p99 from the submit, the
server's and the simulator's peak resident memory, and the store's size on disk after the
push (SQLite: the database file with its WAL; PostgreSQL: every table of the run's schema
with its indexes and TOAST). Written to ``bench/results/large-latest.json`` and printed as a
table. Both stores run one after the other on the same cores, so their ratio is the figure
to compare between machines; the absolute figures move with whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["STORES", "Args", "parse_args", "render", "main"]

# Not bench.procs.REPO: this module's arguments and report load without psutil (tests).
REPO = Path(__file__).resolve().parents[1]

STORES = ("sqlite", "postgres")
#: Figures of one store's run, in the order of the table: (key, label, unit).
ROWS: tuple[tuple[str, str, str], ...] = (
    ("phones_per_s", "push: phones per second", "/s"),
    ("p50_s", "time per phone, submit to outcome p50", "s"),
    ("p99_s", "time per phone, submit to outcome p99", "s"),
    ("server_cpu_ms_per_phone", "server CPU per phone", "ms"),
    ("server_peak_rss_mb", "server peak RSS", "MB"),
    ("sim_peak_rss_mb", "simulator peak RSS", "MB"),
    ("store_mb", "store size on disk", "MB"),
    ("boot_s", "registration of the fleet (boot Informs)", "s"),
)
#: Issue 17's target 6: the server's peak RSS at 100,000 phones.
SERVER_RSS_TARGET_MB = 500.0


class Args(argparse.Namespace):
    phones: int
    stores: tuple[str, ...]
    postgres: str | None
    boot_ramp: float
    results: Path
    keep: bool


def _stores(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STORES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"stores must be among {','.join(STORES)}, got {text!r}")
    return names


def _phones(text: str) -> int:
    try:
        n = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"phones must be a whole number, got {text!r}") from None
    if not 100 <= n <= 1_000_000:
        raise argparse.ArgumentTypeError(f"phones must be 100-1000000, got {n}")
    return n


def parse_args(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> Args:
    """The command line (``env``: where $ACS_BENCH_POSTGRES_URL / $ACS_TEST_POSTGRES_URL come
    from, default os.environ). Exits with status 2 and a message on bad arguments."""
    env = dict(os.environ) if env is None else env
    p = argparse.ArgumentParser(prog="bench.large", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--phones", type=_phones, default=100_000, metavar="N")
    p.add_argument("--stores", type=_stores, default=STORES, metavar="LIST",
                   help=f"stores to run, among {','.join(STORES)} (default both)")
    p.add_argument("--postgres", default=env.get("ACS_BENCH_POSTGRES_URL") or env.get("ACS_TEST_POSTGRES_URL"),
                   metavar="URL")
    p.add_argument("--boot-ramp", type=float, default=None, metavar="S",
                   help="seconds over which the phones boot (default: phones / 250)")
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results", metavar="DIR")
    p.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    args = p.parse_args(argv, namespace=Args())
    if args.boot_ramp is None:
        # ~250 boot sessions a second: what one node registers while leaving the
        # simulator room on 2 cores (figure 2's periodic session cost).
        args.boot_ramp = max(10.0, args.phones / 250)
    elif args.boot_ramp <= 0:
        p.error(f"--boot-ramp must be > 0, got {args.boot_ramp}")
    if "postgres" in args.stores and not args.postgres:
        p.error("PostgreSQL: give --postgres URL or set $ACS_BENCH_POSTGRES_URL (or leave it out: --stores sqlite)")
    return args


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "not measured" if value is None else str(value)


def render(results: dict[str, Any]) -> str:
    """The results as a Markdown table: one column per store, the PostgreSQL/SQLite ratio of
    phones per second, and the server RSS target's verdict per store."""
    runs: dict[str, dict[str, Any]] = results.get("runs", {})
    names = [s for s in STORES if s in runs]
    lines = [f"{results.get('phones', 0):,} phones, one node",
             "",
             "| figure | " + " | ".join(names) + " | unit |",
             "|---|" + "--:|" * len(names) + "---|"]
    for key, label, unit in ROWS:
        cells = [_fmt(runs[s].get(key)) if "error" not in runs[s] else "failed" for s in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {unit} |")
    ok = [s for s in names if "error" not in runs[s]]
    for s in ok:
        rss = runs[s].get("server_peak_rss_mb")
        if isinstance(rss, (int, float)):
            verdict = "ok" if rss <= SERVER_RSS_TARGET_MB else "**missed**"
            lines.append(f"| server peak RSS <= {SERVER_RSS_TARGET_MB:.0f} MB ({s}) | {verdict} |")
    if set(ok) >= {"sqlite", "postgres"}:
        ratio = runs["postgres"]["phones_per_s"] / runs["sqlite"]["phones_per_s"]
        lines.append(f"| PostgreSQL / SQLite phones per second | {ratio:.3f} | x |")
    for s in names:
        if "error" in runs[s]:
            lines.append(f"\n{s}: {runs[s]['error']}")
    return "\n".join(lines)


def _sqlite_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20


def _postgres_mb(base_url: str, schema: str) -> float:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,)).fetchone()
    return float(row[0] if row else 0) / 2**20


def _run(store: str, work: Path, args: Args) -> dict[str, Any]:
    from bench.push import fleet_push, postgres_schema

    # Registration, then the push at ~100 phones/s at worst, with room to spare.
    timeout = args.boot_ramp * 3 + args.phones / 50 + 600
    deadline = f"{int(timeout // 60) + 10}m"
    if store == "sqlite":
        db = work / "sqlite" / "acs.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        r = fleet_push(work / "sqlite", f"sqlite:///{db}", phones=args.phones, boot_ramp=args.boot_ramp,
                       timeout=timeout, deadline=deadline)
        r["store_mb"] = round(_sqlite_mb(db), 1)
        return r
    assert args.postgres is not None
    schema = "acs_bench_large"
    url, drop = postgres_schema(args.postgres, schema)
    try:
        r = fleet_push(work / "postgres", url, phones=args.phones, boot_ramp=args.boot_ramp,
                       timeout=timeout, deadline=deadline)
        r["store_mb"] = round(_postgres_mb(args.postgres, schema), 1)
        return r
    finally:
        if not args.keep:
            drop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.report import machine

    work = Path(tempfile.mkdtemp(prefix="acs-bench-large-"))
    results: dict[str, Any] = {"phones": args.phones, "boot_ramp_s": args.boot_ramp, "machine": machine(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": {}}
    failed = False
    try:
        for store in args.stores:
            print(f"[bench-large {time.strftime('%H:%M:%S')}] {store}: {args.phones:,} phones", file=sys.stderr,
                  flush=True)
            try:
                results["runs"][store] = _run(store, work, args)
            except Exception as exc:  # noqa: BLE001 - reported; the other store still runs
                failed = True
                results["runs"][store] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "large-latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
