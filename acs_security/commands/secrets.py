"""``acs-security secrets``: the key file that encrypts stored passwords.

``rotate`` puts a new key first in the key file (old keys stay, so every process keeps
reading), re-encrypts every stored secret with it (credentials, sealed job policies, pushed
secret parameters, and any password stored in plain text before encryption existed), and
drops the old keys once nothing uses them (``--keep-old`` keeps them: with servers running,
keep them, restart the servers, then ``prune``). ``status`` counts the stored secrets per
key. Neither ever prints a password or key material (keys are shown by id).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from acs_security.commands import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("secrets", help="rotate and inspect the key that encrypts stored passwords",
                       description=__doc__)
    ssub = p.add_subparsers(dest="secrets_command", metavar="ACTION")
    ssub.required = True
    for name, helptext in (("rotate", "new primary key; re-encrypt every stored secret with it"),
                           ("status", "stored secrets per key id, and the key file's keys"),
                           ("prune", "drop keys from the key file that no stored secret uses")):
        c = ssub.add_parser(name, help=helptext)
        c.add_argument("--db", default=os.environ.get("ACS_DB", "sqlite:///var/acs.db"),
                       help="database URL, as for serve --db (env ACS_DB)")
        c.add_argument("--key-file", type=Path, default=None,
                       help="key file, as for serve --secret-key-file (env ACS_SECRET_KEY_FILE; default: "
                            "acs.key next to the SQLite database, var/acs.key for PostgreSQL)")
        c.add_argument("--json", action="store_true", help="print JSON")
        if name == "rotate":
            c.add_argument("--keep-old", action="store_true", help="keep the old keys in the key file")
        c.set_defaults(func=globals()[f"_{name}"])


def _key_path(args: Any) -> Path:
    from acs_security.secrets import default_key_path

    path = args.key_file or (Path(os.environ["ACS_SECRET_KEY_FILE"]) if os.environ.get("ACS_SECRET_KEY_FILE")
                             else default_key_path(args.db))
    if path is None:
        raise UsageError(f"{args.db}: an in-memory database has no key file")
    return path


def _store(args: Any) -> Any:
    from acs_security.store import StoreError, open_store

    try:
        return open_store(args.db, create=False)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _print(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(text)


def _rotate(args: Any) -> int:
    from acs_security.secret_rotation import rotate_secrets
    from acs_security.secrets import KeyFileError

    path = _key_path(args)
    store = _store(args)
    try:
        report = rotate_secrets(store.engine, path, keep_old=args.keep_old)
    except (KeyFileError, ValueError) as exc:
        raise UsageError(str(exc), code=1) from None
    finally:
        store.close()
    counts = ", ".join(f"{table} {n}" for table, n in sorted(report.reencrypted.items())) or "nothing"
    text = (f"new primary key {report.new_key_id} in {path}; re-encrypted: {counts}. "
            + (f"old key(s) {', '.join(report.old_key_ids)} dropped." if report.dropped_old else
               f"old key(s) {', '.join(report.old_key_ids)} kept ({report.remaining} value(s) still use them); "
               "run `acs-security secrets prune` once every server runs with the new key file."))
    _print({"key_file": str(path), **report.to_json()}, args.json, text)
    return 0


def _status(args: Any) -> int:
    from acs_security.secret_rotation import scan_secrets
    from acs_security.secrets import KeyFileError, read_key_file

    path = _key_path(args)
    try:
        ring = read_key_file(path)
    except KeyFileError as exc:
        raise UsageError(str(exc), code=1) from None
    store = _store(args)
    try:
        counts = scan_secrets(store.engine)
    finally:
        store.close()
    used = {key_id for c in counts.values() for key_id in c if key_id != "plaintext"}
    unknown = sorted(used - set(ring.ids))
    plaintext = sum(c.get("plaintext", 0) for c in counts.values())
    data = {"key_file": str(path), "keys": list(ring.ids), "primary": ring.primary_id,
            "stored": {table: dict(c) for table, c in sorted(counts.items())},
            "unknown_keys": unknown, "plaintext": plaintext}
    lines = [f"key file {path}: keys {', '.join(ring.ids)} (primary {ring.primary_id})"]
    for table, c in sorted(counts.items()):
        lines.append(f"  {table}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items())))
    if unknown:
        lines.append(f"  values under keys this file lacks: {', '.join(unknown)}")
    if plaintext:
        lines.append(f"  {plaintext} value(s) in plain text: run `acs-security secrets rotate`")
    _print(data, args.json, "\n".join(lines))
    return 1 if unknown or plaintext else 0


def _prune(args: Any) -> int:
    from acs_security.secret_rotation import scan_secrets
    from acs_security.secrets import KeyFileError, KeyRing, read_key_file, write_key_file

    path = _key_path(args)
    store = _store(args)
    try:
        ring = read_key_file(path)
        used = {key_id for c in scan_secrets(store.engine).values() for key_id in c}
        keep = KeyRing(tuple(k for i, k in enumerate(ring.keys) if i == 0 or ring.ids[i] in used))
        if keep != ring:
            write_key_file(path, keep)
    except KeyFileError as exc:
        raise UsageError(str(exc), code=1) from None
    finally:
        store.close()
    dropped = [i for i in ring.ids if i not in keep.ids]
    _print({"key_file": str(path), "keys": list(keep.ids), "dropped": dropped}, args.json,
           f"key file {path}: dropped {', '.join(dropped) or 'nothing'}; keys {', '.join(keep.ids)}")
    return 0
