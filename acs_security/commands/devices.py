"""``acs-security devices list|show``: read the device registry through the management API."""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from rich.console import Console
from rich.table import Table

from acs_security.commands._client import ApiClient, add_server_argument

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
    show.add_argument("device_id")
    show.set_defaults(func=show_device)


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
    table = Table(title=f"{data['total']} devices (showing {len(data['devices'])} from {data['offset']})")
    for col in ("device", "product class", "software", "last inform", "events"):
        table.add_column(col)
    for d in data["devices"]:
        table.add_row(d["device_id"], d["product_class"], d.get("software_version") or "",
                      d.get("last_inform") or "", " ".join(d.get("events") or []))
    Console().print(table)
    return 0


def show_device(args: Any) -> int:
    data = ApiClient(args.server).get("/api/v1/devices/" + urllib.parse.quote(args.device_id, safe=""))
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    console = Console()
    table = Table(title=data["device_id"], show_header=False)
    for key, value in data.items():
        if key != "parameters":
            table.add_row(key, json.dumps(value) if isinstance(value, list) else str(value or ""))
    console.print(table)
    params = Table(title="parameters")
    for col in ("name", "value", "type"):
        params.add_column(col)
    for name, p in data.get("parameters", {}).items():
        params.add_row(name, p["value"], p["type"])
    console.print(params)
    return 0
