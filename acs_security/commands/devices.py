"""``acs-security devices list|show|drift|desired``: the device registry, a device's drift history
and its desired-vs-known view, through the management API."""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from rich.console import Console

from acs_security.commands import UsageError
from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import cell, new_table
from acs_security.display import device_labels, device_parts, printable

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("devices", help="list and show devices known to the ACS")
    dsub = p.add_subparsers(dest="devices_command", metavar="ACTION")
    dsub.required = True
    lst = dsub.add_parser("list", help="list devices")
    add_server_argument(lst)
    lst.add_argument("--product-class")
    lst.add_argument("--software-version")
    lst.add_argument("--tag")
    lst.add_argument("--serial", help="comma-separated serial numbers")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--offset", type=int, default=0)
    lst.set_defaults(func=list_devices)
    show = dsub.add_parser("show", help="show one device with its known parameter values")
    add_server_argument(show)
    show.add_argument("device_id", metavar="DEVICE", help="the device id, or its serial number")
    show.set_defaults(func=show_device)
    drift = dsub.add_parser("drift", help="a device's drift history: controlled settings changed on the phone, "
                                          "sessions a job won, factory resets")
    add_server_argument(drift)
    drift.add_argument("device_id", metavar="DEVICE", help="the device id, or its serial number")
    drift.add_argument("--limit", type=int, default=100)
    drift.set_defaults(func=device_drift)
    desired = dsub.add_parser("desired", help="a device's desired values next to the known ones, per assignment")
    add_server_argument(desired)
    desired.add_argument("device_id", metavar="DEVICE", help="the device id, or its serial number")
    desired.set_defaults(func=device_desired)


def list_devices(args: Any) -> int:
    data = ApiClient(args.server).get(
        "/api/v1/devices", limit=args.limit, offset=args.offset,
        product_class=args.product_class, software_version=args.software_version,
        tag=args.tag, serial=args.serial,
    )
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    table = new_table(("serial", "model", "OUI", "software", "last inform", "events"),
                      title=f"{data['total']} devices (showing {len(data['devices'])} from {data['offset']})",
                      keep_whole=("serial", "model", "last inform"))
    for d in data["devices"]:
        table.add_row(*(cell(v) for v in (d.get("serial_number"), d.get("product_class"), d.get("oui"),
                                          d.get("software_version") or "", d.get("last_inform") or "",
                                          " ".join(d.get("events") or []))))
    Console().print(table)
    return 0


def _resolve(client: ApiClient, text: str) -> str:
    """The device id for ``text``: a device id as it is, else a serial number looked up (an
    operator reads the serial off the phone's label). Raises UsageError when no device or
    several devices have that serial number (the answer lists them)."""
    if device_parts(text) is not None:
        return text
    found = client.get("/api/v1/devices", serial=text, limit=20)["devices"]
    if len(found) == 1:
        return str(found[0]["device_id"])
    if not found:
        raise UsageError(f"no device has the id or serial number {printable(text)!r}", code=1)
    labels = ", ".join(device_labels(found))
    raise UsageError(f"several devices have the serial number {printable(text)!r} ({labels}): give the device id",
                     code=1)


def show_device(args: Any) -> int:
    client = ApiClient(args.server)
    device_id = _resolve(client, args.device_id)
    data = client.get("/api/v1/devices/" + urllib.parse.quote(device_id, safe=""))
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    console = Console()
    table = new_table(("field", "value"), title=device_labels([data])[0])
    table.show_header = False
    for key, value in data.items():
        if key != "parameters":
            table.add_row(cell(key), cell(json.dumps(value) if isinstance(value, list) else str(value or "")))
    console.print(table)
    params = new_table(("name", "value", "type"), title="parameters")
    for name, p in data.get("parameters", {}).items():
        params.add_row(cell(name), cell(p["value"]), cell(p["type"]))
    console.print(params)
    return 0


def device_drift(args: Any) -> int:
    client = ApiClient(args.server)
    device_id = _resolve(client, args.device_id)
    data = client.get("/api/v1/devices/" + urllib.parse.quote(device_id, safe="") + "/drift", limit=args.limit)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    table = new_table(("when", "what", "assignment", "setting", "old", "new", "source", "action"),
                      keep_whole=("when",), title=f"{device_labels([data])[0]}: {data['total']} event(s), newest first")
    for e in data["events"]:
        table.add_row(*(cell(v) for v in (e["at"], e["kind"], e["assignment"], e["setting"] or "", e["old"],
                                          e["new"], e["event"], e["action"])))
    Console().print(table)
    return 0


def device_desired(args: Any) -> int:
    client = ApiClient(args.server)
    device_id = _resolve(client, args.device_id)
    data = client.get("/api/v1/devices/" + urllib.parse.quote(device_id, safe="") + "/desired")
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    console = Console()
    console.print(f"{device_labels([data])[0]} firmware {printable(data['software_version'])}, "
                  f"ParameterKey {printable(data['parameter_key'])}", markup=False)
    table = new_table(("assignment", "revision", "mode", "state", "notified", "detail"), keep_whole=("assignment",))
    for a in data["assignments"]:
        table.add_row(*(cell(v) for v in (a["name"], a["revision"], a["mode"], a["state"],
                                          "yes" if a["notified"] else "no", a["detail"] or "")))
    console.print(table)
    table = new_table(("setting", "desired", "known", "verdict", "assignment"), keep_whole=("setting", "verdict"))
    for s in data["settings"]:
        table.add_row(*(cell(v) for v in (s["setting"], s["desired"], s["known"] if s["known"] is not None
                                          else "(unknown)", s["verdict"], s["detail"] or s["assignment"])))
    console.print(table)
    return 0
