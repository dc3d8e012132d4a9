"""``acs-security serve``: run the ACS (CWMP endpoint + management API).

Every setting of :data:`acs_security.server.config.FIELDS` is a flag here, in the TOML
file given by ``--config`` (section ``[server]``), and an ``ACS_<NAME>`` environment
variable; flags win over the environment, which wins over the file.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError
from acs_security.server.config import FIELDS, ConfigError, describe, load_config

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the ACS: CWMP endpoint for the phones and the management API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    for name, (kind, text) in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        env = f"ACS_{name.upper()}"
        if kind == "bool":
            p.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                help=f"{text} (env {env})",
            )
        else:
            p.add_argument(flag, dest=name, default=None, metavar=kind.upper(),
                           help=f"{text} (env {env})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FIELDS}
    try:
        config = load_config(config_file=args.config, overrides=overrides)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if config.db.startswith("sqlite:///"):
        Path(config.db[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)

    from twisted.internet import reactor  # the only global reactor use: the process entry point
    from twisted.internet.error import CannotListenError
    from twisted.logger import Logger

    from acs_security.server.app import AcsServer
    from acs_security.server.logs import start_logging
    from acs_security.store import StoreError

    start_logging(json_lines=config.log_json, level=config.log_level)
    log = Logger(namespace="acs_security.serve")
    server = AcsServer(config=config, reactor=reactor)
    try:
        server.start()
    except (ConfigError, StoreError, CannotListenError) as exc:
        raise UsageError(str(exc)) from None
    log.info("acs-security started {config}", config=describe(config))
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    def engine_failed(f: Failure) -> None:
        log.failure("job engine failed to start", f)
        reactor.stop()

    Deferred.fromCoroutine(server.start_engine()).addErrback(engine_failed)

    def shutdown() -> Any:
        return server.stop()

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    # The global reactor is typed as Twisted's "_IReactorCommon", without IReactorFromThreads.
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))  # type: ignore[attr-defined]
    reactor.run()
    return 0
