"""``acs-security cfgxml``: check cfg.xml files and translate them to and from TR-069.

    acs-security cfgxml to-tr069 FILE [--model M] [--software-version V] [--json]
    acs-security cfgxml from-tr069 FILE [--model M] [-o OUT]   (FILE: what to-tr069 --json wrote)
    acs-security cfgxml check FILE [--model M]

Errors go to stderr with a non-zero exit (1: the content is refused, 2: usage or file
problem) and nothing is written then. Secrets are masked in tables unless
``--show-secrets``; the JSON carries them, because from-tr069 needs them back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError

__all__ = ["register", "read_input", "write_output", "JSON_FORMAT"]

JSON_FORMAT = "acs-security/tr069-parameters"
_MASK = "********"


def read_input(name: str) -> bytes:
    """The bytes of FILE, or of standard input for "-". Raises UsageError."""
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}", 2) from None


def write_output(data: bytes, name: str | None) -> None:
    """Write to standard output, or atomically to a file (a temporary file renamed into
    place, so a failure never leaves a half-written file). Raises UsageError."""
    if name is None or name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target = Path(name)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".",
                                   prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {name}: {exc.strerror or exc}", 2) from None


def _mapping_error(exc: Exception) -> UsageError:
    return UsageError(str(exc), 1)


def _parse(args: argparse.Namespace) -> Any:
    from acs_security.mapping import CfgXmlError, MappingError, load_catalogue, parse_cfgxml

    data = read_input(args.file)
    try:
        catalogue = load_catalogue()
        cfg = parse_cfgxml(data, source=args.file, catalogue=catalogue)
    except CfgXmlError as exc:
        raise UsageError(str(exc), 1) from None
    except MappingError as exc:
        raise _mapping_error(exc) from None
    for warning in cfg.warnings:
        print(f"warning: {args.file}: {warning}", file=sys.stderr)
    return catalogue, cfg


def _to_tr069(args: argparse.Namespace) -> int:
    from acs_security.mapping import MappingError, cfgxml_to_tr069

    catalogue, cfg = _parse(args)
    try:
        params = cfgxml_to_tr069(cfg, model=args.model, software_version=args.software_version, catalogue=catalogue)
        model = catalogue.model(args.model).product_class if args.model else None
    except MappingError as exc:
        raise _mapping_error(exc) from None
    if args.json:
        doc = {
            "format": JSON_FORMAT,
            "version": 1,
            "model": model,
            "software_version": args.software_version,
            "source": args.file,
            "parameters": [{"path": p.path, "value": p.value, "type": p.xsi_type} for p in params],
            "ua": cfg.ua(),
            "unchanged": [k for k, v in cfg.values.items() if v.value is None],
        }
        write_output((json.dumps(doc, indent=2) + "\n").encode("utf-8"), args.output)
        return 0
    secret_paths = {p.path for p in catalogue.parameters_for(model, args.software_version) if p.secret} if model else {
        s.path for s in catalogue.settings if s.secret
    }
    lines = []
    for p in params:
        shown = _MASK if p.path in secret_paths and p.value and not args.show_secrets else p.value
        lines.append(f"{p.path}\txsd:{p.xsi_type}\t{shown}")
    write_output(("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"), args.output)
    return 0


def _from_tr069(args: argparse.Namespace) -> int:
    from acs_security.mapping import MappingError, load_catalogue, render_cfgxml, tr069_to_cfgxml

    raw = read_input(args.file)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{args.file}: not the JSON that 'cfgxml to-tr069 --json' writes: {exc}", 1) from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT or not isinstance(doc.get("parameters"), list):
        raise UsageError(f"{args.file}: not the JSON that 'cfgxml to-tr069 --json' writes (format {JSON_FORMAT})", 1)
    triples = []
    for i, item in enumerate(doc["parameters"]):
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("value"), str)):
            raise UsageError(f"{args.file}: parameters[{i}] needs string 'path' and 'value'", 1)
        xsi = item.get("type")
        triples.append((item["path"], item["value"], xsi if isinstance(xsi, str) else None))
    model = args.model or doc.get("model")
    version = args.software_version or doc.get("software_version")
    try:
        catalogue = load_catalogue()
        values: dict[str, str | None] = dict(
            tr069_to_cfgxml(triples, model=model, software_version=version, catalogue=catalogue))
        for element in doc.get("unchanged", []):
            values.setdefault(str(element), None)
        ua = {str(k): str(v) for k, v in (doc.get("ua") or {}).items()}
        data = render_cfgxml(values, ua=ua, catalogue=catalogue)
    except MappingError as exc:
        raise _mapping_error(exc) from None
    write_output(data, args.output)
    return 0


def _check(args: argparse.Namespace) -> int:
    from acs_security.mapping import MappingError, validate_values

    catalogue, cfg = _parse(args)
    try:
        problems = validate_values(
            cfg.settable(), model=args.model, software_version=args.software_version, catalogue=catalogue,
            include_warnings=True,
        )
    except MappingError as exc:
        raise _mapping_error(exc) from None
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity != "error":
            print(f"{args.file}: {p}", file=sys.stderr)
    if errors:
        raise UsageError(f"{args.file}: {len(errors)} value(s) the phone would refuse:\n  "
                         + "\n  ".join(str(e) for e in errors), 1)
    print(f"{args.file}: {len(cfg.values)} setting(s) OK, {len(cfg.unknown)} unknown element(s) ignored")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cfgxml", help="check cfg.xml files and translate them to and from TR-069")
    actions = parser.add_subparsers(dest="cfgxml_action", metavar="ACTION")
    actions.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="phone product class, e.g. CP-8841-3PCC (default: any model)")
        p.add_argument("--software-version", help="phone firmware, e.g. 12.0(1) (default: every setting)")

    to = actions.add_parser("to-tr069", help="cfg.xml -> TR-069 parameter list")
    to.add_argument("file", help="cfg.xml file, or - for standard input")
    common(to)
    to.add_argument("--json", action="store_true", help="write JSON that 'from-tr069' reads back")
    to.add_argument("--show-secrets", action="store_true", help="show passwords in the table")
    to.add_argument("-o", "--output", help="write here instead of standard output")
    to.set_defaults(func=_to_tr069)

    back = actions.add_parser("from-tr069", help="TR-069 parameter list (JSON of to-tr069 --json) -> cfg.xml")
    back.add_argument("file", help="JSON file, or - for standard input")
    common(back)
    back.add_argument("-o", "--output", help="write the cfg.xml here instead of standard output")
    back.set_defaults(func=_from_tr069)

    check = actions.add_parser("check", help="parse a cfg.xml and check every value and rule")
    check.add_argument("file", help="cfg.xml file, or - for standard input")
    common(check)
    check.set_defaults(func=_check)
