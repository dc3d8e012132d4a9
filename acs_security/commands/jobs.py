"""``acs-security push`` and ``acs-security jobs ...``: fleet jobs through the management API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from acs_security.commands import UsageError
from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import STATE_ORDER, cell, new_table, outcome_table, watch_job
from acs_security.display import device_labels, printable

__all__ = ["follow", "print_dry_run", "register", "register_push", "render_summary"]


def register_push(sub: Any) -> None:
    p = sub.add_parser("push", help="push a security policy to the devices a selector names")
    p.add_argument("policy", type=Path, help="policy file: TOML (see datamodel/examples) or cfg.xml")
    p.add_argument("--select", required=True,
                   help="target devices: all | product_class=CP-8851-3PCC; firmware>=11.3(7); serial=@FILE; tag=T")
    p.add_argument("--canary", default="0", help="canary group first: a count or a percentage (5%%)")
    p.add_argument("--wave", type=int, help="devices per wave after the canary")
    p.add_argument("--max-fault-rate", type=float, default=0.2, help="halt a wave above this fault rate (0-1)")
    p.add_argument("--deadline", default="24h", help="give up on unreachable devices after this (30m, 2h, 1d)")
    p.add_argument("--force-all", action="store_true", help="send every setting, not only the ones that differ")
    p.add_argument("--readback", action="store_true", help="confirm with GetParameterValues after applying")
    p.add_argument("--dry-run", action="store_true", help="show per device what would change; create nothing")
    p.add_argument("--method", choices=("auto", "spv", "download"), default="auto",
                   help="auto (default): SetParameterValues where the phone has the parameter, a cfg.xml "
                        "Download for the settings it takes only from cfg.xml; download: every setting in one "
                        "cfg.xml; spv: SetParameterValues only (docs/files.md)")
    p.add_argument("--file-content", choices=("policy", "full"), default="policy",
                   help="what a cfg.xml holds: the policy's settings (default), or the phone's whole known "
                        "configuration with the policy on top")
    p.add_argument("--wait", action="store_true",
                   help="follow the job until it ends: a progress bar on a terminal, else a line every "
                        "few seconds (JSON lines with --json)")
    p.add_argument("--force", action="append", default=[], metavar="RULE",
                   help="push although guardrail RULE refuses the policy (repeatable; see docs/guardrails.md)")
    add_server_argument(p)
    p.set_defaults(func=push)


def register(sub: Any) -> None:
    register_push(sub)
    p = sub.add_parser("jobs", help="list, show, cancel, resume fleet jobs and get their reports")
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION")
    jsub.required = True
    lst = jsub.add_parser("list", help="list jobs, newest first")
    lst.add_argument("--state", choices=("running", "halted", "cancelled", "completed"))
    lst.add_argument("--limit", type=int, default=50)
    add_server_argument(lst)
    lst.set_defaults(func=list_jobs)
    fol = jsub.add_parser("follow", help="follow a job until it ends or halts (bar, lines or JSON lines)")
    fol.add_argument("job_id", type=int)
    fol.add_argument("--every", type=float, default=5.0, metavar="S",
                     help="seconds between progress lines when the output is not a terminal (default 5)")
    add_server_argument(fol)
    fol.set_defaults(func=follow_job)
    for name, helptext in (("show", "a job's counts per state, rate and estimated end"),
                           ("cancel", "stop a job: devices not yet in a session are cancelled"),
                           ("resume", "resume a job halted by its fault brake")):
        c = jsub.add_parser(name, help=helptext)
        c.add_argument("job_id", type=int)
        add_server_argument(c)
        if name == "show":
            c.add_argument("--devices", metavar="STATE", nargs="?", const="",
                           help="also list the devices (optionally only those in STATE)")
        c.set_defaults(func=globals()[f"{name}_job"])
    rep = jsub.add_parser("report", help="every device's outcome (JSON or CSV)")
    rep.add_argument("job_id", type=int)
    rep.add_argument("--format", choices=("json", "csv", "table"), default="table")
    rep.add_argument("--output", type=Path, help="write to this file instead of stdout")
    add_server_argument(rep)
    rep.set_defaults(func=report_job)


def _policy_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    if len(data) > 256 * 1024:
        raise UsageError(f"{path}: larger than 256 KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


def _selector(text: str) -> str:
    # serial=@FILE: one serial number per line (blank lines and # comments ignored).
    parts = []
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() in ("serial", "serials") and value.strip().startswith("@"):
            path = Path(value.strip()[1:])
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise UsageError(f"--select {part.strip()}: {exc.strerror}") from None
            serials = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
            if not serials:
                raise UsageError(f"--select {part.strip()}: the file holds no serial number")
            part = f"serial={','.join(serials)}"
        parts.append(part)
    return ";".join(parts)


def push(args: Any) -> int:
    body = {
        "policy": _policy_text(args.policy), "policy_name": args.policy.name,
        "select": _selector(args.select), "canary": args.canary, "wave": args.wave,
        "max_fault_rate": args.max_fault_rate, "deadline": args.deadline,
        "force_all": args.force_all, "readback": args.readback, "dry_run": args.dry_run,
        "force": list(args.force), "method": args.method, "file_content": args.file_content,
    }
    client = ApiClient(args.server)
    result = client.request("POST", "/api/v1/jobs", body=body)
    if args.dry_run:
        return print_dry_run(result, as_json=args.json)
    if not args.wait:
        if args.json:
            _dump(result)
        else:
            print(f"job {result['id']} submitted: {result['total']} device(s), "
                  f"ParameterKey {result['parameter_key']}")
        return 0
    print(f"job {result['id']} submitted: {result['total']} device(s), ParameterKey {result['parameter_key']}",
          file=sys.stderr)
    final = follow(client, result["id"], mode="json" if args.json else "auto")
    if not args.json:
        render_summary(final, Console())
    return 0 if final["state"] == "completed" and not final.get("faulted") else 1


def follow(client: ApiClient, job_id: int, *, mode: str = "auto", interval: float = 0.5,
           line_every: float = 5.0) -> dict[str, Any]:
    """Poll a job until it ends (or halts); progress by ``mode`` (see _output.watch_job:
    auto, bar, lines, json, quiet). Returns the last summary."""
    return watch_job(lambda: client.get(f"/api/v1/jobs/{job_id}"), mode=mode, interval=interval,
                     line_every=line_every)


def follow_job(args: Any) -> int:
    client = ApiClient(args.server)
    final = follow(client, args.job_id, mode="json" if args.json else "auto", line_every=args.every)
    if not args.json:
        render_summary(final, Console())
    return 0 if final["state"] == "completed" and not final.get("faulted") else 1


def render_summary(s: dict[str, Any], console: Console) -> None:
    title = f"job {s['id']} {s['name']}: {s['state']}" + (f" ({s['reason']})" if s.get("reason") else "")
    table = new_table(("state", "devices"), title=title)
    table.columns[1].justify = "right"
    for state in STATE_ORDER:
        table.add_row(state, str(s["counts"].get(state, 0)))
    table.add_row("total", str(s["total"]), style="bold")
    console.print(table)
    extra = [f"wave {s['current_wave'] + 1}/{s['wave_count']}", f"ParameterKey {s['parameter_key']}"]
    if s.get("rate_per_s"):
        extra.append(f"{s['rate_per_s']} devices/s")
    if s.get("p50_s") is not None:
        extra.append(f"p50 {s['p50_s']}s p99 {s['p99_s']}s")
    if s.get("eta_s"):
        extra.append(f"about {s['eta_s']}s left")
    console.print("  ".join(extra))


def print_dry_run(result: dict[str, Any], *, as_json: bool) -> int:
    if as_json:
        _dump(result)
        return 0
    console = Console()
    totals = result["totals"]
    console.print(Text(f"dry run of {printable(result['policy'])!r} on {result['targets']} device(s): "
                       + ", ".join(f"{k} {v}" for k, v in totals.items())))
    table = new_table(("device", "verdict", "setting", "known -> new / reason"), keep_whole=("device",))
    shown = result["devices"][:200]
    for label, d in zip(device_labels(shown), shown, strict=True):
        first = True
        for c in d["changes"]:
            via = " (cfg.xml)" if c.get("via") == "download" else ""
            table.add_row(cell(label if first else ""), cell(d["verdict"] if first else ""), cell(c["path"] + via),
                          cell(f"{c['known'] if c['known'] is not None else '(unknown)'} -> {c['new']}"))
            first = False
        for sk in d["skipped"]:
            table.add_row(cell(label if first else ""), cell(d["verdict"] if first else ""),
                          cell(sk["setting"]), cell(f"skipped: {sk['reason']}"))
            first = False
        if d["error"]:
            table.add_row(cell(label), cell("error"), cell(""), cell(d["error"]))
        elif first:
            table.add_row(cell(label), cell(d["verdict"]), cell(""), cell(""))
    console.print(table)
    if len(result["devices"]) > 200:
        console.print(f"... {len(result['devices']) - 200} more device(s); use --json for all")
    for f in result.get("findings", []):
        console.print(f"{f['severity']} {f['rule']}: {', '.join(f['settings'])}: {f['reason']}", markup=False)
    if result.get("refused_by"):
        console.print(f"a push would be refused by: {', '.join(result['refused_by'])}", markup=False)
    return 0


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    print()


def list_jobs(args: Any) -> int:
    data = ApiClient(args.server).get("/api/v1/jobs", limit=args.limit, state=args.state)
    if args.json:
        _dump(data)
        return 0
    table = new_table(("id", "name", "state", "total", "applied", "faulted", "pending", "created"),
                      title=f"{data['total']} job(s)", keep_whole=("id", "state", "created"))
    for j in data["jobs"]:
        applied = j["counts"]["applied"] + j["counts"]["applied_pending_reboot"]
        table.add_row(*(cell(v) for v in (j["id"], j["name"], j["state"], j["total"], applied,
                                          j["counts"]["faulted"], j["counts"]["pending"], j["created_at"])))
    Console().print(table)
    return 0


def show_job(args: Any) -> int:
    client = ApiClient(args.server)
    data = client.get(f"/api/v1/jobs/{args.job_id}")
    devices = None
    if args.devices is not None:
        devices = client.get(f"/api/v1/jobs/{args.job_id}/devices", state=args.devices or None, limit=1000)
    if args.json:
        _dump({**data, "devices": devices["devices"]} if devices else data)
        return 0
    console = Console()
    render_summary(data, console)
    if devices:
        _device_table(devices["devices"], console)
    return 0


def _device_table(rows: list[dict[str, Any]], console: Console) -> None:
    console.print(outcome_table(rows, attempts=True))


def cancel_job(args: Any) -> int:
    data = ApiClient(args.server).request("POST", f"/api/v1/jobs/{args.job_id}/cancel", body={})
    if args.json:
        _dump(data)
    else:
        render_summary(data, Console())
    return 0


def resume_job(args: Any) -> int:
    data = ApiClient(args.server).request("POST", f"/api/v1/jobs/{args.job_id}/resume", body={})
    if args.json:
        _dump(data)
    else:
        render_summary(data, Console())
    return 0


def report_job(args: Any) -> int:
    client = ApiClient(args.server)
    fmt = "json" if args.format in ("json", "table") else "csv"
    if fmt == "csv":
        data: Any = client.request("GET", f"/api/v1/jobs/{args.job_id}/report",
                                   query={"format": "csv"}, raw=True)
        text = data.decode("utf-8")
    else:
        data = client.get(f"/api/v1/jobs/{args.job_id}/report", format="json")
        text = json.dumps(data, indent=2) + "\n"
    if args.output is not None:
        args.output.write_text(text)
        return 0
    if args.format == "table" and not args.json:
        console = Console()
        render_summary(data["job"], console)
        interesting = [d for d in data["devices"] if d["state"] not in ("applied",)]
        if interesting:
            console.print(f"{len(interesting)} device(s) not plainly applied:")
            _device_table(interesting, console)
        return 0
    sys.stdout.write(text)
    return 0
