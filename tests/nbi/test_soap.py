"""The SOAP face with zeep, a real SOAP client reading the WSDL: submit, poll, list devices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.sim.fleet import SimulatedFleet
from tests.nbi.support import CR_PASS, CR_USER, RESOLVE, http, start_server
from tests.support import run_in_reactor, wait_until

zeep = pytest.importorskip("zeep")  # the test extra installs it (and spyne via the soap extra)
pytestmark = pytest.mark.e2e
HARDENING = Path(__file__).resolve().parents[2] / "datamodel" / "examples" / "hardening.toml"


def soap_push(base: str, name: str, token: str, viewer: str) -> dict[str, Any]:
    import time

    import requests
    from requests.auth import HTTPBasicAuth
    from zeep.exceptions import Fault
    from zeep.transports import Transport

    session = requests.Session()
    session.auth = HTTPBasicAuth(name, token)  # token name + token (docs/northbound.md)
    client = zeep.Client(f"{base}/soap?wsdl", transport=Transport(session=session))
    client.service._binding_options["address"] = f"{base}/soap"
    job = client.service.SubmitJob(policy=HARDENING.read_text(), select="all")
    for _ in range(300):
        state = client.service.GetJob(job_id=job.id)
        if state.state == "completed":
            break
        time.sleep(0.1)
    devices = client.service.JobDevices(job_id=job.id, limit=50)
    listed = client.service.ListDevices(limit=10)
    try:
        client.service.GetJob(job_id=999999)
        missing = None
    except Fault as exc:
        missing = exc
    # A viewer's token reads but may not push.
    vsession = requests.Session()
    vsession.headers["Authorization"] = f"Bearer {viewer}"
    vclient = zeep.Client(f"{base}/soap?wsdl", transport=Transport(session=vsession))
    vclient.service._binding_options["address"] = f"{base}/soap"
    try:
        vclient.service.SubmitJob(policy=HARDENING.read_text(), select="all")
        forbidden = None
    except Fault as exc:
        forbidden = exc
    return {"job": job, "state": state, "devices": devices, "listed": listed, "missing": missing,
            "forbidden": forbidden, "lint": vclient.service.LintPolicy(policy='[settings]\nFirewall = "Disabled"\n')}


def test_zeep_submits_polls_and_lists_a_push(tmp_path: Path) -> None:
    async def go(reactor: Any) -> tuple[dict[str, Any], int]:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=5,
                               resolve=RESOLVE, inform_interval=600, boot_ramp_s=0.3, seed=4,
                               cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
                               cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 5, timeout=30, what="boot")
            token = server.issue_token("oss", "operator")
            viewer = server.issue_token("noc", "viewer")
            base = server.url("api").rstrip("/")
            pool = reactor.getThreadPool()
            unauth = await deferToThreadPool(reactor, pool, http, base + "/soap?wsdl")
            out = await deferToThreadPool(reactor, pool, soap_push, base, "oss", token, viewer)
            return out, unauth[0]
        finally:
            await fleet.stop()
            await server.stop()

    out, unauth = run_in_reactor(go, timeout=90)
    assert unauth == 401
    assert out["state"].state == "completed" and out["state"].total == 5
    counts = {c.state: c.count for c in out["state"].counts.StateCount}
    assert counts["applied"] + counts["applied_pending_reboot"] == 5
    assert out["devices"].total == 5 and len(out["devices"].devices.Task) == 5
    assert out["listed"].total == 5
    assert out["missing"] is not None and "no such job" in out["missing"].message
    assert out["forbidden"] is not None and "operator role" in out["forbidden"].message
    assert out["lint"].exit == 1
