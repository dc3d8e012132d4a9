"""The ``acs-security`` command.

Each sub-command lives in its own module under ``acs_security.commands`` and exposes
``register(subparsers)``; this file only wires them together, so that adding a command
never means editing another command's code. Only the command modules that run a server
touch the global reactor.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

# Order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "config",
    "devices",
    "jobs",
    "assign",
    "assignments",
    "audit",
    "credentials",
    "tokens",
    "simulate",
    "demo",
    "cfgxml",
    "datamodel",
    "certs",
    "policy",
    "secrets",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acs-security",
        description="TR-069 ACS extension that pushes security policies to fleets of Cisco IP phones.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"acs_security.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command whose module is not there yet is left out; any other import error is a bug.
            if exc.name == f"acs_security.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from acs_security.commands import UsageError

    try:
        result = args.func(args)
    except UsageError as exc:
        print(f"acs-security {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
