"""``acs-security policy lint POLICY``: the guardrails every push runs, before any push.

The ACS facts (public URL, provisioning hosts, HTTPS endpoint's TLS versions and suites)
come from the same configuration as ``serve`` (``--config``, ``ACS_*`` variables, the flags
below), so the verdict is the one a push to that server would get. Exit codes: 0 clean,
1 warnings only, 2 errors (a push would be refused unless the rules are forced).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError

__all__ = ["register", "render_text"]


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="check security policies against the guardrails")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    psub.required = True
    lint = psub.add_parser("lint", help="report what would lock phones out or weaken them (exit 0/1/2)",
                           description=__doc__)
    lint.add_argument("policy", type=Path, help="policy file: TOML or cfg.xml")
    lint.add_argument("--config", type=Path, metavar="FILE", help="the server's TOML configuration file")
    lint.add_argument("--public-url", help="URL the phones use to reach the ACS (config public_url)")
    lint.add_argument("--provisioning-host", action="append", default=None, metavar="HOST",
                      help="a host the phones must keep reaching (repeatable; config provisioning_hosts)")
    lint.add_argument("--tls-max-version", help="highest TLS version of the ACS's HTTPS endpoint")
    lint.add_argument("--tls-ciphers", help="OpenSSL cipher string of the ACS's HTTPS endpoint")
    lint.add_argument("--json", action="store_true", help="print JSON instead of text")
    lint.set_defaults(func=lint_command)


def _context(args: Any) -> Any:
    from acs_security.policy.guardrails import context_from_config
    from acs_security.server.app import certificate_auth
    from acs_security.server.config import ConfigError, load_config

    overrides = {"public_url": args.public_url, "tls_max_version": args.tls_max_version,
                 "tls_ciphers": args.tls_ciphers,
                 "provisioning_hosts": args.provisioning_host}
    try:
        config = load_config(config_file=args.config, overrides=overrides)
        auth = certificate_auth(config.tls_cert) if config.tls_cert else None
        return context_from_config(config, certificate_auth=auth)
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def render_text(findings: list[Any], *, source: str) -> str:
    """Findings as text for a terminal: one block each, then a verdict line."""
    from acs_security.policy.guardrails import ERROR

    lines = []
    for f in findings:
        shown = f" = {f.value!r}" if f.value is not None else ""
        lines.append(f"{f.severity.upper()} {f.rule}  {', '.join(f.settings) or source}{shown}")
        lines.append(f"  why:  {f.reason}")
        lines.append(f"  from: {f.source}")
        lines.append(f"  fix:  {f.fix}")
        if f.severity == ERROR and f.forceable:
            lines.append(f"  (push --force {f.rule} overrides it)")
    errors = sum(1 for f in findings if f.severity == ERROR)
    warnings = len(findings) - errors
    verdict = ("clean" if not findings else
               f"{errors} error(s), {warnings} warning(s): " + ("a push would be refused" if errors else
                                                                 "a push would go ahead"))
    lines.append(f"{source}: {verdict}")
    return "\n".join(lines) + "\n"


def lint_command(args: Any) -> int:
    from acs_security.policy.document import MAX_POLICY_BYTES
    from acs_security.policy.guardrails import exit_code, lint_document

    try:
        with open(args.policy, "rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{args.policy}: {exc.strerror}") from None
    context = _context(args)
    policy, findings = lint_document(data, source=str(args.policy), context=context)
    code = exit_code(findings)
    if args.json:
        out = {
            "source": str(args.policy),
            "policy": policy.name if policy is not None else None,
            "context": {"acs_host": context.acs_host, "provisioning_hosts": list(context.provisioning_hosts),
                        "https": context.https, "tls_max_version": context.tls_max_version,
                        "tls_suites": sorted(context.tls_suites)},
            "findings": [f.to_json() for f in findings],
            "errors": sum(1 for f in findings if f.severity == "error"),
            "warnings": sum(1 for f in findings if f.severity != "error"),
            "exit_code": code,
        }
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        sys.stdout.write(render_text(findings, source=str(args.policy)))
    return code
