"""``acs-security assign POLICY --select SELECTOR``: bind a policy to the devices a selector
names, enforced on every session of those devices from now on (docs/desired-state.md).

The policy goes through the guardrails as a push does (``--force RULE`` overrides one), and
is refused when it conflicts with another enabled assignment of the same priority on a
device both select. An existing ``--name`` gets a new revision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from acs_security.commands._client import ApiClient, add_server_argument
from acs_security.commands._output import cell, new_table
from acs_security.commands.jobs import _policy_text, _selector
from acs_security.display import printable

__all__ = ["register", "render_conflicts"]


def register(sub: Any) -> None:
    p = sub.add_parser("assign", help="assign a policy to devices: enforced on every session (desired state)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", type=Path, help="policy file: TOML (see datamodel/examples) or cfg.xml")
    p.add_argument("--select", required=True,
                   help="devices: all | product_class=CP-8851-3PCC; firmware>=11.3(7); serial=@FILE; tag=T")
    p.add_argument("--name", help="the assignment's name (default: the policy's); an existing name gets a new "
                                  "revision")
    p.add_argument("--priority", type=int, default=0,
                   help="where assignments set one setting differently on a device, the higher priority wins "
                        "(default 0)")
    p.add_argument("--mode", choices=("enforce", "audit"), default="enforce",
                   help="enforce: differences are corrected in the session (default); audit: reported only")
    p.add_argument("--force", action="append", default=[], metavar="RULE",
                   help="assign although guardrail RULE refuses the policy (repeatable; see docs/guardrails.md)")
    p.add_argument("--dry-run", action="store_true", help="check and count the devices; assign nothing")
    add_server_argument(p)
    p.set_defaults(func=assign)


def render_conflicts(conflicts: list[dict[str, Any]], console: Console) -> None:
    table = new_table(("setting", "this", "value", "other", "value", "e.g. device"), keep_whole=("setting",))
    for c in conflicts:
        d = c.get("device")
        table.add_row(*(cell(v) for v in (c["setting"], c["assignment"], c["value"], c["other"], c["other_value"],
                                          f"{d['serial_number']} {d['product_class']}" if d else "(none yet)")))
    console.print(table)


def assign(args: Any) -> int:
    body = {"policy": _policy_text(args.policy), "policy_name": args.policy.name, "select": _selector(args.select),
            "priority": args.priority, "mode": args.mode, "force": list(args.force), "dry_run": args.dry_run}
    if args.name:
        body["name"] = args.name
    result = ApiClient(args.server).request("POST", "/api/v1/assignments", body=body)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    console = Console()
    by_model = ", ".join(f"{printable(m)} {n}" for m, n in result.get("selected_by_model", {}).items())
    if result.get("dry_run"):
        console.print(f"dry run: would {printable(result['would'])}: {result['selected']} device(s) selected now"
                      + (f" ({by_model})" if by_model else ""), markup=False)
        if result.get("conflicts"):
            console.print("refused: conflicts with assignments of the same priority:", markup=False)
            render_conflicts(result["conflicts"], console)
        if result.get("refused_by"):
            console.print(f"refused by guardrails: {', '.join(result['refused_by'])}", markup=False)
    else:
        verb = "unchanged" if result.get("unchanged") else "created" if result.get("created") else "updated"
        console.print(f"assignment {printable(result['name'])} {verb}: revision {result['revision']}, "
                      f"{result['mode']}, priority {result['priority']}, ParameterKey {result['parameter_key']}; "
                      f"{result['selected']} device(s) selected now" + (f" ({by_model})" if by_model else "")
                      + "; enforced at each device's next session", markup=False)
    for f in result.get("findings", []):
        console.print(f"{f['severity']} {f['rule']}: {', '.join(f['settings'])}: {f['reason']}", markup=False)
    return 0
