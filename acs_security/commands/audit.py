"""``acs-security audit``: read the settings that assignments control from the phones
(GetParameterValues through connection requests, in waves within the push limits) and report
per setting and model: compliant, drifted (with the value found; secrets never shown),
missing (the model lacks it), unknown (not reachable, refused, write-only). Drift found for
an assignment in enforce mode is corrected in the same session. Progress goes to stderr, the
report (table, JSON or CSV) to stdout or ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import cell, new_table, watch_job
from acs_security.commands.jobs import _selector
from acs_security.display import device_labels, printable

__all__ = ["register", "render_report"]

VERDICTS = ("compliant", "drifted", "missing", "unknown")


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="read assigned settings from the phones and report compliance and drift",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--select", default="all", help="devices to audit (default all); only those an assignment "
                                                   "selects are read")
    p.add_argument("--assignment", action="append", default=[], metavar="NAME",
                   help="audit this assignment's settings only (repeatable; default every enabled one)")
    p.add_argument("--wave", type=int, default=500, help="devices per wave (default 500)")
    p.add_argument("--max-in-progress", type=int, default=1000, help="devices being read at once (default 1000)")
    p.add_argument("--deadline", default="2h", help="devices not reached by then are unknown (default 2h)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--output", type=Path, help="write the report to this file instead of stdout")
    p.add_argument("--report", type=int, metavar="JOB", help="only print the report of audit job JOB")
    p.add_argument("--every", type=float, default=5.0, metavar="S",
                   help="seconds between progress lines when stderr is not a terminal (default 5)")
    add_server_argument(p)
    p.set_defaults(func=audit)


def render_report(data: dict[str, Any], console: Console) -> None:
    job = data["job"]
    totals = data["totals"]
    devices = data.get("devices", [])
    console.print(f"audit job {job['id']} ({job['state']}): {len(devices)} device(s); settings "
                  + ", ".join(f"{v} {totals.get(v, 0)}" for v in VERDICTS), markup=False)
    table = new_table(("assignment", "setting", "model", *VERDICTS, "compliant %", "values found (drifted)"),
                      keep_whole=("setting", "model"))
    for row in data["settings"]:
        ratio = row.get("compliant_ratio")
        found = ", ".join(f"{printable(v)!r} x{n}" for v, n in (row.get("drifted_values") or {}).items())
        table.add_row(*(cell(v) for v in (row["assignment"], row["setting"], row["product_class"],
                                          *(row.get(v, 0) for v in VERDICTS),
                                          f"{ratio * 100:.1f}%" if ratio is not None else "-", found)))
    console.print(table)
    drifted = [d for d in devices if any(i["verdict"] == "drifted" for i in d.get("items", []))]
    if drifted:
        shown = drifted[:50]
        t = new_table(("device", "setting", "found", "desired"), keep_whole=("device",),
                      title=f"{len(drifted)} device(s) drifted" + (" (first 50)" if len(drifted) > 50 else ""))
        for label, d in zip(device_labels(shown), shown, strict=True):
            for i in d["items"]:
                if i["verdict"] == "drifted":
                    t.add_row(cell(label), cell(i["setting"]), cell(i["value"]), cell(i["desired"]))
        console.print(t)


def audit(args: Any) -> int:
    client = ApiClient(args.server)
    job_id = args.report
    if job_id is None:
        body: dict[str, Any] = {"select": _selector(args.select), "wave": args.wave,
                                "max_in_progress": args.max_in_progress, "deadline": args.deadline}
        if args.assignment:
            body["assignments"] = list(args.assignment)
        job = client.request("POST", "/api/v1/audits", body=body)
        job_id = job["id"]
        print(f"audit job {job_id}: {job['total']} device(s)", file=sys.stderr)
        final = watch_job(lambda: client.get(f"/api/v1/jobs/{job_id}"), mode="json" if args.json else "auto",
                          line_every=args.every, out=sys.stderr)
        if final["state"] not in ("completed", "cancelled"):
            print(f"audit job {job_id} is {final['state']}", file=sys.stderr)
    if args.format == "csv":
        text = client.request("GET", f"/api/v1/audits/{job_id}/report", query={"format": "csv"},
                              raw=True).decode("utf-8")
    else:
        data = client.get(f"/api/v1/audits/{job_id}/report", format="json")
        if args.format == "json" or args.json:
            text = json.dumps(data, indent=2) + "\n"
        else:
            console = Console(file=open(args.output, "w") if args.output else None)  # noqa: SIM115
            try:
                render_report(data, console)
            finally:
                if args.output:
                    console.file.close()
            return 0
    if args.output is not None:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
