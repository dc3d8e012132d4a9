"""The benchmark report: the machine header, the table of figures next to their baselines and
targets, and the JSON files (``bench/results/latest.json`` and a dated copy)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine", "ROWS", "render_table", "write_results", "check_targets", "pinning_note"]

_LIBRARIES = ("acs-security", "twisted", "lxml", "sqlalchemy", "psycopg", "treq", "cryptography",
              "psutil")


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and library versions of this run."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import sqlite3

        versions["sqlite"] = sqlite3.sqlite_version
    except ImportError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "libraries": versions,
    }


# (figure, measured key, baseline key or text, target text, target test, unit)
ROWS: list[tuple[str, str, str | None, str, Any, str]] = [
    ("1 codec: parse 10-param Inform", "codec_inform_parse_us", "codec_inform_parse_lxml_us",
     "", None, "µs"),
    ("  ratio to lxml.etree.fromstring", "codec_inform_parse_ratio", None, "<= 2.0",
     lambda v: v <= 2.0, "x"),
    ("1 codec: build 20-param SPV", "codec_spv_build_us", "codec_spv_build_lxml_us", "", None,
     "µs"),
    ("  ratio to lxml.etree.tostring", "codec_spv_build_ratio", None, "<= 2.0",
     lambda v: v <= 2.0, "x"),
    ("2 CPU per periodic session", "cpu_per_session_us_periodic", None, "", None, "µs"),
    ("  CPU per exchange (bare twisted.web)", "cpu_per_exchange_us_periodic",
     "bare_cpu_per_exchange_us_periodic", "", None, "µs"),
    ("  ratio to the bare exchange", "cpu_per_exchange_ratio_periodic", None, "<= 2.0",
     lambda v: v <= 2.0, "x"),
    ("  periodic sessions per core-second", "periodic_sessions_per_core_s", None, ">= 2000",
     lambda v: v >= 2000, "/s"),
    ("2 CPU per push session", "cpu_per_session_us_push", None, "", None, "µs"),
    ("  CPU per exchange (bare twisted.web)", "cpu_per_exchange_us_push",
     "bare_cpu_per_exchange_us_push", "", None, "µs"),
    ("  ratio to the bare exchange", "cpu_per_exchange_ratio_push", None, "<= 2.0",
     lambda v: v <= 2.0, "x"),
    ("3 push: phones per second (SQLite)", "push_phones_per_s", "push_bare_limit_phones_per_s",
     ">= 333", lambda v: v >= 333, "/s"),
    ("  time per phone, submit to outcome p50", "push_p50_s", None, "", None, "s"),
    ("  time per phone, submit to outcome p99", "push_p99_s", None, "", None, "s"),
    ("  server CPU per phone", "push_server_cpu_ms_per_phone", None, "", None, "ms"),
    ("  server peak RSS", "push_server_peak_rss_mb", None, "<= 300", lambda v: v <= 300, "MB"),
    ("4 growth: cost per pushed phone, 1k reg.", "growth_cost_bare_exchanges_per_phone_1k",
     "growth_cpu_ms_per_phone_1k", "", None, "bx, ms"),
    ("  ... 10k registered", "growth_cost_bare_exchanges_per_phone_10k",
     "growth_cpu_ms_per_phone_10k", "", None, "bx, ms"),
    ("  ... 50k registered", "growth_cost_bare_exchanges_per_phone_50k",
     "growth_cpu_ms_per_phone_50k", "", None, "bx, ms"),
    ("  ratio 50k / 1k (raw CPU ratio beside)", "growth_ratio_50k_vs_1k",
     "growth_raw_ratio_50k_vs_1k", "<= 1.2", lambda v: v <= 1.2, "x"),
    ("5 push: phones per second, PostgreSQL", "push_phones_per_s_postgres",
     "push_phones_per_s", "", None, "/s"),
    ("  time per phone p99, PostgreSQL", "push_p99_s_postgres", "push_p99_s", "", None, "s"),
    ("  server CPU per phone, PostgreSQL", "push_server_cpu_ms_per_phone_postgres",
     "push_server_cpu_ms_per_phone", "", None, "ms"),
    ("6 cluster: phones per second, 1 node", "cluster_phones_per_s_1node", None, "", None,
     "/s"),
    ("  phones per second, 2 nodes", "cluster_phones_per_s_2nodes", "cluster_phones_per_s_1node",
     "", None, "/s"),
    ("  ratio 2 nodes / 1 node", "cluster_ratio_2_vs_1", None, "", None, "x"),
    ("  time per phone p99, 2 nodes (1 node beside)", "cluster_p99_s_2nodes",
     "cluster_p99_s_1node", "", None, "s"),
    ("  nodes' CPU per phone, 2 nodes (1 node beside)", "cluster_server_cpu_ms_per_phone_2nodes",
     "cluster_server_cpu_ms_per_phone_1node", "", None, "ms"),
    ("  devices decided by node 1 (node 2 beside)", "cluster_share_node1_2nodes",
     "cluster_share_node2_2nodes", "", None, "share"),
    ("  push sessions to node 1 (node 2 beside)", "cluster_session_share_node1_2nodes",
     "cluster_session_share_node2_2nodes", "", None, "share"),
    ("7 desired: CPU per periodic session, 3 assignments (none beside)", "desired_cpu_per_session_us_three",
     "desired_cpu_per_session_us_none", "", None, "µs"),
    ("  extra CPU over no assignment", "desired_extra_cpu_ratio", None, "< 0.10", lambda v: v < 0.10, "x"),
    ("  sessions settled without a store read (of all)", "desired_fast_checks", "desired_sessions", "", None, ""),
    ("8 push by cfg.xml Download: phones/s (SPV beside)", "files_download_phones_per_s",
     "files_spv_phones_per_s", "", None, "/s"),
    ("  ratio Download / SPV", "files_ratio_download_vs_spv", None, "", None, "x"),
    ("  time per phone p99, Download (SPV beside)", "files_download_p99_s", "files_spv_p99_s", "", None,
     "s"),
    ("  server CPU per phone, Download (SPV beside)", "files_download_server_cpu_ms_per_phone",
     "files_spv_server_cpu_ms_per_phone", "", None, "ms"),
    ("  server CPU ratio Download / SPV", "files_cpu_ratio_download_vs_spv", None, "", None, "x"),
    ("9 push, 60 % behind NAT: phones/s (no NAT beside)", "nat_nat_phones_per_s", "nat_plain_phones_per_s", "",
     None, "/s"),
    ("  ratio NAT / no NAT", "nat_ratio_vs_plain", None, "", None, "x"),
    ("  phones reached by UDP (of all)", "nat_udp_reached", "nat_phones", "", None, ""),
    ("  time per phone p99, NAT (no NAT beside)", "nat_nat_p99_s", "nat_plain_p99_s", "", None, "s"),
    ("  server CPU per phone, NAT (no NAT beside)", "nat_nat_server_cpu_ms_per_phone",
     "nat_plain_server_cpu_ms_per_phone", "", None, "ms"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def check_targets(results: dict[str, Any]) -> dict[str, bool]:
    """Which targets hold (key -> bool), for the figures that were measured."""
    out = {}
    for _, key, _, _, test, _ in ROWS:
        if test is not None and results.get(key) is not None:
            out[key] = bool(test(results[key]))
    return out


def render_table(results: dict[str, Any]) -> str:
    """The figures as a text table (no colour codes: it goes to logs and CI too)."""
    head = ("figure", "measured", "baseline", "unit", "target", "")
    rows = [head]
    for label, key, base, target, test, unit in ROWS:
        value = results.get(key)
        ok = "" if test is None or value is None else ("ok" if test(value) else "MISSED")
        rows.append((label, _fmt(value), _fmt(results.get(base)) if base else "", unit, target,
                     ok))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    notes = list(results.get("notes") or [])
    if "cluster_pinning" in results:
        notes.append(pinning_note(results))
    notes.append("bx = the server's CPU per pushed phone in bare twisted.web exchanges (the "
                 "machine's speed when it was measured); growth's baseline column is raw CPU ms")
    return "\n".join(lines + [f"note: {n}" for n in notes])


def pinning_note(results: dict[str, Any]) -> str:
    """Figure 6's process placement: the layout and what the kernel had during each run, or
    why it was not pinned."""
    pin = results.get("cluster_pinning") or {}
    if not pin.get("requested"):
        return ("6 cluster: processes not pinned (the nodes share every core with the simulator, "
                "PostgreSQL and the balancer; --pin gives each node a core of its own)")
    if pin.get("refused"):
        return f"6 cluster: not pinned, not measured: {pin['refused']}"
    parts = [f"6 cluster pinned: {pin.get('described')}"]
    for tag in ("1node", "2nodes"):
        run = results.get(f"cluster_pinning_{tag}") or {}
        if run.get("postgres"):
            parts.append(f"{tag}: {run['postgres']}")
        seen = run.get("observed") or {}
        if seen:
            parts.append(f"{tag}, CPUs allowed during the push: " + ", ".join(
                f"{name} " + "/".join(f"{cpus} x{n}" for cpus, n in sorted(threads.items()))
                for name, threads in seen.items()))
    return "; ".join(parts)


def write_results(results: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """Write ``latest.json`` and a dated copy; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    latest = directory / "latest.json"
    dated = directory / f"{stamp}.json"
    latest.write_text(text)
    dated.write_text(text)
    return latest, dated
