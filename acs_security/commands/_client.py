"""A small synchronous client of the management API for the CLI commands.

The CLI runs one request at a time and exits, so the standard library's urllib serves;
the server side is Twisted.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from acs_security.commands import UsageError

__all__ = ["ApiClient", "DEFAULT_SERVER", "add_server_argument"]

DEFAULT_SERVER = "http://127.0.0.1:7557"


def add_server_argument(parser: Any) -> None:
    parser.add_argument(
        "--server", default=os.environ.get("ACS_SERVER", DEFAULT_SERVER),
        help=f"management API URL (env ACS_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


class ApiClient:
    def __init__(self, server: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--server {server!r} is not an http(s) URL")
        self.base = server.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                body: Any = None, raw: bool = False) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                problem = json.loads(detail)
                detail = problem.get("detail") or problem.get("title") or detail
            except ValueError:
                pass
            raise UsageError(f"{method} {path}: HTTP {exc.code}: {detail.strip()}", code=1) from None
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
