"""``acs-security tokens``: bearer tokens of the northbound API (REST, SOAP, /metrics).

Works on the database directly, like ``credentials`` (no server needed, and the first
admin token cannot come from an API that needs a token). ``create`` prints the token
once; only its SHA-256 is stored. Roles: viewer (reads), operator (pushes), admin
(manages tokens and credentials).
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from acs_security.commands import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("tokens", help="manage the API tokens of the REST and SOAP interfaces")
    tsub = p.add_subparsers(dest="tokens_command", metavar="ACTION")
    tsub.required = True
    for name, helptext in (("create", "create a token and print it (shown once)"),
                           ("list", "list tokens (never the tokens themselves)"),
                           ("revoke", "revoke a token")):
        c = tsub.add_parser(name, help=helptext)
        c.add_argument("--db", required=True, help="database URL, as for serve --db")
        if name == "create":
            c.add_argument("--name", required=True, help="a unique name (who or what uses it)")
            c.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
        if name == "revoke":
            c.add_argument("name")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=globals()[f"_{name}"])


def _open(url: str) -> Any:
    from acs_security.store import StoreError, open_store

    try:
        return open_store(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _create(args: Any) -> int:
    from acs_security.server.auth import hash_token, new_token
    from acs_security.store.errors import InvalidArgument
    from acs_security.store.tokens import tokens_of

    token = new_token(secrets.token_bytes(32))
    store = _open(args.db)
    try:
        record = tokens_of(store).create_token(args.name, args.role, hash_token(token), datetime.now(UTC))
    except InvalidArgument as exc:
        raise UsageError(str(exc), code=1) from None
    finally:
        store.close()
    if args.json:
        json.dump({**record.to_json(), "token": token}, sys.stdout, indent=2)
        print()
    else:
        print(token)
        print(f"token {record.name!r} ({record.role}) created; it is shown this once", file=sys.stderr)
    return 0


def _list(args: Any) -> int:
    from acs_security.store.tokens import tokens_of

    store = _open(args.db)
    try:
        rows = [r.to_json() for r in tokens_of(store).list_tokens()]
    finally:
        store.close()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = Table(title=f"{len(rows)} tokens")
    for col in ("name", "role", "created", "last used", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["role"], r["created_at"], r["last_used"] or "", r["revoked_at"] or "")
    Console().print(table)
    return 0


def _revoke(args: Any) -> int:
    from acs_security.store.errors import InvalidArgument
    from acs_security.store.tokens import tokens_of

    store = _open(args.db)
    try:
        found = tokens_of(store).revoke_token(args.name, datetime.now(UTC))
    except InvalidArgument as exc:
        raise UsageError(str(exc), code=1) from None
    finally:
        store.close()
    if not found:
        raise UsageError(f"no active token {args.name!r}", code=1)
    print(f"token {args.name!r} revoked (servers notice within token_cache_seconds, 5 s by default)")
    return 0
