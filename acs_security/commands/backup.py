"""``acs-security backup``: configuration backups of the phones, through the management API.

    acs-security backup --select SELECTOR [--canary N] [--wave N] [--deadline 2h] [--wait]
    acs-security backup list [DEVICE] [--limit N]
    acs-security backup show DEVICE [VERSION] [-o FILE]
    acs-security backup diff DEVICE [VERSION] [--against VERSION]
    acs-security backup restore DEVICE [VERSION] [--to SELECTOR] [--dry-run] [--wait] [--force RULE]

The phones upload their cfg.xml (TR-069 Upload, FileType "1 Vendor Configuration File")
to the ACS, which keeps each distinct version (docs/files.md). DEVICE is a serial number
or a device id; VERSION a number or ``latest`` (default). Passwords are never shown: they
are comments in ``show``, ``********`` in ``diff``.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from rich.console import Console

from acs_security.commands import UsageError
from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import cell, new_table
from acs_security.commands.cfgxml import write_output
from acs_security.commands.devices import resolve_device
from acs_security.commands.jobs import follow, print_dry_run, render_summary
from acs_security.display import device_labels

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("backup", help="back up the phones' cfg.xml (Upload), list, show, diff and restore versions",
                       description="Without an action: ask the phones a selector names to upload their "
                                   "configuration. Give options after the action.")
    p.add_argument("--select", help="phones to back up: all | product_class=...; firmware>=...; serial=@FILE; tag=T")
    p.add_argument("--canary", default="0", help="a canary group first: a count or a percentage (5%%)")
    p.add_argument("--wave", type=int, help="phones per wave after the canary")
    p.add_argument("--deadline", default="24h", help="give up on unreachable phones after this (30m, 2h, 1d)")
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    add_server_argument(p)
    p.set_defaults(func=take)
    bsub = p.add_subparsers(dest="backup_command", metavar="ACTION")
    lst = bsub.add_parser("list", help="backup versions, newest first")
    lst.add_argument("device", nargs="?", metavar="DEVICE", help="only this phone (serial number or device id)")
    lst.add_argument("--limit", type=int, default=100)
    add_server_argument(lst)
    lst.set_defaults(func=list_backups)
    show = bsub.add_parser("show", help="one version: its report and its cfg.xml (passwords as comments)")
    show.add_argument("device", metavar="DEVICE")
    show.add_argument("version", nargs="?", default="latest", metavar="VERSION")
    show.add_argument("-o", "--output", help="write the cfg.xml here")
    add_server_argument(show)
    show.set_defaults(func=show_backup)
    diff = bsub.add_parser("diff", help="what changed between two versions (default: the latest and the one before)")
    diff.add_argument("device", metavar="DEVICE")
    diff.add_argument("version", nargs="?", default="latest", metavar="VERSION")
    diff.add_argument("--against", metavar="VERSION", help="the older version (default: the one before VERSION)")
    add_server_argument(diff)
    diff.set_defaults(func=diff_backups)
    restore = bsub.add_parser("restore", help="send a version back with a cfg.xml Download (a push job)")
    restore.add_argument("device", metavar="DEVICE")
    restore.add_argument("version", nargs="?", default="latest", metavar="VERSION")
    restore.add_argument("--to", metavar="SELECTOR", help="restore to these phones instead (a replacement)")
    restore.add_argument("--deadline", default="24h")
    restore.add_argument("--dry-run", action="store_true", help="show what would change; create nothing")
    restore.add_argument("--wait", action="store_true", help="follow the job until it ends")
    restore.add_argument("--force", action="append", default=[], metavar="RULE",
                         help="restore although guardrail RULE refuses the values (see docs/guardrails.md)")
    add_server_argument(restore)
    restore.set_defaults(func=restore_backup)


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    print()


def _device_path(client: ApiClient, device: str) -> str:
    return "/api/v1/devices/" + urllib.parse.quote(resolve_device(client, device), safe="")


def _finish(client: ApiClient, result: dict[str, Any], args: Any, what: str) -> int:
    if not args.wait:
        if args.json:
            _dump(result)
        else:
            print(f"job {result['id']} submitted: {what} of {result['total']} phone(s)")
        return 0
    print(f"job {result['id']} submitted: {what} of {result['total']} phone(s)", file=sys.stderr)
    final = follow(client, result["id"], mode="json" if args.json else "auto")
    if not args.json:
        render_summary(final, Console())
    return 0 if final["state"] == "completed" and not final.get("faulted") else 1


def take(args: Any) -> int:
    if not args.select:
        raise UsageError("give --select (which phones to back up) or an action: list, show, diff, restore")
    from acs_security.commands.jobs import _selector

    body = {"select": _selector(args.select), "canary": args.canary, "wave": args.wave, "deadline": args.deadline}
    client = ApiClient(args.server)
    return _finish(client, client.request("POST", "/api/v1/backups", body=body), args, "backup")


def list_backups(args: Any) -> int:
    client = ApiClient(args.server)
    if args.device:
        data = client.get(_device_path(client, args.device) + "/backups", limit=args.limit)
    else:
        data = client.get("/api/v1/backups", limit=args.limit)
    if args.json:
        _dump(data)
        return 0
    table = new_table(("phone", "version", "taken", "last confirmed", "uploads", "elements", "problems", "sha256"),
                      title=f"{data['total']} backup version(s)", keep_whole=("phone", "version"))
    rows = data["backups"]
    for label, b in zip(device_labels(rows), rows, strict=True):
        table.add_row(*(cell(v) for v in (label, b["version"], b["created_at"], b["confirmed_at"], b["uploads"],
                                          b["elements"], b["problems"], b["sha256"][:12])))
    Console().print(table)
    return 0


def show_backup(args: Any) -> int:
    client = ApiClient(args.server)
    data = client.get(f"{_device_path(client, args.device)}/backups/{urllib.parse.quote(args.version)}")
    if args.json:
        _dump(data)
        return 0
    report = data.get("report") or {}
    label = device_labels([data])[0]
    print(f"{label}: version {data['version']} taken {data['created_at']}, confirmed {data['confirmed_at']} "
          f"({data['uploads']} upload(s)), {data['elements']} element(s)", file=sys.stderr)
    for item in report.get("unknown", []):
        print(f"  unknown element <{item['element']}> (line {item['line']}): not kept", file=sys.stderr)
    for item in report.get("invalid", []):
        print(f"  invalid <{item['element']}> (line {item['line']}): {item['reason']}: not kept", file=sys.stderr)
    for item in report.get("absent", []):
        print(f"  <{item['element']}>: {item['reason']}: not kept", file=sys.stderr)
    if data.get("cfgxml") is not None:
        write_output(data["cfgxml"].encode("utf-8"), args.output)
    return 0


def diff_backups(args: Any) -> int:
    client = ApiClient(args.server)
    path = f"{_device_path(client, args.device)}/backups/{urllib.parse.quote(args.version)}/diff"
    data = client.get(path, against=args.against)
    if args.json:
        _dump(data)
        return 0
    label = device_labels([data])[0]
    table = new_table(("element", "change", "version " + str(data["from"]), "version " + str(data["to"])),
                      title=f"{label}: version {data['from']} -> {data['to']}", keep_whole=("element", "change"))
    for c in data["changes"]:
        table.add_row(*(cell(v if v is not None else "") for v in (c["element"], c["change"], c["old"], c["new"])))
    Console().print(table if data["changes"] else f"{label}: no change from version {data['from']} to {data['to']}")
    return 0


def restore_backup(args: Any) -> int:
    from acs_security.commands.jobs import _selector

    client = ApiClient(args.server)
    body: dict[str, Any] = {"deadline": args.deadline, "dry_run": args.dry_run}
    if args.to:
        body["to"] = _selector(args.to)
    if args.force:
        body["force"] = list(args.force)
    path = f"{_device_path(client, args.device)}/backups/{urllib.parse.quote(args.version)}/restore"
    result = client.request("POST", path, body=body)
    if args.dry_run:
        return print_dry_run(result, as_json=args.json)
    restored = result["restored"]
    return _finish(client, result, args, f"restore of version {restored['version']}")
