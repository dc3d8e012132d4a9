"""``acs-security demo``: a whole fleet push on this machine, start to report.

Starts the ACS on SQLite in a temporary folder, boots simulated phones with a few faults
injected (busy, rejecting, slow, offline) and 30 % of them behind NAT (reached by UDP
connection requests through the ACS's STUN server, docs/nat.md), pushes the example
hardening policy shipped in
``datamodel/examples/`` through the management API (the same path as ``acs-security push``),
follows it with a progress bar, prints the report and exits 0 when the push ran to its end.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError

__all__ = ["register"]

DEFAULT_FAULTS = "cr503=0.02,reject=0.02,slow=0.02,offline=0.01"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run a complete fleet push against simulated phones and print the report",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phones", type=int, default=500)
    p.add_argument("--policy", type=Path, help="policy file (default: datamodel/examples/hardening.toml)")
    p.add_argument("--faults", default=DEFAULT_FAULTS, help=f"fault injection spec (default {DEFAULT_FAULTS})")
    p.add_argument("--canary", default="5%")
    p.add_argument("--deadline", default="40s", help="how long offline phones are waited for")
    p.add_argument("--inform-interval", type=float, default=15.0, help="periodic Inform interval of the phones")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nat", type=float, default=0.3, metavar="RATE",
                   help="share of the phones behind NAT, reached through the ACS's STUN server (default 0.3)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (database, logs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from acs_security.mapping import datamodel_dir
    from acs_security.sim.faults import FaultSpecError, parse_faults

    policy = args.policy or datamodel_dir() / "examples" / "hardening.toml"
    if not policy.is_file():
        raise UsageError(f"no policy file {policy}")
    if not 1 <= args.phones <= 20_000:
        raise UsageError("--phones must be 1-20000")
    if not 0 <= args.nat <= 1:
        raise UsageError(f"--nat must be a share of the phones from 0 to 1, got {args.nat}")
    try:
        faults = parse_faults(args.faults) if args.faults else None
    except FaultSpecError as exc:
        raise UsageError(f"--faults: {exc}") from None
    workdir = Path(tempfile.mkdtemp(prefix="acs-security-demo-"))

    from twisted.internet import task

    outcome: dict[str, int] = {}

    def main(reactor: Any) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(_demo(reactor, args, policy, faults, workdir, outcome))

    try:
        task.react(main)
    except SystemExit as exc:  # react exits; keep our own exit code
        if exc.code not in (0, None):
            return int(exc.code)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    return outcome.get("rc", 1)


async def _demo(reactor: Any, args: Any, policy: Path, faults: Any, workdir: Path,
                outcome: dict[str, int]) -> None:
    from rich.console import Console
    from twisted.internet.threads import deferToThreadPool

    from acs_security.commands._client import ApiClient
    from acs_security.commands.jobs import follow, render_summary
    from acs_security.server.app import AcsServer
    from acs_security.server.config import load_config
    from acs_security.sim.fleet import SimulatedFleet

    console = Console()
    (workdir / "cr.pw").write_text("demo-connection-request-secret\n")
    config = load_config(environ={}, overrides={
        "db": f"sqlite:///{workdir}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
        "cpe_auth": False, "cr_username": "acs", "cr_password_file": str(workdir / "cr.pw"),
        "cr_session_wait": 10,
        # The STUN server for the phones behind NAT, on a port the OS picks.
        "stun_listen": "127.0.0.1:0",
        # The host phones use for the ACS: the guardrails check the policy's restricted
        # domains against it (the port is chosen by the OS below; only the host matters).
        "public_url": "http://acs.example.net/",
        # The simulated phones all come from 127.0.0.1: no per-address connection cap.
        "max_connections_per_ip": 0,
    })
    server = AcsServer(config=config, reactor=reactor)
    server.start()
    await server.start_engine()
    port = server.address("cwmp").port
    acs_url = f"http://acs.example.net:{port}/"
    console.print(f"[bold]ACS[/bold] CWMP {acs_url} (acs.example.net -> 127.0.0.1), "
                  f"API {server.url('api')}, SQLite in {workdir}", soft_wrap=True)
    fleet = SimulatedFleet(
        reactor, acs_url, phones=args.phones, seed=args.seed, faults=faults,
        inform_interval=args.inform_interval, resolve={"acs.example.net": "127.0.0.1"},
        boot_ramp_s=2.0, cr_password_mode="shared", cr_username="acs",
        cr_password="demo-connection-request-secret", cr_delay=(0.02, 0.2), cr_min_interval=0.5,
        slow_delay=1.0, nat=args.nat,
        stun_server=f"127.0.0.1:{server.stun.address[1]}" if server.stun and server.stun.address else None,
        stun_keepalive=10,
    )
    try:
        await fleet.start()
        online = sum(1 for p in fleet.phones if not (p.faults & 1))
        with console.status(f"booting {args.phones} simulated phones ..."):
            while server.store.count_devices() < online:
                await _sleep(reactor, 0.25)
        console.print(f"[bold]{server.store.count_devices()}[/bold] phones registered "
                      f"({args.phones - online} offline from the start); pushing {policy.name}")
        if fleet.nat_phones:
            console.print(f"[bold]{len(fleet.nat_phones)}[/bold] of them behind NAT: their connection-request "
                          "URL is unreachable, they keep a STUN binding with the ACS, which wakes them by UDP "
                          "from its STUN port")
        # The demo's own API calls use an operator token made for it (auth is always on).
        client = ApiClient(server.url("api").rstrip("/"), token=server.issue_token("demo", "operator"))
        pool = reactor.getThreadPool()
        body = {"policy": policy.read_text(), "policy_name": policy.name, "select": "all",
                "canary": args.canary, "max_fault_rate": 0.5, "deadline": args.deadline}
        job = await deferToThreadPool(reactor, pool, lambda: client.request("POST", "/api/v1/jobs", body=body))
        final = await deferToThreadPool(reactor, pool, lambda: follow(client, job["id"]))
        render_summary(final, console)
        report = await deferToThreadPool(reactor, pool, client.get, f"/api/v1/jobs/{job['id']}/report")
        _print_reach(report, console)
        _print_outliers(report, console)
        locked = [p.serial for p in fleet.phones if p.locked_out]
        console.print(f"phones locked out of the ACS: {len(locked)}")
        outcome["rc"] = 0 if final["state"] == "completed" and not locked else 1
    finally:
        await fleet.stop()
        await server.stop()


def _print_reach(report: dict[str, Any], console: Any) -> None:
    """How the phones were reached (the report's reached_by), one line."""
    from collections import Counter

    counts = Counter(d.get("reached_by") or "not reached" for d in report["devices"])
    order = ("http", "udp", "xmpp", "periodic", "not reached")
    console.print("reached by: " + ", ".join(f"{name} {counts[name]}" for name in order if counts[name]))


def _print_outliers(report: dict[str, Any], console: Any) -> None:
    from acs_security.commands._output import outcome_table

    rows = [d for d in report["devices"] if not d["state"].startswith("applied")]
    if not rows:
        return
    shown = rows[:30]
    title = f"{len(rows)} device(s) not applied" + (f" (the first {len(shown)})" if len(rows) > len(shown) else "")
    console.print(outcome_table(shown, title=title))


def _sleep(reactor: Any, seconds: float) -> Any:
    from twisted.internet.defer import Deferred

    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
