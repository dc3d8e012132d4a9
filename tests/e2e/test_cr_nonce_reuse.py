"""Connection requests reuse each phone's digest nonce (RFC 7616 nc), end to end: the real
server pushes twice to simulated phones over loopback; the second job's connection
requests cost one HTTP request per phone instead of two (connreq/digest_cache.py)."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from acs_security.httpauth.result import AuthFailure, AuthResult
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from acs_security.sim.phone import Phone
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"
CR_USER, CR_PASS = "acs-cr", "cr-secret-9f3a"
PHONES = 30


def _completed(job: Any) -> bool:
    return bool(job.state == "completed")


def run_two_pushes(tmp_path: Path, reuse: bool) -> tuple[list[Counter[str]], list[str], dict[str, int]]:
    """Per job: the HTTP requests each phone's listener saw; the jobs' states; the metrics."""

    async def go(reactor: Any) -> tuple[list[Counter[str]], list[str], dict[str, int]]:
        (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
        settings = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
                    "api_listen": "127.0.0.1:0", "cpe_auth": False, "cr_username": CR_USER,
                    "cr_password_file": str(tmp_path / "cr.pw"), "cr_session_wait": 10,
                    "max_connections_per_ip": 0, "stun_listen": "off",
                    "connection_request_nonce_reuse": reuse}
        server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
        server.start()
        await server.start_engine()
        fleet = SimulatedFleet(
            reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=PHONES,
            resolve={"acs.example.net": "127.0.0.1"}, inform_interval=600, boot_ramp_s=1.0, seed=7,
            cr_delay=(0.02, 0.1), retry_scale=0.02, cr_password_mode="shared", cr_username=CR_USER,
            cr_password=CR_PASS, cr_min_interval=0.2)
        seen: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        counted = fleet.auth_result

        def count(phone: Phone, result: AuthResult) -> None:
            # Every HTTP request a reachable phone's listener receives is one digest check.
            seen[phone.serial] += 1
            if not result.ok and result.reason is not AuthFailure.MISSING:
                refused[str(result.reason)] += 1
            counted(phone, result)

        fleet.auth_result = count  # type: ignore[method-assign]
        per_job: list[Counter[str]] = []
        states: list[str] = []
        try:
            await fleet.start()
            assert server.service is not None and server.engine is not None
            await wait_until(reactor, lambda: server.store.count_devices() >= PHONES, timeout=60, what="boot")
            for _ in range(2):
                seen.clear()
                submitted = await server.service.submit_job(
                    {"policy": HARDENING.read_text(), "select": "all", "force_all": True})
                job = server.engine.jobs[submitted["id"]]
                await wait_until(reactor, partial(_completed, job), timeout=60, what="job end")
                per_job.append(Counter(seen))
                states.append(job.state)
            text = server.metrics.render().decode()
            metrics = {line.split("{")[1].split("}")[0]: int(float(line.split()[-1])) for line in text.splitlines()
                       if line.startswith("acs_connection_request_preemptive_digest_total{")}
            metrics["refused_at_phones"] = sum(refused.values())
            return per_job, states, metrics
        finally:
            await fleet.stop()
            await server.stop()

    result: tuple[list[Counter[str]], list[str], dict[str, int]] = run_in_reactor(go, timeout=150)
    return result


def test_second_push_sends_one_http_request_per_phone(tmp_path: Path) -> None:
    per_job, states, metrics = run_two_pushes(tmp_path, reuse=True)
    assert states == ["completed", "completed"]
    first, second = per_job
    assert len(first) == PHONES and set(first.values()) == {2}  # GET, 401, answer
    assert len(second) == PHONES and set(second.values()) == {1}  # Authorization at once
    assert metrics == {'outcome="accepted"': PHONES, 'outcome="refused"': 0, "refused_at_phones": 0}


def test_turned_off_every_push_costs_two_requests_per_phone(tmp_path: Path) -> None:
    per_job, states, metrics = run_two_pushes(tmp_path, reuse=False)
    assert states == ["completed", "completed"]
    assert [set(job.values()) for job in per_job] == [{2}, {2}]
    assert metrics == {"refused_at_phones": 0}
