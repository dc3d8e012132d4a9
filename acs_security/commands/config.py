"""``acs-security config``: the example configuration, the settings reference, a check.

``haproxy`` prints HAProxy's configuration for a set of nodes
(:mod:`acs_security.deploy_config`; ``deploy/haproxy.cfg`` is its output with the defaults, the
nodes of deploy/compose.yaml). ``example`` prints a TOML file with every setting of ``serve``
commented out at its default (or, for a setting without one, at an example value);
``reference`` prints the Markdown table of docs/configuration.md; both are generated from
:data:`acs_security.server.config.FIELDS` and the ``ServerConfig`` defaults, so they cannot
drift from the code (``deploy/acs-security.toml`` and ``docs/configuration.md`` are their
committed output, compared by tests/test_deploy.py). ``check`` loads a file the way
``serve`` does (file, then ``ACS_*`` environment) and prints the effective settings, or the
error with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError
from acs_security.deploy_config import COMPOSE_LAYOUT, HaproxyLayout, LayoutError, parse_node, render_haproxy
from acs_security.server.config import FIELDS, ConfigError, Endpoint, ServerConfig, load_config
from acs_security.store.engine import mask_db_url

__all__ = ["register", "render_example", "render_reference", "render_effective", "defaults", "EXAMPLES"]

#: Example values, shown in the example file, for the settings whose default is "unset".
#: Paths follow the layout of the systemd unit and the container image (docs/deploy.md).
EXAMPLES: dict[str, Any] = {
    "https_listen": "0.0.0.0:7548",
    "tls_cert": "/etc/acs-security/tls/server.pem",
    "tls_key": "/etc/acs-security/tls/server.key",
    "client_ca": "/etc/acs-security/tls/phones-ca.pem",
    "public_url": "https://acs.example.net/",
    "stun_public": "203.0.113.10:3478",
    "xmpp_server": "xmpp.example.net:5222",
    "xmpp_jid": "acs@xmpp.example.net",
    "xmpp_password_file": "/etc/acs-security/xmpp.pw",
    "xmpp_ca_file": "/etc/acs-security/tls/xmpp-ca.pem",
    "cr_username": "acs",
    "cr_password_file": "/etc/acs-security/cr.pw",
    "secret_key_file": "/var/lib/acs-security/acs.key",
    "cluster": True,
    "node_id": "acs1",
    "file_url": "https://acs.example.net",
    "idle_timeout": 60.0,
}

_WIDTH = 96


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="example configuration, settings reference, check a configuration file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    e = csub.add_parser("example", help="print a TOML configuration with every setting commented out")
    e.set_defaults(func=lambda args: _print(render_example()))
    r = csub.add_parser("reference", help="print the settings reference (docs/configuration.md)")
    r.set_defaults(func=lambda args: _print(render_reference()))
    h = csub.add_parser("haproxy", help="print HAProxy's configuration for the nodes (deploy/haproxy.cfg)",
                        description="HAProxy in front of the nodes: TLS termination, ACSNODE cookie "
                                    "stickiness, /readyz health checks, PROXY v2 to the CWMP ports. "
                                    "Without options: deploy/haproxy.cfg (the nodes of compose.yaml).")
    h.add_argument("--node", action="append", metavar="NAME=HOST[:CWMP[:API[:HTTPS]]]",
                   help="a node (repeat); ports default to 7547, 7557, 7548; default: acs1 and acs2")
    h.add_argument("--cwmp-bind", default=COMPOSE_LAYOUT.cwmp_bind, metavar="[HOST]:PORT",
                   help=f"the phones' TLS listener (default {COMPOSE_LAYOUT.cwmp_bind})")
    h.add_argument("--api-bind", default=COMPOSE_LAYOUT.api_bind, metavar="[HOST]:PORT",
                   help=f"the management API's TLS listener (default {COMPOSE_LAYOUT.api_bind})")
    h.add_argument("--mtls-bind", default=COMPOSE_LAYOUT.mtls_bind, metavar="[HOST]:PORT",
                   help=f"the client-certificate passthrough listener (default {COMPOSE_LAYOUT.mtls_bind})")
    h.add_argument("--mtls", action="store_true",
                   help="enable the passthrough to the nodes' https_listen (else written commented out)")
    h.add_argument("--crt", default=COMPOSE_LAYOUT.crt, metavar="PEM",
                   help=f"certificate chain and key of the TLS listeners (default {COMPOSE_LAYOUT.crt})")
    h.add_argument("--stats-socket", default=COMPOSE_LAYOUT.stats_socket, metavar="PATH",
                   help=f"the runtime API's socket (default {COMPOSE_LAYOUT.stats_socket})")
    h.set_defaults(func=_haproxy)
    c = csub.add_parser("check", help="load a configuration as serve would and print the effective settings")
    c.add_argument("--config", type=Path, metavar="FILE", required=True, help="TOML configuration file")
    c.add_argument("--no-env", action="store_true",
                   help="ignore the ACS_* environment variables (check the file alone)")
    c.set_defaults(func=_check)


def _haproxy(args: argparse.Namespace) -> int:
    try:
        nodes = tuple(parse_node(n) for n in args.node) if args.node else COMPOSE_LAYOUT.nodes
        layout = HaproxyLayout(nodes=nodes, cwmp_bind=args.cwmp_bind, api_bind=args.api_bind,
                               mtls_bind=args.mtls_bind, mtls=args.mtls, crt=args.crt,
                               stats_socket=args.stats_socket)
    except LayoutError as exc:
        raise UsageError(str(exc)) from None
    return _print(render_haproxy(layout))


def _print(text: str) -> int:
    sys.stdout.write(text)
    return 0


def defaults() -> dict[str, Any]:
    """Each setting's built-in default (None when it has none), from the dataclass."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ServerConfig):
        if f.name not in FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        else:  # pragma: no cover - every setting has a plain default today
            assert f.default_factory is not dataclasses.MISSING
            out[f.name] = f.default_factory()
    return out


def toml_value(value: Any) -> str:
    """A setting's value as TOML text, in the form load_config reads back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, (str, Path, Endpoint)):
        # A JSON string is a valid TOML basic string (same escapes, \\uXXXX for the rest).
        return json.dumps(str(value))
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _flag(name: str) -> str:
    flag = "--" + name.replace("_", "-")
    if FIELDS[name][0] == "bool":
        return f"{flag} / --no-{flag[2:]}"
    return flag


def _env(name: str) -> str:
    return f"ACS_{name.upper()}"


def render_example() -> str:
    """The commented example configuration (deploy/acs-security.toml)."""
    lines = [
        "# acs-security configuration (TOML), read by `acs-security serve --config FILE`.",
        "#",
        "# Generated by `acs-security config example` from the settings table of the code",
        "# (acs_security/server/config.py); the reference with every setting is docs/configuration.md.",
        "# Each setting is shown commented out: `#name = value` is its built-in default, or, where",
        "# the default is unset, an example. Uncomment and edit the ones you change.",
        "#",
        "# Precedence, lowest first: defaults, this file, ACS_<NAME> environment variables,",
        "# command-line flags. Check a file with `acs-security config check --config FILE`.",
        "",
        "[server]",
    ]
    current = defaults()
    for name, (kind, text) in FIELDS.items():
        lines.append("")
        lines.extend("# " + part for part in textwrap.wrap(text, _WIDTH - 2))
        value = current[name]
        if value is None:
            lines.append(f"# {kind}; env {_env(name)}, flag {_flag(name)}; unset by default, for example:")
            lines.append(f"#{name} = {toml_value(EXAMPLES[name])}")
        else:
            lines.append(f"# {kind}; env {_env(name)}, flag {_flag(name)}; default:")
            lines.append(f"#{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


_KINDS = {
    "str": "text",
    "int": "whole number",
    "float": "number (seconds where the setting is a time)",
    "bool": "true or false; in the environment also 1/0, yes/no, on/off; flags `--x` and `--no-x`",
    "path": "file path (`~` is expanded)",
    "endpoint": "`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces); `off` disables",
    "list": "TOML array in the file; comma-separated in the environment and flags",
}


def _plain(value: Any) -> str:
    """A default as written in the environment or a flag (the file's TOML form is in the example)."""
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "(empty)"
    return f"`{_cell(str(value))}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_reference() -> str:
    """The settings reference in Markdown (docs/configuration.md)."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `acs-security config reference` from acs_security/server/config.py;",
        "     do not edit: tests/test_deploy.py compares this file with the command's output. -->",
        "",
        "Every setting of `acs-security serve` has three spellings: a key of the `[server]` section of",
        "the TOML file given with `--config`, an `ACS_<NAME>` environment variable and a flag. Flags win",
        "over the environment, which wins over the file, which wins over the defaults below.",
        "",
        "- `acs-security config example` prints a configuration file with every setting commented out",
        "  (`deploy/acs-security.toml` is its output).",
        "- `acs-security config check --config FILE` loads a file (and the environment) as `serve`",
        "  would and prints the effective settings, or every problem it finds, all at once (exit code 2).",
        "- Deployment (single machine, several nodes, TLS, backup): [deploy.md](deploy.md).",
        "- The connection limits and timeouts, and the phones' addresses behind a proxy",
        "  (`trusted_proxies`, `proxy_protocol`): [deploy.md](deploy.md#connections-timeouts-and-proxies).",
        "",
        "| setting | environment | flag | kind | default | meaning |",
        "|---|---|---|---|---|---|",
    ]
    current = defaults()
    for name, (kind, text) in FIELDS.items():
        value = current[name]
        default = "(unset)" if value is None else _plain(value)
        lines.append(f"| `{name}` | `{_env(name)}` | `{_flag(name)}` | {kind} | {default} | {_cell(text)} |")
    lines += ["", "Kinds:", ""]
    for kind, text in _KINDS.items():
        lines.append(f"- **{kind}**: {text}")
    return "\n".join(lines) + "\n"



def render_effective(config: ServerConfig) -> str:
    """The effective settings as TOML (unset ones commented); the database password masked."""
    lines = ["[server]"]
    for name in FIELDS:
        value = getattr(config, name)
        if name == "db":
            value = mask_db_url(value)
        if value is None:
            lines.append(f"#{name} = (unset)")
        else:
            lines.append(f"{name} = {toml_value(value)}")
    lines.append(f"# cluster coordination (task claims, session leases): {'on' if config.clustered else 'off'}")
    return "\n".join(lines) + "\n"


def _check(args: argparse.Namespace) -> int:
    from acs_security.store.engine import parse_store_url
    from acs_security.store.errors import InvalidStoreURL

    try:
        config = load_config(config_file=args.config, environ={} if args.no_env else os.environ)
        parse_store_url(config.db)  # the same check the store makes at start; never echoes a password
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except InvalidStoreURL as exc:
        raise UsageError(f"db: {exc}") from None
    sys.stdout.write(render_effective(config))
    return 0
