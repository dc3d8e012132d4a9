"""A small synchronous client of the management API for the CLI commands.

The CLI runs one request at a time and exits, so the standard library's urllib serves;
the server side is Twisted.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from acs_security.commands import UsageError

__all__ = ["ApiClient", "DEFAULT_SERVER", "DEFAULT_TOKEN_FILE", "add_server_argument", "resolve_token",
           "ServerUrl"]

DEFAULT_SERVER = "http://127.0.0.1:7557"
#: Where the CLI looks for a token when neither --token nor ACS_TOKEN gives one.
DEFAULT_TOKEN_FILE = "~/.config/acs-security/token"


class ServerUrl(str):
    """The --server value, carrying --token/--token-file along, so that every command that
    builds ``ApiClient(args.server)`` sends the token without knowing about it."""

    token: str | None = None
    token_file: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"ServerUrl({str(self)!r})"


class _ServerAction(argparse.Action):
    """Stores --server, --token and --token-file together as a ServerUrl in ``dest``."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, "server", None)
        url = ServerUrl(values if self.dest == "server" else (current or DEFAULT_SERVER))
        url.token = getattr(current, "token", None)
        url.token_file = getattr(current, "token_file", None)
        if self.dest in ("token", "token_file"):
            setattr(url, self.dest, values)
        namespace.server = url
        if self.dest != "server":
            setattr(namespace, self.dest, values)


def add_server_argument(parser: Any) -> None:
    parser.add_argument(
        "--server", default=ServerUrl(os.environ.get("ACS_SERVER", DEFAULT_SERVER)), action=_ServerAction,
        help=f"management API URL (env ACS_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--token", default=None, action=_ServerAction,
        help="API token (default: env ACS_TOKEN, else the file of --token-file); prefer the env or a "
             "file: a command line is visible to other users in ps",
    )
    parser.add_argument(
        "--token-file", default=None, action=_ServerAction,
        help=f"file holding the API token (env ACS_TOKEN_FILE, default {DEFAULT_TOKEN_FILE})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def resolve_token(token: str | None, token_file: str | None,
                  environ: Any = None) -> str | None:
    """The token to send: --token, else ACS_TOKEN, else the token file (--token-file,
    ACS_TOKEN_FILE, or the default file when it exists). Raises UsageError for a named
    file that cannot be read or is empty."""
    env = os.environ if environ is None else environ
    if token:
        return token.strip()
    if env.get("ACS_TOKEN"):
        return str(env["ACS_TOKEN"]).strip()
    named = token_file or env.get("ACS_TOKEN_FILE")
    path = os.path.expanduser(named or DEFAULT_TOKEN_FILE)
    if not named and not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.readline().strip()
    except OSError as exc:
        raise UsageError(f"token file {path}: {exc.strerror}") from None
    if not text:
        raise UsageError(f"token file {path} is empty")
    return text


class ApiClient:
    def __init__(self, server: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        """``token``: the bearer token; None takes it from ``server`` (a ServerUrl from
        --token/--token-file), else ACS_TOKEN, else the token file. Raises UsageError."""
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--server {server!r} is not an http(s) URL")
        self.base = server.rstrip("/")
        self.timeout = timeout
        if token is None:
            token = resolve_token(getattr(server, "token", None), getattr(server, "token_file", None))
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"ApiClient({self.base!r}, token={'set' if self._token else 'none'})"

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                body: Any = None, raw: bool = False) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                problem = json.loads(detail)
                detail = problem.get("detail") or problem.get("title") or detail
                if problem.get("findings"):
                    # Every problem of a refused policy on a line of its own (guardrails, data model).
                    detail = f"{problem.get('title')}:\n" + "\n".join(
                        f"  {f.get('severity')} {f.get('rule')}: "
                        + (f"{', '.join(f.get('settings') or [])}: " if f.get("settings") else "")
                        + str(f.get("reason")) for f in problem["findings"])
                    detail += "\nNothing was sent."
                    if any(f.get("forceable") and f.get("severity") == "error" for f in problem["findings"]):
                        detail += " A forceable rule may be overridden: push --force RULE."
            except (ValueError, AttributeError):
                pass
            hint = ""
            if exc.code == 401:
                hint = " (give a token: --token, env ACS_TOKEN or a token file; see acs-security tokens create)"
            raise UsageError(f"{method} {path}: HTTP {exc.code}: {detail.strip()}{hint}", code=1) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(f"cannot reach {self.base}: {reason}", code=1) from None
        if raw:
            return payload
        try:
            return json.loads(payload)
        except ValueError:
            raise UsageError(f"{method} {path}: the server did not answer JSON", code=1) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)
