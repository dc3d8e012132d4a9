"""``acs-security simulate``: run N simulated Cisco phones against an ACS.

The phones boot over a ramp, inform periodically, answer the ACS's requests as the phones
do (faults included), listen for HTTP and UDP connection requests, and lock themselves out
when the ACS pushes settings that cut them off (FIPS mode, restricted domains, TLS). A
status line is printed every few seconds and a summary on Ctrl-C. Deterministic for a given
``--seed``; several processes share a fleet with ``--serial-start``. See docs/simulator.md.

Passwords never go on the command line: ``--acs-password-file`` or $ACS_SIM_ACS_PASSWORD
(the phones' Device.ManagementServer.Password), ``--cr-password-file`` or
$ACS_SIM_CR_PASSWORD (shared connection-request password).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from acs_security.commands import UsageError
from acs_security.connreq.xmpp_stanza import JidError, parse_allowed_jids

__all__ = ["drift_options", "fleet_options", "register", "run", "run_simulation"]

_DEFAULT_ACS_PASSWORD = "cpe"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="run simulated Cisco phones against an ACS (tests, demo, rollout rehearsal)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--acs", required=True, metavar="URL", help="the ACS URL the phones use")
    p.add_argument("--phones", required=True, type=int, metavar="N", help="number of phones")
    p.add_argument("--models", action="append", metavar="PC[,PC...]",
                   help="product classes to spread the phones over (repeatable; default: "
                        "CP-8851-3PCC, CP-7841-3PCC, CP-6821-3PCC, CP-7832-3PCC)")
    p.add_argument("--firmware", action="append", metavar="VER[,VER...]",
                   help="firmware versions to spread the phones over (default 11.3(7),12.0(1))")
    p.add_argument("--inform-interval", type=float, default=300.0, metavar="S",
                   help="PeriodicInformInterval in seconds (default 300)")
    p.add_argument("--cr-listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="HTTP connection-request listener, one port for all phones (default "
                        "127.0.0.1:0, a free port; 'off' to disable)")
    p.add_argument("--udp-listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="UDP connection-request listener (default 127.0.0.1:0; 'off')")
    p.add_argument("--cr-advertise", metavar="HOST",
                   help="host to put in ConnectionRequestURL (default: the listen host)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--faults", default="", metavar="SPEC",
                   help="fault injection, e.g. offline=0.05,slow=0.02,cr503=0.02,drop=0.01,"
                        "old_firmware=0.05,reject=0.02")
    p.add_argument("--serial-prefix", default="SIM", metavar="TEXT")
    p.add_argument("--serial-start", type=int, default=0, metavar="N",
                   help="index of the first phone (to split a fleet over processes)")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:ADDR",
                   help="resolve HOST to ADDR, like curl --resolve (repeatable)")
    p.add_argument("--acs-username", default="cpe", metavar="USER",
                   help="Device.ManagementServer.Username of every phone (default cpe)")
    p.add_argument("--acs-password-file", type=Path, metavar="FILE",
                   help="file holding the phones' ACS password (default $ACS_SIM_ACS_PASSWORD, "
                        "else 'cpe')")
    p.add_argument("--cr-password-mode", choices=("per-phone", "shared"), default="per-phone",
                   help="connection-request credentials: one per phone (derived from the seed) "
                        "or one shared pair")
    p.add_argument("--cr-username", default="acs", metavar="USER",
                   help="shared ConnectionRequestUsername (with --cr-password-mode shared)")
    p.add_argument("--cr-password-file", type=Path, metavar="FILE",
                   help="file holding the shared CR password (default $ACS_SIM_CR_PASSWORD)")
    p.add_argument("--cr-credentials-db", metavar="DBURL",
                   help="write every phone's CR credentials into this ACS database "
                        "(as for serve --db) so the ACS can send connection requests")
    p.add_argument("--max-sessions", type=int, default=200, metavar="N",
                   help="concurrent sessions at most (default 200)")
    p.add_argument("--boot-ramp", type=float, metavar="S",
                   help="spread the boots over S seconds (default phones/200, at least 1)")
    p.add_argument("--trust-ca", type=Path, metavar="PEM",
                   help="CA certificate the phones trust for an https ACS")
    p.add_argument("--client-certs", type=Path, metavar="DIR",
                   help="each phone presents DIR/SERIAL.pem with DIR/SERIAL.key over HTTPS (mutual TLS; "
                        "the devices/ folder of `acs-security certs dev-ca --serial ...`)")
    p.add_argument("--connection-per-request", action="store_true",
                   help="every request of a session on a new TCP connection (a CPE without "
                        "keep-alive: the session rests on its cookies)")
    p.add_argument("--status-interval", type=float, default=5.0, metavar="S",
                   help="seconds between status lines (default 5; 0 for none)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--drift", type=float, default=0.0, metavar="RATE",
                   help="share of the phones (0-1) on whose web page a person changes a setting the ACS "
                        "watches, every --drift-interval; they report it as 4 VALUE CHANGE")
    p.add_argument("--factory-reset", type=float, default=0.0, metavar="RATE",
                   help="share of the phones (0-1) reset to factory values every --drift-interval "
                        "(0 BOOTSTRAP with defaults)")
    p.add_argument("--nat", type=float, default=0.0, metavar="RATE",
                   help="share of the phones (0-1) behind an address-and-port restricted NAT: their HTTP "
                        "connection-request URL is unreachable, they run the TR-111 STUN client and take UDP "
                        "connection requests from the ACS's STUN server only (docs/nat.md)")
    p.add_argument("--stun-server", metavar="IP:PORT",
                   help="the ACS's STUN server the phones behind NAT use (default: the --acs host, port 3478)")
    p.add_argument("--stun-keepalive", type=int, default=30, metavar="S",
                   help="seconds between a phone's STUN Binding Requests (STUNMinimumKeepAlivePeriod, default 30)")
    p.add_argument("--xmpp", type=float, default=0.0, metavar="RATE",
                   help="share of the phones (0-1) reached by XMPP (TR-069 Annex K): each logs in to "
                        "--xmpp-server as SERIAL@DOMAIN/cwmp (accounts: docs/xmpp.md) and, unless also "
                        "--nat, sits behind a NAT without STUN (docs/xmpp.md)")
    p.add_argument("--xmpp-server", metavar="HOST:PORT", help="the XMPP server the phones log in to")
    p.add_argument("--xmpp-domain", default="xmpp.test", metavar="D", help="the phones' XMPP domain")
    p.add_argument("--xmpp-allowed", action="append", default=[], metavar="JID",
                   help="an ACS JID the phones accept connection requests from "
                        "(ConnReqAllowedJabberIDs; repeat; none: any)")
    p.add_argument("--drift-interval", type=float, metavar="S",
                   help="seconds between rounds of --drift and --factory-reset (default: --inform-interval)")
    p.set_defaults(func=run)


def _read_secret(path: Path | None, env: Mapping[str, str], var: str, default: str | None,
                 flag: str) -> str | None:
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"{flag} {path}: {exc.strerror}") from None
        if not text:
            raise UsageError(f"{flag} {path} is empty")
        return text
    return env.get(var) or default


def _listen(text: str, flag: str) -> str | None:
    if text.strip().lower() in ("off", "none", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{flag}: {text!r} is not HOST:PORT")
    return text


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def fleet_options(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of :class:`~acs_security.sim.fleet.SimulatedFleet` (without the
    reactor) from the command line. Raises UsageError naming the flag that is wrong."""
    from acs_security.mapping import UnknownModelError, load_catalogue
    from acs_security.mapping.paths import parse_firmware
    from acs_security.sim.faults import FaultSpecError, parse_faults
    from acs_security.sim.table import DEFAULT_FIRMWARE, DEFAULT_MODELS

    env = os.environ if env is None else env
    if args.phones < 1:
        raise UsageError("--phones must be at least 1")
    if not args.acs.startswith(("http://", "https://")):
        raise UsageError(f"--acs {args.acs!r} is not an http:// or https:// URL")
    catalogue = load_catalogue()
    models = _split(args.models) or list(DEFAULT_MODELS)
    try:
        models = [catalogue.model(m).product_class for m in models]
    except UnknownModelError as exc:
        raise UsageError(f"--models: {exc}") from None
    firmware = _split(args.firmware) or list(DEFAULT_FIRMWARE)
    for version in firmware:
        if parse_firmware(version) is None:
            raise UsageError(f"--firmware: {version!r} is not a version like 12.0(1)")
    try:
        faults = parse_faults(args.faults)
    except FaultSpecError as exc:
        raise UsageError(f"--faults: {exc}") from None
    resolve: dict[str, str] = {}
    for item in args.resolve:
        host, sep, address = item.partition(":")
        if not sep or not host or not address:
            raise UsageError(f"--resolve: {item!r} is not HOST:ADDR")
        resolve[host.lower()] = address.strip("[]")
    if args.inform_interval < 1:
        raise UsageError("--inform-interval must be at least 1 second")
    if args.max_sessions < 1:
        raise UsageError("--max-sessions must be at least 1")
    cr_password = _read_secret(args.cr_password_file, env, "ACS_SIM_CR_PASSWORD", None,
                               "--cr-password-file")
    if args.cr_password_mode == "shared" and not cr_password:
        raise UsageError("--cr-password-mode shared needs --cr-password-file or "
                         "$ACS_SIM_CR_PASSWORD")
    trust = None
    if args.trust_ca is not None:
        try:
            trust = args.trust_ca.read_bytes()
        except OSError as exc:
            raise UsageError(f"--trust-ca {args.trust_ca}: {exc.strerror}") from None
    client_certs = args.client_certs
    if client_certs is not None and not client_certs.is_dir():
        raise UsageError(f"--client-certs {client_certs}: not a directory")
    return dict(
        acs_url=args.acs, phones=args.phones, models=tuple(models), firmware=tuple(firmware),
        seed=args.seed, inform_interval=args.inform_interval, faults=faults,
        cr_listen=_listen(args.cr_listen, "--cr-listen"),
        udp_listen=_listen(args.udp_listen, "--udp-listen"), advertise_host=args.cr_advertise,
        serial_prefix=args.serial_prefix, serial_start=args.serial_start, resolve=resolve,
        acs_username=args.acs_username,
        acs_password=_read_secret(args.acs_password_file, env, "ACS_SIM_ACS_PASSWORD",
                                  _DEFAULT_ACS_PASSWORD, "--acs-password-file"),
        cr_password_mode=args.cr_password_mode, cr_username=args.cr_username,
        cr_password=cr_password or "", max_concurrent_sessions=args.max_sessions,
        boot_ramp_s=args.boot_ramp, trust_ca_pem=trust, client_cert_dir=client_certs,
        connection_per_request=args.connection_per_request,
        **_nat_options(args, resolve),
        **_xmpp_options(args),
    )


def _nat_options(args: argparse.Namespace, resolve: Mapping[str, str]) -> dict[str, Any]:
    """The fleet's NAT arguments. Raises UsageError for a rate outside 0-1, a keep-alive
    below 1 s, or a STUN server that is not IP:PORT."""
    if not 0 <= args.nat <= 1:
        raise UsageError(f"--nat must be a share of the phones from 0 to 1, got {args.nat}")
    if args.stun_keepalive < 1:
        raise UsageError("--stun-keepalive must be at least 1 second")
    if not args.nat:
        return {}
    server = args.stun_server
    if server is None:
        host = urlsplit(args.acs).hostname or ""
        server = f"{resolve.get(host.lower(), host)}:3478"
    host, sep, port = server.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        if not sep or not 1 <= int(port) <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError(f"--stun-server: {server!r} is not IP:PORT (give it, or --resolve the --acs host)") from None
    return {"nat": args.nat, "stun_server": server, "stun_keepalive": args.stun_keepalive}


def _xmpp_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fleet's XMPP arguments. Raises UsageError for a rate outside 0-1, no or a bad
    --xmpp-server, an --xmpp-allowed entry that is not a JID."""
    if not 0 <= args.xmpp <= 1:
        raise UsageError(f"--xmpp must be a share of the phones from 0 to 1, got {args.xmpp}")
    if not args.xmpp:
        return {}
    if not args.xmpp_server:
        raise UsageError("--xmpp needs --xmpp-server HOST:PORT")
    try:
        parse_allowed_jids(",".join(args.xmpp_allowed))
    except JidError as exc:
        raise UsageError(f"--xmpp-allowed: {exc}") from None
    return {"xmpp": args.xmpp, "xmpp_server": args.xmpp_server, "xmpp_domain": args.xmpp_domain,
            "xmpp_allowed": tuple(args.xmpp_allowed)}


class _CredentialWriter:
    """Writes the phones' connection-request credentials into the ACS database as they
    register (the store takes them only for devices that have informed), in a thread."""

    def __init__(self, reactor: Any, fleet: Any, db_url: str) -> None:
        from acs_security.store import StoreError, open_store

        try:
            self._store = open_store(db_url)
        except StoreError as exc:
            raise UsageError(f"--cr-credentials-db: {exc}") from None
        self._reactor = reactor
        self._fleet = fleet
        self._done = bytearray(len(fleet.phones))
        self._busy = False
        self.written = 0

    def tick(self) -> None:
        from twisted.internet.threads import deferToThreadPool

        from acs_security.store.records import make_device_id

        if self._busy:
            return
        batch = []
        for i, phone in enumerate(self._fleet.phones):
            if not self._done[i] and phone.sessions_completed:
                user, password = phone.cr_credentials()
                batch.append((i, make_device_id("00000C", phone.product_class, phone.serial),
                              user, password))
        if not batch:
            return
        self._busy = True
        d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._write, batch)
        d.addBoth(self._written)

    def _write(self, batch: list[tuple[int, str, str, str]]) -> list[int]:
        from acs_security.store import StoreError

        done = []
        for index, device_id, user, password in batch:
            try:
                self._store.put_connection_request_credential(device_id, user, password)
            except StoreError:
                continue  # not registered yet at the ACS: next tick
            done.append(index)
        return done

    def _written(self, result: Any) -> None:
        self._busy = False
        if isinstance(result, list):
            for index in result:
                self._done[index] = 1
            self.written += len(result)

    def close(self) -> None:
        self._store.close()


def drift_options(args: argparse.Namespace) -> dict[str, float] | None:
    """The DriftInjector's rates and interval, or None without --drift/--factory-reset.
    Raises UsageError for a rate outside 0-1 or an interval that is not positive."""
    if not args.drift and not args.factory_reset:
        return None
    for flag, rate in (("--drift", args.drift), ("--factory-reset", args.factory_reset)):
        if not 0 <= rate <= 1:
            raise UsageError(f"{flag} must be a share of the phones from 0 to 1, got {rate}")
    interval = args.drift_interval if args.drift_interval is not None else args.inform_interval
    if interval <= 0:
        raise UsageError("--drift-interval must be positive")
    return {"drift_rate": args.drift, "reset_rate": args.factory_reset, "interval": interval}


async def run_simulation(reactor: Any, options: Mapping[str, Any], *, out: IO[str],
                         status_interval: float = 5.0, duration: float | None = None,
                         cr_credentials_db: str | None = None, drift: Mapping[str, float] | None = None) -> Any:
    """Start the fleet in ``reactor``, print status lines to ``out``, stop after ``duration``
    seconds (or when the reactor stops) and print the summary. Returns the fleet.

    Raises UsageError for a listener that cannot bind or a database that cannot be written.
    """
    from twisted.internet.defer import Deferred
    from twisted.internet.error import CannotListenError
    from twisted.internet.task import LoopingCall

    from acs_security.sim.fleet import FleetConfigError, SimulatedFleet

    options = dict(options)
    acs_url = options.pop("acs_url")
    try:
        fleet = SimulatedFleet(reactor, acs_url, **options)
    except FleetConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        await fleet.start()
    except CannotListenError as exc:
        raise UsageError(f"cannot listen: {exc}") from None
    print(f"{len(fleet.phones)} phones -> {acs_url}; connection requests at "
          f"{fleet.env.cr_url_base or '-'}SERIAL, UDP {fleet.udp_address or '-'}", file=out)
    if fleet.nat_phones:
        print(f"{len(fleet.nat_phones)} phones behind NAT (STUN server {options.get('stun_server')}, "
              f"keep-alive {options.get('stun_keepalive')} s)", file=out)
    if len(fleet.xmpp):
        print(f"{len(fleet.xmpp)} phones reached by XMPP via {options.get('xmpp_server')}", file=out)
    writer = None
    try:
        writer = _CredentialWriter(reactor, fleet, cr_credentials_db) if cr_credentials_db else None
    except UsageError:
        await fleet.stop()
        raise
    tasks = []
    injector = None
    if drift:
        from acs_security.sim.drift import DriftInjector

        injector = DriftInjector(reactor, fleet, seed=int(options.get("seed", 0)), **drift)
        injector.start()
    if writer is not None:
        tasks.append(LoopingCall(writer.tick))
        tasks[-1].clock = reactor
        tasks[-1].start(1.0, now=False)
    if status_interval > 0:
        tasks.append(LoopingCall(lambda: print(fleet.status_line(), file=out, flush=True)))
        tasks[-1].clock = reactor
        tasks[-1].start(status_interval, now=False)
    done: Deferred[None] = Deferred()
    finished: Deferred[None] = Deferred()

    def end() -> None:
        if not done.called:
            done.callback(None)

    shutting_down: list[bool] = []

    def on_shutdown() -> Deferred[None]:
        shutting_down.append(True)
        end()  # Ctrl-C: stop the fleet and print the summary before the reactor goes
        return finished

    timer = reactor.callLater(duration, end) if duration is not None else None
    trigger = reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    await done
    if timer is not None and timer.active():
        timer.cancel()
    for task in tasks:
        if task.running:
            task.stop()
    if injector is not None:
        injector.stop()
        print(f"drift: {injector.drifted} web-page change(s), {injector.resets} factory reset(s)", file=out)
    await fleet.stop()
    if writer is not None:
        writer.close()
        print(f"{writer.written} connection-request credentials written to the ACS database",
              file=out)
    print(fleet.status_line(), file=out)
    print(fleet.stats.summary(), file=out, flush=True)
    finished.callback(None)
    if not shutting_down:
        reactor.removeSystemEventTrigger(trigger)
    return fleet


def run(args: argparse.Namespace) -> int:
    options = fleet_options(args)
    drift = drift_options(args)
    from twisted.internet import reactor  # the process entry point: the global reactor
    from twisted.internet.defer import ensureDeferred

    failure: list[BaseException] = []

    def start() -> None:
        d = ensureDeferred(run_simulation(
            reactor, options, out=sys.stdout, status_interval=args.status_interval,
            duration=args.duration, cr_credentials_db=args.cr_credentials_db, drift=drift))

        def finished(result: Any) -> None:
            if hasattr(result, "value"):
                failure.append(result.value)
            if reactor.running:
                reactor.stop()

        d.addBoth(finished)

    reactor.callWhenRunning(start)
    # Ctrl-C and SIGTERM stop the reactor; its shutdown trigger prints the summary. SIGINT is
    # set here too because a shell starts background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        # The global reactor is typed as Twisted's "_IReactorCommon": no IReactorFromThreads, and
        # IReactorCore.run declares no installSignalHandlers.
        signal.signal(signum, lambda *_: reactor.callFromThread(reactor.stop))  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
    if failure:
        raise failure[0]
    return 0
