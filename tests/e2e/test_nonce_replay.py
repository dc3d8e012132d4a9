"""A captured digest Authorization header replayed, end to end (issue 13 item 8): two ACS
nodes (AcsServer instances) on one PostgreSQL, and one node on SQLite across a restart.
Real HTTP on loopback; the nonce-count record every node sees is in the store."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.httpauth.digest import digest_authorization
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from tests.server.harness import inform
from tests.support import run_in_reactor

pytestmark = pytest.mark.e2e
SERIAL, USER, PASSWORD = "FCH2231N0N1", "phone1", "n0nce-pass"


def node(reactor: Any, tmp_path: Path, db: str, name: str) -> AcsServer:
    # Every node reads the same key file, so a nonce one node issued verifies on another.
    settings = {"db": db, "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0", "cpe_auth": True,
                "secret_key_file": str(tmp_path / "secret.key"), "node_id": name}
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
    server.start()
    return server


def post(port: int, body: bytes, authorization: str | None = None,
         cookie: str | None = None) -> tuple[int, dict[str, Any], bytes]:
    headers = {"Content-Type": "text/xml"}
    if authorization:
        headers["Authorization"] = authorization
    if cookie:
        headers["Cookie"] = cookie
    req = urllib.request.Request(f"http://127.0.0.1:{port}/cwmp", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {"cookie": resp.headers.get("Set-Cookie", "").split(";")[0]}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {"challenges": exc.headers.get_all("WWW-Authenticate") or []}, exc.read()


def session(port: int, authorization: str) -> int:
    """One session with ``authorization`` on its Inform: the Inform's status (and, when
    accepted, the session is ended with the empty POST)."""
    code, headers, _ = post(port, inform(SERIAL), authorization)
    if code == 200:
        assert post(port, b"", cookie=headers["cookie"])[0] == 204
    return code


def answer(port: int, nc: int, cnonce: str) -> tuple[str, Any]:
    code, headers, _ = post(port, inform(SERIAL))
    assert code == 401
    challenge = next(v for v in headers["challenges"] if "SHA-256" in v)
    return digest_authorization(challenge, "POST", "/cwmp", USER, PASSWORD, cnonce=cnonce, nc=nc), challenge


def test_a_header_captured_on_one_node_is_refused_on_the_other(tmp_path, pg_db):
    async def go(reactor):
        def thread(fn: Any, *args: Any) -> Any:
            return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

        a = node(reactor, tmp_path, pg_db, "nonce-a")
        b = node(reactor, tmp_path, pg_db, "nonce-b")
        try:
            a.store.put_cpe_credential(SERIAL, USER, PASSWORD)
            pa, pb = a.address("cwmp").port, b.address("cwmp").port
            captured, challenge = await thread(answer, pa, 1, "c1")
            first = await thread(session, pa, captured)
            on_b = await thread(session, pb, captured)
            on_a = await thread(session, pa, captured)
            # The phone counting on with the same nonce is welcome on either node.
            nc2 = digest_authorization(challenge, "POST", "/cwmp", USER, PASSWORD, cnonce="c2", nc=2)
            next_on_b = await thread(session, pb, nc2)
            nc2_on_a = await thread(session, pa, nc2)
            records = await a.deferred_store.call("digest_nonce_count")
            return first, on_b, on_a, next_on_b, nc2_on_a, records
        finally:
            await a.stop()
            await b.stop()

    first, on_b, on_a, next_on_b, nc2_on_a, records = run_in_reactor(go, timeout=120)
    assert first == 200
    assert on_b == 401  # replayed on the other node: refused there too
    assert on_a == 401
    assert next_on_b == 200 and nc2_on_a == 401
    assert records == 1


def test_on_sqlite_one_node_refuses_a_replay_even_after_a_restart(tmp_path):
    db = f"sqlite:///{tmp_path}/acs.db"

    async def go(reactor):
        def thread(fn: Any, *args: Any) -> Any:
            return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

        server = node(reactor, tmp_path, db, "solo")
        try:
            server.store.put_cpe_credential(SERIAL, USER, PASSWORD)
            port = server.address("cwmp").port
            captured, _ = await thread(answer, port, 1, "c1")
            first = await thread(session, port, captured)
            again = await thread(session, port, captured)
            fresh, _ = await thread(answer, port, 1, "c3")
            other = await thread(session, port, fresh)
        finally:
            await server.stop()
        # The process's own record is gone with it; the store's is not.
        server = node(reactor, tmp_path, db, "solo")
        try:
            after_restart = await thread(session, server.address("cwmp").port, captured)
        finally:
            await server.stop()
        return first, again, other, after_restart

    first, again, other, after_restart = run_in_reactor(go, timeout=120)
    assert (first, again, other) == (200, 401, 200)  # nothing regresses on one node
    assert after_restart == 401
