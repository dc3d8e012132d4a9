"""Fleet pushes end to end: the real server, simulated phones, loopback sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.cli import main as cli_main
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.faults import FaultKind, parse_faults
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"
RESOLVE = {"acs.example.net": "127.0.0.1"}
CR_USER, CR_PASS = "acs-cr", "cr-secret-9f3a"


def server_for(reactor: Any, tmp_path: Path, db: str | None = None, **overrides: Any) -> AcsServer:
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    settings = {"db": db or f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
                "api_listen": "127.0.0.1:0", "cpe_auth": False, "cr_username": CR_USER,
                "cr_password_file": str(tmp_path / "cr.pw"), "cr_session_wait": 10,
                # Hundreds of simulated phones share 127.0.0.1: no per-address connection cap.
                "max_connections_per_ip": 0}
    settings.update(overrides)
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
    server.start()
    return server


def fleet_for(reactor: Any, server: AcsServer, phones: int, **kwargs: Any) -> SimulatedFleet:
    url = f"http://acs.example.net:{server.address('cwmp').port}/cwmp"
    options: dict[str, Any] = dict(phones=phones, resolve=RESOLVE, inform_interval=600, boot_ramp_s=1.0,
                                   seed=5, cr_delay=(0.02, 0.1), retry_scale=0.02,
                                   cr_password_mode="shared", cr_username=CR_USER, cr_password=CR_PASS,
                                   cr_min_interval=0.2)
    options.update(kwargs)
    return SimulatedFleet(reactor, url, **options)


async def booted(reactor: Any, server: AcsServer, fleet: SimulatedFleet, n: int) -> None:
    await fleet.start()
    await wait_until(reactor, lambda: sum(1 for p in fleet.phones if p.sessions_completed) >= n,
                     timeout=60, what="boot informs")
    await wait_until(reactor, lambda: server.store.count_devices() >= n, timeout=10, what="registry")


async def cli(reactor: Any, *argv: str) -> int:
    return await deferToThreadPool(reactor, reactor.getThreadPool(), cli_main, list(argv))


def job_key(server: AcsServer, job_id: int) -> str:
    return server.store.get_job(job_id).parameter_key


def test_push_of_the_hardening_policy_to_500_phones_through_the_cli(tmp_path, capsys):
    async def go(reactor):
        server = server_for(reactor, tmp_path)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 500)
        try:
            await booted(reactor, server, fleet, 500)
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e", "operator")
            rc = await cli(reactor, "push", str(HARDENING), "--select", "all", "--wait", "--json",
                           "--server", api, "--token", token)
            out = capsys.readouterr().out
            # --json without a terminal: JSON lines, progress then the final summary.
            lines = [json.loads(line) for line in out.splitlines()]
            assert [e["event"] for e in lines[:-1]] == ["progress"] * (len(lines) - 1)
            assert lines[-1]["event"] == "final"
            summary = lines[-1]
            key = job_key(server, summary["id"])
            received = [p.spv_by_key[key] for p in fleet.phones]
            locked = [p.serial for p in fleet.phones if p.locked_out]
            rc_report = await cli(reactor, "jobs", "report", str(summary["id"]), "--format", "csv",
                                  "--output", str(tmp_path / "report.csv"), "--server", api, "--token", token)
            return rc, summary, received, locked, rc_report, fleet
        finally:
            await fleet.stop()
            await server.stop()

    rc, summary, received, locked, rc_report, fleet = run_in_reactor(go, timeout=150)
    assert summary["state"] == "completed", summary
    assert summary["applied"] + summary["applied_pending_reboot"] == 500, summary["counts"]
    assert rc == 0 and rc_report == 0
    assert received == [1] * 500  # every phone got the job's SetParameterValues exactly once
    assert locked == []  # the policy keeps acs.example.net in the restricted domains
    rows = (tmp_path / "report.csv").read_text().splitlines()
    assert rows[0].startswith("serial_number,product_class,oui,device_id,state") and len(rows) == 501
    assert {r.split(",")[0] for r in rows[1:]} == {p.serial for p in fleet.phones}


def test_busy_phones_get_the_change_at_their_periodic_inform_and_rejecting_ones_are_named(tmp_path):
    async def go(reactor):
        server = server_for(reactor, tmp_path)
        server.engine.limits.max_cr_attempts = 2
        await server.start_engine()
        fleet = fleet_for(reactor, server, 40, faults=parse_faults("cr503=0.2,reject=0.1"),
                          inform_interval=8, jitter=0.0)
        try:
            await booted(reactor, server, fleet, 40)
            result = await server.service.submit_job({
                "policy": HARDENING.read_text(), "select": "all", "max_fault_rate": 1.0})
            job = server.engine.jobs[result["id"]]
            await wait_until(reactor, lambda: job.state == "completed", timeout=60, what="job end")
            await server.engine.flush()
            report = await server.service.job_report(job.id)
            return job, report, fleet
        finally:
            await fleet.stop()
            await server.stop()

    job, report, fleet = run_in_reactor(go, timeout=120)
    faulted = [d for d in report["devices"] if d["state"] == "faulted"]
    applied = [d for d in report["devices"] if d["state"].startswith("applied")]
    rejecting = {p.serial for p in fleet.phones if p.faults & FaultKind.REJECT}
    busy = {p.serial for p in fleet.phones if p.faults & FaultKind.CR503}
    assert busy and rejecting
    assert len(faulted) == len(rejecting) and len(applied) == 40 - len(rejecting)
    for d in faulted:
        assert d["fault_code"] == 9003
        assert d["faults"] and all(f["code"] == 9007 for f in d["faults"])
        assert all(f["name"].startswith("Device.X_CISCO_SecuritySettings.") for f in d["faults"])
    # The busy phones were applied by their periodic Inform after the connection requests failed.
    busy_rows = [d for d in report["devices"] if any(d["device_id"].endswith(s) for s in busy - rejecting)]
    assert busy_rows and all(d["state"].startswith("applied") and d["attempts"] >= 2 for d in busy_rows)


# -- the server killed mid-job and restarted ----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(tmp_path: Path, db: str, cwmp: int, api: int, *extra: str) -> subprocess.Popen[bytes]:
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    # The child keeps its own copy of the log's descriptor; the parent's can close at once.
    with open(tmp_path / f"serve-{time.monotonic_ns()}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "acs_security.cli", "serve", "--db", db, "--no-cpe-auth",
             "--cwmp-listen", f"127.0.0.1:{cwmp}", "--api-listen", f"127.0.0.1:{api}",
             "--cr-username", CR_USER, "--cr-password-file", str(tmp_path / "cr.pw"),
             "--cr-session-wait", "5", *extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text() if False else "serve exited")
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not come up")


def make_token(db: str) -> str:
    """An operator token in the database the subprocess server opens (API auth is always on)."""
    import secrets as _secrets
    from datetime import UTC, datetime

    from acs_security.server.auth import hash_token
    from acs_security.store import open_store
    from acs_security.store.tokens import tokens_of

    token = _secrets.token_urlsafe(32)
    store = open_store(db)
    try:
        tokens_of(store).create_token("e2e", "operator", hash_token(token), datetime.now(UTC))
    finally:
        store.close()
    return token


def api_json(api: int, method: str, path: str, body: Any = None, token: str = "") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{api}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def kill_and_resume(tmp_path: Path, db: str) -> None:
    cwmp, api = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []

    async def go(reactor):
        pool = reactor.getThreadPool()

        def thread(fn, *a):
            return deferToThreadPool(reactor, pool, fn, *a)

        token = await thread(make_token, db)
        procs.append(await thread(start_serve, tmp_path, db, cwmp, api))
        fleet = SimulatedFleet(
            reactor, f"http://acs.example.net:{cwmp}/cwmp", phones=200, resolve=RESOLVE,
            inform_interval=600, boot_ramp_s=1.0, seed=9, cr_delay=(0.02, 0.1), retry_scale=0.02,
            cr_password_mode="shared", cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones),
                             timeout=60, what="boot informs")
            job = await thread(api_json, api, "POST", "/api/v1/jobs", {
                "policy": HARDENING.read_text(), "select": "all", "max_in_progress": 10}, token)
            key = job["parameter_key"]
            await wait_until(reactor, lambda: sum(p.spv_by_key[key] for p in fleet.phones) >= 40,
                             timeout=60, what="a part of the fleet applied")
            procs[0].send_signal(signal.SIGKILL)
            await thread(procs[0].wait)
            before = sum(p.spv_by_key[key] for p in fleet.phones)
            assert before < 200, "the job finished before the kill; the test needs a slower push"
            procs.append(await thread(start_serve, tmp_path, db, cwmp, api))

            async def summary() -> Any:
                return await thread(api_json, api, "GET", f"/api/v1/jobs/{job['id']}", None, token)

            state: dict[str, Any] = {}
            deadline = reactor.seconds() + 90
            while reactor.seconds() < deadline:
                state = await summary()
                if state["state"] == "completed":
                    break
                await sleep(reactor, 0.5)
            return key, state, [p.spv_by_key[key] for p in fleet.phones]
        finally:
            await fleet.stop()
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    await thread(proc.wait)

    key, state, received = run_in_reactor(go, timeout=240)
    assert state["state"] == "completed", state
    assert state["applied"] + state["applied_pending_reboot"] == 200, state["counts"]
    assert max(received) == 1 and sum(received) == 200  # nothing applied twice


def test_server_killed_mid_job_resumes_and_applies_nothing_twice_sqlite(tmp_path):
    kill_and_resume(tmp_path, f"sqlite:///{tmp_path}/acs.db")


def test_server_killed_mid_job_resumes_and_applies_nothing_twice_postgresql(tmp_path, postgres_url):
    import psycopg

    schema = f"push_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        kill_and_resume(tmp_path, f"{postgres_url}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_canary_over_the_fault_threshold_halts_then_resume_finishes(tmp_path):
    async def go(reactor):
        server = server_for(reactor, tmp_path)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 60, faults=parse_faults("reject=0.25"), seed=3)
        try:
            await booted(reactor, server, fleet, 60)
            # The canary is the first ten devices by id: make sure it holds a rejecting phone.
            canary = sorted(fleet.phones, key=lambda p: make_device_id("00000C", p.product_class, p.serial))[:10]
            assert any(p.faults & FaultKind.REJECT for p in canary)
            result = await server.service.submit_job({
                "policy": HARDENING.read_text(), "select": "all", "canary": "10", "wave": 25,
                "max_fault_rate": 0.05})
            job = server.engine.jobs[result["id"]]
            await wait_until(reactor, lambda: job.state == "halted", timeout=30, what="the brake")
            await sleep(reactor, 0.5)
            canary_serials = {p.serial for p in canary}
            sent_while_halted = {p.serial for p in fleet.phones if p.spv_by_key[job.parameter_key]}
            assert sent_while_halted <= canary_serials, "a phone beyond the canary got the change"
            halted = await server.service.job_summary(job.id)
            resumed = await server.service.resume_job(job.id)
            # Later waves may halt again (a quarter of the fleet rejects): resume each time.
            while job.state != "completed":
                await wait_until(reactor, lambda: job.state in ("halted", "completed"), timeout=30,
                                 what="the next wave")
                if job.state == "halted":
                    await server.service.resume_job(job.id)
            received = [p.spv_by_key[job.parameter_key] for p in fleet.phones]
            return halted, resumed, sent_while_halted, received
        finally:
            await fleet.stop()
            await server.stop()

    halted, resumed, sent_while_halted, received = run_in_reactor(go, timeout=120)
    assert halted["state"] == "halted" and halted["current_wave"] == 0
    assert "wave 0" in halted["reason"]
    assert sent_while_halted  # the canary got the change; the brake stopped the rest
    assert resumed["state"] == "running"
    assert received == [1] * 60


def test_cancel_stops_the_push_cleanly(tmp_path):
    async def go(reactor):
        server = server_for(reactor, tmp_path)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 120)
        try:
            await booted(reactor, server, fleet, 120)
            result = await server.service.submit_job({
                "policy": HARDENING.read_text(), "select": "all", "max_in_progress": 3})
            job = server.engine.jobs[result["id"]]
            key = job.parameter_key
            await wait_until(reactor, lambda: sum(p.spv_by_key[key] for p in fleet.phones) >= 10,
                             timeout=30, what="some phones applied")
            cancelled = await server.service.cancel_job(job.id)
            sent_at_cancel = sum(p.spv_by_key[key] for p in fleet.phones)
            await sleep(reactor, 2.0)
            sent_later = sum(p.spv_by_key[key] for p in fleet.phones)
            stored = server.store.get_job(job.id)
            counts = server.store.task_counts(job.id)
            return cancelled, sent_at_cancel, sent_later, stored, counts
        finally:
            await fleet.stop()
            await server.stop()

    cancelled, sent_at_cancel, sent_later, stored, counts = run_in_reactor(go, timeout=90)
    assert cancelled["state"] == "cancelled" and cancelled["cancelled"] > 50
    assert stored.state == "cancelled" and stored.finished_at is not None
    # Sessions already in progress may finish; nothing new starts.
    assert sent_later - sent_at_cancel <= 3
    assert counts.get("cancelled") == cancelled["cancelled"]
    assert sum(counts.values()) == 120
