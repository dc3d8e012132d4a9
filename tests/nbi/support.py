"""Shared helpers of the northbound tests: a real server on 127.0.0.1 with tokens."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from acs_security.server.app import AcsServer
from acs_security.server.config import load_config

__all__ = ["start_server", "http", "RESOLVE", "CR_USER", "CR_PASS"]

RESOLVE = {"acs.example.net": "127.0.0.1"}
CR_USER, CR_PASS = "acs-cr", "cr-secret-nbi-77"


def start_server(reactor: Any, tmp_path: Path, **settings: Any) -> AcsServer:
    """A server on loopback ports the OS picks; ``settings`` override configuration keys."""
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    config = load_config(environ={}, overrides={
        "db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
        "cpe_auth": False, "cr_username": CR_USER, "cr_password_file": str(tmp_path / "cr.pw"),
        "cr_session_wait": 10, **settings})
    server = AcsServer(config=config, reactor=reactor)
    server.start()
    return server


def http(url: str, *, token: str | None = None, method: str = "GET", body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A blocking request (run it in a thread): (status, headers, body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
