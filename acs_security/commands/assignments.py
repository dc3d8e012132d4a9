"""``acs-security assignments list|show|compliance|devices|enable|disable|delete``:
assignments and their compliance, through the management API (docs/desired-state.md)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from rich.console import Console

from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import cell, new_table
from acs_security.display import device_labels, printable

__all__ = ["register"]

STATES = ("compliant", "drifted", "faulted", "skipped", "overridden", "unknown")


def register(sub: Any) -> None:
    p = sub.add_parser("assignments", help="list, show, enable, disable, delete assignments; their compliance")
    asub = p.add_subparsers(dest="assignments_command", metavar="ACTION")
    asub.required = True
    lst = asub.add_parser("list", help="every assignment with its devices' states")
    add_server_argument(lst)
    lst.set_defaults(func=list_assignments)
    for name, helptext in (("show", "one assignment: policy (secrets masked), selector, revision, states"),
                           ("compliance", "compliance counts and ratios, by model and by firmware"),
                           ("enable", "enable an assignment (conflicts are checked again)"),
                           ("disable", "disable an assignment (devices keep their values)"),
                           ("delete", "delete an assignment (devices keep their values and history)")):
        c = asub.add_parser(name, help=helptext)
        c.add_argument("assignment", help="name or id")
        add_server_argument(c)
        c.set_defaults(func=globals()[f"{name}_assignment"])
    dev = asub.add_parser("devices", help="the devices an assignment selects, with their state")
    dev.add_argument("assignment", help="name or id")
    dev.add_argument("--state", choices=STATES)
    dev.add_argument("--limit", type=int, default=100)
    dev.add_argument("--offset", type=int, default=0)
    add_server_argument(dev)
    dev.set_defaults(func=devices_assignment)


def _path(ref: str, suffix: str = "") -> str:
    return "/api/v1/assignments/" + urllib.parse.quote(ref, safe="") + suffix


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    print()


def list_assignments(args: Any) -> int:
    data = ApiClient(args.server).get("/api/v1/assignments")
    if args.json:
        _dump(data)
        return 0
    table = new_table(("id", "name", "mode", "priority", "revision", "enabled", "selector", *STATES),
                      title=f"{data['total']} assignment(s)", keep_whole=("id", "name"))
    for a in data["assignments"]:
        counts = dict(a.get("counts") or {})
        counts["compliant"] = counts.get("compliant", 0) + counts.pop("applied", 0)
        table.add_row(*(cell(v) for v in (a["id"], a["name"], a["mode"], a["priority"], a["revision"],
                                          "yes" if a["enabled"] else "no", a["selector"],
                                          *(counts.get(s, 0) for s in STATES))))
    Console().print(table)
    if data["assignments"]:
        print("counts: devices judged at the current revision; `assignments compliance NAME` adds those not "
              "yet seen")
    return 0


def _show(a: dict[str, Any]) -> None:
    console = Console()
    console.print(f"assignment {printable(a['name'])} (id {a['id']}): revision {a['revision']}, {a['mode']}, "
                  f"priority {a['priority']}, {'enabled' if a['enabled'] else 'disabled'}, "
                  f"ParameterKey {a['parameter_key']}", markup=False)
    console.print(f"selector {printable(a['selector'])}; policy {printable(a['policy_name'])}; "
                  f"updated {a['updated_at']}", markup=False)
    table = new_table(("setting", "value"), keep_whole=("setting",))
    for k, v in (a["policy"].get("settings") or {}).items():
        table.add_row(cell(k), cell(v))
    for k, v in (a["policy"].get("extension_settings") or {}).items():
        table.add_row(cell(f"{k} (extensions {a['policy'].get('extensions')})"), cell(v))
    console.print(table)


def show_assignment(args: Any) -> int:
    data = ApiClient(args.server).get(_path(args.assignment))
    if args.json:
        _dump(data)
    else:
        _show(data)
    return 0


def _toggle(args: Any, action: str) -> int:
    data = ApiClient(args.server).request("POST", _path(args.assignment, f"/{action}"), body={})
    if args.json:
        _dump(data)
    else:
        print(f"assignment {printable(data['name'])} {action}d (revision {data['revision']})")
    return 0


def enable_assignment(args: Any) -> int:
    return _toggle(args, "enable")


def disable_assignment(args: Any) -> int:
    return _toggle(args, "disable")


def delete_assignment(args: Any) -> int:
    data = ApiClient(args.server).request("DELETE", _path(args.assignment))
    if args.json:
        _dump(data)
    else:
        print(f"assignment {printable(data['deleted'])} deleted; devices keep their values and history")
    return 0


def _ratio(r: Any) -> str:
    return f"{r * 100:.1f}%" if isinstance(r, (int, float)) else "-"


def compliance_assignment(args: Any) -> int:
    data = ApiClient(args.server).get(_path(args.assignment, "/compliance"))
    if args.json:
        _dump(data)
        return 0
    console = Console()
    console.print(f"assignment {printable(data['assignment'])} r{data['revision']} ({data['mode']}): "
                  f"{data['selected']} device(s) selected, {_ratio(data['compliant_ratio'])} compliant, "
                  f"{_ratio(data['drifted_ratio'])} drifted", markup=False)
    table = new_table(("model", "firmware", "selected", *STATES, "compliant %"), keep_whole=("model",))
    for row in data["by_firmware"]:
        table.add_row(*(cell(v) for v in (row["product_class"], row["software_version"] or "", row["selected"],
                                          *(row[s] for s in STATES), _ratio(row["compliant_ratio"]))))
    total = ("all", "", data["selected"], *(data[s] for s in STATES), _ratio(data["compliant_ratio"]))
    table.add_row(*(cell(v) for v in total), style="bold")
    console.print(table)
    return 0


def devices_assignment(args: Any) -> int:
    data = ApiClient(args.server).get(_path(args.assignment, "/devices"), state=args.state, limit=args.limit,
                                      offset=args.offset)
    if args.json:
        _dump(data)
        return 0
    table = new_table(("device", "firmware", "state", "detail", "updated"), keep_whole=("device", "state"),
                      title=f"{data['total']} device(s) of {data['assignment']}")
    for label, d in zip(device_labels(data["devices"]), data["devices"], strict=True):
        detail = d.get("detail") or ""
        if d.get("faults"):
            detail += " (" + ", ".join(f"{f['name'].rsplit('.', 1)[-1]} {f['code']}" for f in d["faults"]) + ")"
        table.add_row(*(cell(v) for v in (label, d.get("software_version") or "", d["state"], detail,
                                          d.get("updated_at") or "")))
    Console().print(table)
    return 0
