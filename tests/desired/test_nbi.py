"""Assignments through the northbound faces over loopback: REST (refusals, revisions,
enable/disable/delete, compliance, the desired view, drift), the metrics gauges, SOAP (zeep)
and the job report's conflicts. Real server, real phones of the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.nbi.support import CR_PASS, CR_USER, RESOLVE, http, start_server
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
HARDENING = (Path(__file__).resolve().parents[2] / "datamodel" / "examples" / "hardening.toml").read_text()
PING_ON = '[settings]\nFirewall_Config = "NO_ICMP_PING"\n'
PING_OFF = '[settings]\nFirewall_Config = ""\n'
PING = "Device.X_CISCO_SecuritySettings.FirewallOptions"


def test_rest_refuses_conflicts_and_guardrails_and_serves_compliance_drift_and_metrics(tmp_path: Path) -> None:
    async def go(reactor: Any) -> dict[str, Any]:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=8,
                               resolve=RESOLVE, inform_interval=3, boot_ramp_s=0.3, seed=4, jitter=0.1,
                               cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
                               cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        pool = reactor.getThreadPool()
        base = server.url("api").rstrip("/")

        async def call(path: str, method: str = "GET", body: Any = None, token: str = "") -> tuple[int, Any]:
            status, headers, data = await deferToThreadPool(reactor, pool, http, base + path, token=token,
                                                            method=method, body=body)
            kind = headers.get("Content-Type", "")
            return status, json.loads(data) if "json" in kind else data.decode()

        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 8, timeout=30, what="boot")
            op = server.issue_token("ops", "operator")
            viewer = server.issue_token("noc", "viewer")
            out: dict[str, Any] = {}
            out["viewer_assign"] = await call("/api/v1/assignments", "POST", {"policy": PING_ON, "select": "all"},
                                              viewer)
            out["refused"] = await call("/api/v1/assignments", "POST", {
                "policy": '[settings]\nEnable_TR-069 = "No"\n', "select": "all", "name": "off"}, op)
            out["created"] = await call("/api/v1/assignments", "POST", {
                "policy": PING_ON, "select": "all", "name": "ping-off"}, op)
            out["same"] = await call("/api/v1/assignments", "POST", {
                "policy": PING_ON, "select": "all", "name": "ping-off"}, op)
            out["conflict"] = await call("/api/v1/assignments", "POST", {
                "policy": PING_OFF, "select": "product_class=CP-8851-3PCC", "name": "ping-on"}, op)
            out["ordered"] = await call("/api/v1/assignments", "POST", {
                "policy": PING_OFF, "select": "product_class=CP-8851-3PCC", "name": "ping-on", "priority": 5,
                "mode": "audit", "dry_run": True}, op)
            out["bad"] = await call("/api/v1/assignments", "POST", {
                "policy": PING_ON, "select": "model=", "name": "x y", "priority": "high", "mode": "maybe"}, op)
            phone = fleet.phones[0]
            await wait_until(reactor, lambda: phone.value(PING) == "NO_ICMP_PING" and bool(phone.active_notification()),
                             timeout=30, what="enforced")
            device = quote(make_device_id("00000C", phone.product_class, phone.serial), safe="")
            phone.set_param(PING, "NO_ICMP_UNREACHABLE")  # a person on the web page
            await wait_until(reactor, lambda: phone.value(PING) == "NO_ICMP_PING", timeout=30, what="corrected")
            out["drift"] = await call(f"/api/v1/devices/{device}/drift", token=viewer)
            out["desired"] = await call(f"/api/v1/devices/{device}/desired", token=viewer)
            await wait_until(reactor, lambda: all(p.value(PING) == "NO_ICMP_PING" for p in fleet.phones),
                             timeout=30, what="all enforced")
            out["compliance"] = await call("/api/v1/assignments/ping-off/compliance", token=viewer)
            out["devices"] = await call("/api/v1/assignments/ping-off/devices?state=compliant&limit=3",
                                        token=viewer)
            out["revision"] = await call("/api/v1/assignments", "POST", {
                "policy": '[settings]\nFirewall_Config = "NO_ICMP_PING,NO_ICMP_UNREACHABLE"\n', "select": "all",
                "name": "ping-off"}, op)
            await wait_until(reactor, lambda: all(p.value(PING) == "NO_ICMP_PING,NO_ICMP_UNREACHABLE"
                                                  for p in fleet.phones), timeout=30, what="revision 2 enforced")
            server._refresh_gauges()
            await wait_until(reactor, lambda: bool(server._gauges), timeout=10, what="gauges")
            out["metrics"] = await call("/metrics", token=viewer)
            out["disabled"] = await call("/api/v1/assignments/ping-off/disable", "POST", {}, op)
            out["list"] = await call("/api/v1/assignments", token=viewer)
            out["deleted"] = await call("/api/v1/assignments/ping-off", "DELETE", token=op)
            out["gone"] = await call("/api/v1/assignments/ping-off", token=viewer)
            out["history_kept"] = await call(f"/api/v1/devices/{device}/drift", token=viewer)
            return out
        finally:
            await fleet.stop()
            await server.stop()

    out = run_in_reactor(go, timeout=180)
    assert out["viewer_assign"][0] == 403
    status, problem = out["refused"]
    assert status == 400 and problem["title"] == "policy refused by guardrails"
    assert [f["rule"] for f in problem["findings"]] == ["tr069-disabled"]
    status, created = out["created"]
    assert status == 201 and created["revision"] == 1 and created["selected"] == 8 and created["created"]
    assert created["parameter_key"] == f"acs-des-{created['id']}-r1"
    assert out["same"][0] == 200 and out["same"][1]["unchanged"] and out["same"][1]["revision"] == 1
    status, problem = out["conflict"]
    assert status == 409 and problem["title"] == "conflicting assignments"
    (c,) = problem["findings"]
    assert (c["setting"], c["assignment"], c["other"], c["value"], c["other_value"]) == (
        "Firewall_Config", "ping-on", "ping-off", "", "NO_ICMP_PING")
    assert c["device"]["product_class"] == "CP-8851-3PCC" and c["device"]["serial_number"] in problem["detail"]
    status, plan = out["ordered"]
    assert status == 200 and plan["dry_run"] and plan["conflicts"] == [] and plan["would"] == "create"
    assert out["bad"][0] == 400
    assert out["drift"][0] == 200, out["drift"]
    history = out["drift"][1]["events"]
    assert [(e["kind"], e["setting"], e["old"], e["new"], e["event"], e["action"]) for e in history] == [
        ("drift", "Firewall_Config", "NO_ICMP_PING", "NO_ICMP_UNREACHABLE", "4 VALUE CHANGE", "corrected")]
    view = out["desired"][1]
    (row,) = [s for s in view["settings"] if s["path"] == PING]
    assert (row["desired"], row["known"], row["verdict"]) == ("NO_ICMP_PING", "NO_ICMP_PING", "compliant")
    assert view["assignments"][0]["notified"] is True
    comp = out["compliance"][1]
    assert comp["selected"] == 8 and comp["compliant"] == 8 and comp["compliant_ratio"] == 1.0
    assert sum(r["selected"] for r in comp["by_firmware"]) == 8
    assert out["devices"][1]["total"] == 8 and len(out["devices"][1]["devices"]) == 3
    assert out["revision"][0] == 200 and out["revision"][1]["revision"] == 2
    metrics = out["metrics"][1]
    assert 'acs_desired_devices{assignment="ping-off",state="compliant"}' in metrics
    assert 'acs_desired_drift_total{action="corrected"} 1.0' in metrics
    assert out["disabled"][1]["enabled"] is False
    assert out["list"][1]["assignments"][0]["enabled"] is False
    assert out["deleted"][0] == 200 and out["gone"][0] == 404
    assert out["history_kept"][1]["events"][0]["assignment"] == "ping-off"


def test_soap_assign_list_compliance_and_audit(tmp_path: Path) -> None:
    zeep = pytest.importorskip("zeep")

    def soap(base: str, token: str) -> dict[str, Any]:
        import time

        import requests
        from requests.auth import HTTPBasicAuth
        from zeep.exceptions import Fault
        from zeep.transports import Transport

        session = requests.Session()
        session.auth = HTTPBasicAuth("oss", token)
        client = zeep.Client(f"{base}/soap?wsdl", transport=Transport(session=session))
        client.service._binding_options["address"] = f"{base}/soap"
        made = client.service.Assign(policy=HARDENING, select="all", name="hardening", priority=1)
        try:
            client.service.Assign(policy=PING_OFF, select="all", name="clash", priority=1)
            conflict = None
        except Fault as exc:
            conflict = exc
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            comp = client.service.AssignmentCompliance(ref="hardening")
            if comp.total.compliant == comp.total.selected:
                break
            time.sleep(0.3)
        job = client.service.StartAudit(select="all", assignment="hardening")
        while time.monotonic() < deadline + 60:
            if client.service.GetJob(job_id=job.id).state == "completed":
                break
            time.sleep(0.3)
        return {"made": made, "conflict": conflict, "comp": comp, "list": client.service.ListAssignments(),
                "csv": client.service.AuditReportCsv(job_id=job.id), "job": job,
                "disabled": client.service.DisableAssignment(ref="hardening")}

    async def go(reactor: Any) -> dict[str, Any]:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=5,
                               resolve=RESOLVE, inform_interval=3, boot_ramp_s=0.3, seed=4,
                               cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
                               cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 5, timeout=30, what="boot")
            token = server.issue_token("oss", "operator")
            return await deferToThreadPool(reactor, reactor.getThreadPool(), soap, server.url("api").rstrip("/"),
                                           token)
        finally:
            await fleet.stop()
            await server.stop()

    out = run_in_reactor(go, timeout=180)
    assert out["made"].name == "hardening" and out["made"].revision == 1 and out["made"].priority == 1
    assert out["conflict"] is not None and "Firewall_Config" in out["conflict"].message
    assert out["comp"].total.selected == 5 and out["comp"].total.compliant == 5
    assert [a.name for a in out["list"].assignments.Assignment] == ["hardening"]
    assert out["job"].kind == "audit"
    rows = out["csv"].splitlines()
    assert rows[0].startswith("serial_number,") and len(rows) > 5
    assert all(",compliant," in r or ",missing," in r for r in rows[1:])
    assert out["disabled"].enabled is False
