"""How the CLI shows things: tables that name phones by serial and model and cut nothing,
and job progress that suits a terminal, a pipe or a program.

Tables: every cell is a ``rich.text.Text`` of :func:`acs_security.display.printable`, so that
what a phone sent (a serial number with "[red]" or an escape sequence in it) is neither
read as rich markup nor acted on by the terminal; columns fold long values onto more lines
instead of ending them with an ellipsis.

Progress: on a terminal, a live bar; otherwise (cron, CI, ``| tee``) one plain line every
``interval`` seconds with counts per state, rate and estimated time left, then the final
summary; with ``--json``, one JSON object per line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from acs_security.cwmp.faults import fault_string
from acs_security.display import device_labels, printable

__all__ = ["STATE_ORDER", "cell", "fault_text", "new_table", "outcome_table", "progress_line", "watch_job"]

STATE_ORDER = ("pending", "requested", "in_session", "transferring", "applied", "applied_pending_reboot",
               "faulted", "unreachable", "skipped", "cancelled")
FINAL_JOB_STATES = ("completed", "cancelled")


def cell(value: Any) -> Text:
    """A table cell that shows ``value`` as it is: no markup, nothing unprintable."""
    return Text(printable(value))


def new_table(columns: Sequence[str], *, title: str | None = None,
              keep_whole: Iterable[str] = ()) -> Table:
    """A table whose columns fold what does not fit; columns of ``keep_whole`` (a serial
    number, a state) are never wrapped, so they stay readable and searchable."""
    table = Table(title=Text(printable(title)) if title is not None else None)
    whole = set(keep_whole)
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in whole)
    return table


def fault_text(row: Mapping[str, Any]) -> str:
    """``9003 Invalid arguments; 9007 Invalid parameter value: TLSMinVersion, Firewall``:
    the fault with its meaning, and the parameters it names grouped by their code."""
    code = row.get("fault_code")
    if not code:
        return ""
    parts = [f"{code} {fault_string(int(code))}"]
    by_code: dict[int, list[str]] = {}
    for f in row.get("faults") or []:
        by_code.setdefault(int(f["code"]), []).append(str(f["name"]).rsplit(".", 1)[-1])
    for sub, names in by_code.items():
        parts.append(f"{sub} {fault_string(sub)}: {', '.join(names)}")
    return "; ".join(parts)


def outcome_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None,
                  attempts: bool = False) -> Table:
    """Per-device outcomes (job reports, the demo): the phone by serial and model."""
    details = any(d.get("detail") for d in rows)
    # How each phone was reached (HTTP, UDP, XMPP, periodic), when the rows say (job reports).
    reach = any(d.get("reached_by") for d in rows)
    columns = (["device", "state"] + (["attempts"] if attempts else []) + (["reached by"] if reach else [])
               + ["fault"] + (["detail"] if details else []))
    table = new_table(columns, title=title, keep_whole=("device", "state"))
    for label, d in zip(device_labels(rows), rows, strict=True):
        values = [label, d.get("state", "")]
        if attempts:
            values.append(str(d.get("attempts", "")))
        if reach:
            values.append(d.get("reached_by") or "")
        values.append(fault_text(d))
        if details:
            values.append(d.get("detail") or "")
        table.add_row(*(cell(v) for v in values))
    return table


def progress_line(summary: Mapping[str, Any]) -> str:
    """One plain line of a job's progress: ``job 3 hardening running 240/492 applied=230
    faulted=5 pending=257 30.1/s about 8s left``."""
    counts = summary.get("counts") or {}
    done = summary.get("done", 0) + counts.get("cancelled", 0)
    parts = [f"job {summary['id']}", printable(summary.get("name", "")), str(summary["state"]),
             f"{done}/{summary.get('total', 0)}"]
    parts += [f"{s}={counts[s]}" for s in STATE_ORDER if counts.get(s)]
    if summary.get("rate_per_s"):
        parts.append(f"{summary['rate_per_s']}/s")
    if summary.get("eta_s"):
        parts.append(f"about {summary['eta_s']}s left")
    if summary.get("reason"):
        parts.append(f"({printable(summary['reason'])})")
    return " ".join(p for p in parts if p)


def watch_job(fetch: Callable[[], dict[str, Any]], *, mode: str = "auto", interval: float = 0.5,
              line_every: float = 5.0, out: IO[str] | None = None,
              sleep: Callable[[float], None] = time.sleep,
              now: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll ``fetch()`` (a job summary) every ``interval`` seconds until the job ends or
    halts, showing progress by ``mode``: "bar" (a live bar on stderr), "lines" (a plain line
    on ``out`` every ``line_every`` seconds and at the end), "json" (the same as JSON lines),
    "quiet", or "auto" (bar on a terminal, else lines). Returns the last summary."""
    stream = out if out is not None else sys.stdout
    if mode == "auto":
        mode = "bar" if stream.isatty() else "lines"
    summary = fetch()
    if mode == "bar":
        return _watch_bar(fetch, summary, interval, sleep)
    last_line: float | None = None
    last_text = ""
    while True:
        ended = summary["state"] in FINAL_JOB_STATES or summary["state"] == "halted"
        t = now()
        text = progress_line(summary)
        # A line every line_every seconds while something moves; a stalled job (waiting for
        # periodic Informs) repeats its line only every ten intervals.
        due = last_line is None or t - last_line >= (line_every if text != last_text else 10 * line_every)
        if mode != "quiet" and (ended or due):
            if mode == "json":
                stream.write(json.dumps({"event": "final" if ended else "progress", **summary}) + "\n")
            else:
                stream.write(text + "\n")
            stream.flush()
            last_line, last_text = t, text
        if ended:
            return summary
        sleep(interval)
        summary = fetch()


def _watch_bar(fetch: Callable[[], dict[str, Any]], summary: dict[str, Any], interval: float,
               sleep: Callable[[float], None]) -> dict[str, Any]:
    progress = Progress(TextColumn("job {task.fields[job]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=False)
    with progress:
        bar = progress.add_task("push", total=summary["total"], job=summary["id"], counts="")
        while True:
            counts = " ".join(f"{s}={summary['counts'][s]}" for s in STATE_ORDER if summary["counts"].get(s))
            progress.update(bar, completed=summary["done"] + summary["counts"].get("cancelled", 0),
                            counts=f"{summary['state']} {counts}")
            if summary["state"] in FINAL_JOB_STATES or summary["state"] == "halted":
                return summary
            sleep(interval)
            summary = fetch()
