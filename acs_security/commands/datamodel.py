"""``acs-security datamodel``: look at the catalogue, check a value, export, learn.

    acs-security datamodel show [SETTING] [--model M] [--software-version V] [--json]
    acs-security datamodel check SETTING VALUE [--model M]
    acs-security datamodel export --bbf [-o FILE]
    acs-security datamodel learn GPN_RESULT [--product-class GLOB] [--software-version GLOB] [--cfgxml-only]
                                            [-o FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from acs_security.commands import UsageError
from acs_security.commands.cfgxml import read_input, write_output

__all__ = ["register"]


def _catalogue() -> Any:
    from acs_security.mapping import MappingError, load_catalogue

    try:
        return load_catalogue()
    except MappingError as exc:
        raise UsageError(str(exc), 2) from None


def _setting_dict(setting: Any, catalogue: Any) -> dict[str, Any]:
    from acs_security.mapping.paths import format_firmware

    lacking = [pc for pc, m in catalogue.models.items() if setting.key in m.lacks]
    return {
        "name": setting.name,
        "element": setting.element,
        "location": setting.location,
        "path": setting.path,
        "path_provenance": setting.path_provenance,
        "format": setting.format,
        "values": list(setting.values),
        "tr069_type": setting.tr069_type,
        "max_length": setting.max_length,
        "min": setting.minimum,
        "max": setting.maximum,
        "default": setting.default,
        "ua": setting.ua,
        "secret": setting.secret,
        "writable": setting.writable,
        "seeds": list(setting.seeds),
        "source": setting.source,
        "feature": setting.feature,
        "not_on": lacking,
        "min_firmware": format_firmware(setting.min_firmware) if setting.min_firmware else None,
        "until_firmware": format_firmware(setting.until_firmware) if setting.until_firmware else None,
        "rules": [{"id": r, "severity": catalogue.rule(r).severity, "rule": catalogue.rule(r).describe()}
                  for r in setting.rules],
        "note": setting.note,
    }


def _show_one(args: argparse.Namespace, catalogue: Any) -> int:
    from acs_security.mapping import MappingError

    try:
        setting, n = catalogue.resolve(args.setting)
        path = (catalogue.path_for(args.setting, args.model, args.software_version)
                if (n or not setting.per_extension) else None)
    except MappingError as exc:
        raise UsageError(str(exc), 1) from None
    info = _setting_dict(setting, catalogue)
    if path is not None and path != setting.path:
        info["path_on_model"] = path
    if setting.format == "cipher_list":
        info["cipher_keywords"] = list(catalogue.ciphers.keywords)
        info["defaults_when_blank"] = {
            d.application: d.cipher_string or ":".join(d.suites) for d in catalogue.ciphers.defaults
        }
    if setting.format in ("dhcp_options", "dhcpv6_options"):
        family = "dhcpv4" if setting.format == "dhcp_options" else "dhcpv6"
        info["supported_options"] = {str(k): v for k, v in catalogue.dhcp_options[family].items()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if value in (None, "", [], {}):
            continue
        if key == "rules":
            value = "\n".join(f"{' ' * (width + 2)}{r['id']} ({r['severity']}): {r['rule']}" for r in value).lstrip()
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items())
        print(f"{key.ljust(width)}  {value}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from acs_security.mapping import MappingError

    catalogue = _catalogue()
    if args.setting:
        return _show_one(args, catalogue)
    if args.model:
        try:
            params = catalogue.parameters_for(args.model, args.software_version)
        except MappingError as exc:
            raise UsageError(str(exc), 1) from None
        if args.json:
            print(json.dumps([{"path": p.path, "type": p.xsi_type, "default": "" if p.secret else p.default,
                               "writable": p.writable, "secret": p.secret, "element": p.element} for p in params],
                             indent=2))
            return 0
        for p in params:
            flags = ("" if p.writable else " read-only") + (" secret" if p.secret else "")
            print(f"{p.path}\txsd:{p.xsi_type}\t{p.element or '-'}\tdefault={p.default!r}{flags}")
        return 0
    if args.json:
        print(json.dumps([_setting_dict(s, catalogue) for s in catalogue.settings], indent=2))
        return 0
    for s in catalogue.settings:
        print(f"{(s.element or '(web only)'):40} {s.path:62} {s.path_provenance:10} {s.tr069_type:11} "
              f"default={s.default!r}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from acs_security.mapping import MappingError, ValidationError, expand_cipher_list, validate_values

    catalogue = _catalogue()
    try:
        setting, _ = catalogue.resolve(args.setting)
        problems = validate_values({args.setting: args.value}, model=args.model, software_version=args.software_version,
                                   catalogue=catalogue, include_warnings=True)
    except MappingError as exc:
        raise UsageError(str(exc), 1) from None
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity != "error":
            print(str(p), file=sys.stderr)
    if errors:
        raise UsageError("\n".join(str(e) for e in errors), 1)
    print(f"{args.setting}: OK")
    if setting.format == "cipher_list":
        if args.value == "":
            for d in catalogue.ciphers.defaults:
                print(f"blank: {d.description} use {d.cipher_string or ':'.join(d.suites)}")
            return 0
        try:
            expansion = expand_cipher_list(args.value, catalogue=catalogue)
        except ValidationError as exc:  # pragma: no cover - validate_values refused it already
            raise UsageError(str(exc), 1) from None
        print(f"selects {len(expansion.suites)} TLS 1.2-and-older suite(s) with {expansion.openssl_version}:")
        for name in expansion.suites:
            print(f"  {name}{'  (no encryption or no authentication)' if name in expansion.weak else ''}")
        print("TLS 1.3 suites (not chosen by the cipher list): " + ", ".join(expansion.tls13_suites))
    return 0


def _export(args: argparse.Namespace) -> int:
    from acs_security.mapping.bbf import export_bbf

    if not args.bbf:
        raise UsageError("say which format: --bbf (Broadband Forum data-model document)", 2)
    write_output(export_bbf(_catalogue()), args.output)
    return 0


def _learn(args: argparse.Namespace) -> int:
    from acs_security.mapping.learn import GpnParseError, learn_override, parse_gpn_result
    from acs_security.mapping.overrides import render_override

    catalogue = _catalogue()
    try:
        reported = parse_gpn_result(read_input(args.gpn_result))
    except GpnParseError as exc:
        raise UsageError(f"{args.gpn_result}: {exc}", 1) from None
    result = learn_override(
        reported, catalogue, product_class=args.product_class, software_version=args.software_version,
        source=f"learned by 'acs-security datamodel learn' from {args.gpn_result}",
    )
    if args.cfgxml_only:
        # Not reported over TR-069, but the phone's cfg.xml has it (the operator says so):
        # a push sends it in a cfg.xml Download (docs/files.md). Settings without an element
        # stay absent.
        override = result.override
        moved = frozenset(k for k in override.absent if catalogue.setting(k).element is not None)
        result = dataclasses.replace(result, override=dataclasses.replace(
            override, absent=override.absent - moved, cfgxml_only=override.cfgxml_only | moved))
    unreported = "cfg.xml only where they have an element" if args.cfgxml_only else "absent"
    comments = [
        f"Override learned from the parameter names of {args.gpn_result} ({len(reported)} names).",
        f"{len(result.found_at_catalogue_path)} setting(s) at their catalogue path, "
        f"{len(result.moved)} elsewhere (below),",
        f"{len(result.absent)} not reported ({unreported}), "
        f"{len(result.ambiguous)} ambiguous, "
        f"{len(result.not_checked)} not covered by the input.",
    ]
    for key, candidates in result.ambiguous:
        comments.append(f"AMBIGUOUS {key}: one of {', '.join(candidates)} -- add it to [paths] by hand")
    if result.unmatched:
        comments.append("Vendor names no setting matched (map by hand if one is a setting): "
                        + ", ".join(result.unmatched))
    if result.not_checked:
        comments.append("Not covered (list 'Device.' fully to check them): " + ", ".join(result.not_checked))
    write_output(render_override(result.override, comments).encode("utf-8"), args.output)
    for key, candidates in result.ambiguous:
        print(f"warning: {key} is ambiguous: {', '.join(candidates)}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("datamodel", help="the phone settings catalogue: show, check, export, learn")
    actions = parser.add_subparsers(dest="datamodel_action", metavar="ACTION")
    actions.required = True

    show = actions.add_parser("show", help="list the settings, or show one (element, TR-069 path or web name)")
    show.add_argument("setting", nargs="?", help="e.g. TLS_Cipher_List, SIP_Transport_1_ or a TR-069 path")
    show.add_argument("--model", help="phone product class: list its concrete TR-069 parameters")
    show.add_argument("--software-version", help="phone firmware")
    show.add_argument("--json", action="store_true", help="JSON output")
    show.set_defaults(func=_show)

    check = actions.add_parser("check", help="check one value as the phone would (cipher lists: show the expansion)")
    check.add_argument("setting")
    check.add_argument("value")
    check.add_argument("--model")
    check.add_argument("--software-version")
    check.set_defaults(func=_check)

    export = actions.add_parser("export", help="export the vendor extension")
    export.add_argument("--bbf", action="store_true",
                        help="as a Broadband Forum data-model document (cwmp-datamodel-1-15)")
    export.add_argument("-o", "--output", help="write here instead of standard output")
    export.set_defaults(func=_export)

    learn = actions.add_parser("learn", help="write an override file from a phone's GetParameterNames result")
    learn.add_argument("gpn_result", metavar="GPN_RESULT",
                       help="GetParameterNamesResponse XML, JSON list or text; - for stdin")
    learn.add_argument("--product-class", default="*", help="glob of the product classes it applies to (default *)")
    learn.add_argument("--software-version", default="*", help="glob of the firmware it applies to (default *)")
    learn.add_argument("-o", "--output", help="write the override here (e.g. datamodel/overrides/NAME.toml)")
    learn.add_argument("--cfgxml-only", action="store_true",
                       help="the phone has the settings it does not report in its cfg.xml: list them as "
                            "cfgxml_only (pushed by cfg.xml Download) instead of absent")
    learn.set_defaults(func=_learn)
