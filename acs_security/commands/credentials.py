"""``acs-security credentials``: CPE credentials the ACS checks when phones open sessions.

A credential's key is a device id (``OUI-ProductClass-Serial``), a serial number, or
``*`` for the one shared credential; lookups try them in that order. Passwords are read
from a file or standard input, never from the command line (where ``ps`` and shell
history would show them), and are never printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from acs_security.commands import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("credentials", help="manage the credentials phones authenticate with")
    csub = p.add_subparsers(dest="credentials_command", metavar="ACTION")
    csub.required = True
    for name, helptext in (("set", "add or replace a credential"),
                           ("delete", "delete a credential"),
                           ("list", "list credentials (never the passwords)")):
        c = csub.add_parser(name, help=helptext)
        c.add_argument("--db", required=True, help="database URL, as for serve --db")
        c.add_argument("--secret-key-file", type=Path,
                       help="key file that encrypts passwords at rest (as for serve; default beside the database)")
        if name != "list":
            c.add_argument("key", help="device id, serial number, or * for the shared credential")
        if name == "set":
            c.add_argument("--username", required=True)
            src = c.add_mutually_exclusive_group(required=True)
            src.add_argument("--password-file", type=Path)
            src.add_argument("--password-stdin", action="store_true")
        if name == "list":
            c.add_argument("--json", action="store_true")
        c.set_defaults(func=globals()[f"_{name}"])


def _open(url: str, key_file: Path | None) -> Any:
    # The same key file as the server, so that stored passwords are encrypted at rest.
    from acs_security.secrets import KeyFileError, open_codec
    from acs_security.store import StoreError, open_store

    try:
        codec, _path, _created = open_codec(key_file, url)
        return open_store(url, secret_codec=codec)
    except (StoreError, KeyFileError) as exc:
        raise UsageError(str(exc)) from None


def _set(args: Any) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = args.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"--password-file {args.password_file}: {exc.strerror}") from None
    if not password:
        raise UsageError("the password is empty")
    if not args.username or len(args.username) > 256:
        raise UsageError("--username must be 1-256 characters")
    store = _open(args.db, args.secret_key_file)
    try:
        store.put_cpe_credential(args.key, args.username, password)
    finally:
        store.close()
    print(f"credential {args.key!r} set for user {args.username!r}")
    return 0


def _delete(args: Any) -> int:
    store = _open(args.db, args.secret_key_file)
    try:
        found = store.delete_cpe_credential(args.key)
    finally:
        store.close()
    if not found:
        raise UsageError(f"no credential {args.key!r}", code=1)
    print(f"credential {args.key!r} deleted")
    return 0


def _list(args: Any) -> int:
    store = _open(args.db, args.secret_key_file)
    try:
        items = store.list_cpe_credentials()
    finally:
        store.close()
    rows = [{"key": c.key, "username": c.username, "created_at": c.created_at.isoformat()}
            for c in items]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = Table(title=f"{len(rows)} credentials")
    for col in ("key", "username", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["key"], r["username"], r["created_at"])
    Console().print(table)
    return 0
