"""Desired state end to end: the real server (SQLite), simulated phones over loopback, the CLI.

An assignment converges on its own at the phones' sessions (no push command); new phones are
compliant after their first session; web-page drift is corrected in the session that reports
it and shows in the drift history; a factory-reset phone is brought back; an assignment in
audit mode changes nothing and the audit command reports what it reads.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.drift import factory_reset, web_page_change
from acs_security.store.records import make_device_id
from tests.e2e.test_push import CR_PASS, CR_USER, HARDENING, cli, fleet_for
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
PING = "Device.X_CISCO_SecuritySettings.FirewallOptions"
FIREWALL = "Device.X_CISCO_SecuritySettings.Firewall"


def start(reactor: Any, tmp_path: Path, sessions: list[dict[str, Any]]) -> AcsServer:
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    config = load_config(environ={}, overrides={
        "db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
        "cpe_auth": False, "cr_username": CR_USER, "cr_password_file": str(tmp_path / "cr.pw"),
        "cr_session_wait": 10, "desired_sync_interval": 1})
    server = AcsServer(config=config, reactor=reactor, session_observer=sessions.append)
    server.start()
    return server


def device_id(phone: Any) -> str:
    return make_device_id("00000C", phone.product_class, phone.serial)


def desired_values(server: AcsServer, phone: Any) -> dict[str, str]:
    """The assignment's desired values on this phone's model and firmware (TR-069 text)."""
    assert server.live is not None
    aset = server.live.current
    sel = aset.select(product_class=phone.product_class, firmware=phone.table.software_version, serial=phone.serial)
    return {path: p.value for path, p in aset.desired(phone.product_class, phone.table.software_version,
                                                        sel).values.items()}


def compliant(server: AcsServer, phone: Any) -> bool:
    want = desired_values(server, phone)
    return bool(want) and all(phone.value(path) == value for path, value in want.items())


def test_an_assignment_converges_new_phones_comply_drift_and_resets_are_corrected(tmp_path, capsys):
    sessions: list[dict[str, Any]] = []
    figures: dict[str, float] = {}

    async def go(reactor):
        server = start(reactor, tmp_path, sessions)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 500, inform_interval=20, jitter=0.2)
        newcomers = fleet_for(reactor, server, 200, inform_interval=20, jitter=0.2, serial_start=500, seed=5,
                              boot_ramp_s=2.0)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones), timeout=90,
                             interval=0.2, what="boot informs")
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e", "operator")
            t0 = reactor.seconds()
            rc = await cli(reactor, "assign", str(HARDENING), "--select", "all", "--name", "hardening",
                           "--server", api, "--token", token, "--json")
            assigned = json.loads(capsys.readouterr().out)
            key = assigned["parameter_key"]
            # No push: the phones converge at their own (periodic) sessions.
            await wait_until(reactor, lambda: all(compliant(server, p) for p in fleet.phones), timeout=150,
                             interval=0.5, what="convergence of 500 phones")
            figures["converge_500_s"] = reactor.seconds() - t0
            # 200 new phones boot: compliant after their first session.
            t1 = reactor.seconds()
            await newcomers.start()
            await wait_until(reactor, lambda: all(compliant(server, p) for p in newcomers.phones), timeout=90,
                             interval=0.5, what="200 new phones compliant")
            figures["new_200_s"] = reactor.seconds() - t1
            # 5 % of the phones drift on their web page; one session each corrects it.
            rng = random.Random(7)
            drifted = rng.sample(fleet.phones, 25)
            before = {p.serial: p.sessions_completed for p in drifted}
            changes = {p.serial: web_page_change(p, rng, p.env.catalogue) for p in drifted}
            t2 = reactor.seconds()
            await wait_until(reactor, lambda: all(compliant(server, p) for p in drifted), timeout=60,
                             interval=0.2, what="drift corrected")
            figures["drift_corrected_s"] = reactor.seconds() - t2
            # Compliant as soon as the SetParameterValues lands, which is before the correcting
            # session ends (and counts in sessions_completed): wait for those ends, then count.
            await wait_until(reactor, lambda: all(p.sessions_completed > before[p.serial] for p in drifted),
                             timeout=30, interval=0.1, what="the correcting sessions' end")
            sessions_after = {p.serial: p.sessions_completed - before[p.serial] for p in drifted}
            # Factory resets: back to defaults, BOOTSTRAP, brought back.
            reset = [p for p in rng.sample(fleet.phones, 10) if p not in drifted]
            now = reactor.seconds()
            done = [p for p in reset if factory_reset(fleet, p, now)]
            await wait_until(reactor, lambda: all(compliant(server, p) for p in done), timeout=60,
                             interval=0.2, what="factory-reset phones brought back")
            await server.engine.flush()
            rc2 = await cli(reactor, "assignments", "compliance", "hardening", "--server", api, "--token", token,
                            "--json")
            comp = json.loads(capsys.readouterr().out)
            rc3 = await cli(reactor, "devices", "drift", drifted[0].serial, "--server", api, "--token", token,
                            "--json")
            history = json.loads(capsys.readouterr().out)
            out = dict(rc=(rc, rc2, rc3), key=key, comp=comp, history=history, changes=changes,
                       sessions_after=sessions_after, drifted=[device_id(p) for p in drifted],
                       done=[device_id(p) for p in done], everyone=fleet.phones + newcomers.phones,
                       newcomers=[device_id(p) for p in newcomers.phones],
                       resets=[server.store.drift_history(device_id(p)) for p in done])
            return out
        finally:
            await newcomers.stop()
            await fleet.stop()
            await server.stop()

    out = run_in_reactor(go, timeout=400)
    assert out["rc"] == (0, 0, 0)
    print(f"\nconvergence figures: {json.dumps({k: round(v, 1) for k, v in figures.items()})}")
    comp = out["comp"]
    assert comp["selected"] == 700 and comp["compliant"] == 700 and comp["compliant_ratio"] == 1.0, comp
    assert {m["product_class"] for m in comp["by_model"]} >= {"CP-8851-3PCC", "CP-7841-3PCC"}
    # Every phone got the assignment's SetParameterValues once; the drifted and reset ones
    # once more (the correction).
    key = out["key"]
    again = set(out["done"]) | set(out["drifted"])
    counts = {device_id(p): p.spv_by_key[key] for p in out["everyone"]}
    assert all(n == (2 if d in again else 1) for d, n in counts.items()), {d: n for d, n in counts.items()
                                                                           if n != (2 if d in again else 1)}
    # A new phone's first session carried its policy.
    first = {}
    for entry in sessions:
        if entry.get("device") in out["newcomers"] and entry["device"] not in first and entry.get("outcome") == "done":
            first[entry["device"]] = entry
    assert len(first) == 200 and all("SetParameterValues" in e["rpcs"] for e in first.values())
    # Drift: reported as VALUE CHANGE and corrected in that one session.
    assert all(n == 1 for n in out["sessions_after"].values()), out["sessions_after"]
    drift_sessions = [e for e in sessions if e.get("device") in out["drifted"] and "4 VALUE CHANGE" in e["events"]]
    assert len(drift_sessions) == 25 and all(e["rpcs"] == ["SetParameterValues"] for e in drift_sessions)
    line = out["history"]["events"][0]
    serial0 = out["history"]["serial_number"]
    path, new = out["changes"][serial0]
    assert (line["kind"], line["path"], line["new"], line["event"], line["action"]) == (
        "drift", path, new, "4 VALUE CHANGE", "corrected")
    assert all([e.kind for e in lines] == ["factory_reset"] for lines in out["resets"])


def test_audit_mode_reports_without_changing_and_the_audit_command_reads_the_phones(tmp_path, capsys):
    sessions: list[dict[str, Any]] = []

    async def go(reactor):
        server = start(reactor, tmp_path, sessions)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 30, inform_interval=5, jitter=0.1)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones), timeout=60,
                             what="boot informs")
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e", "operator")
            rc = await cli(reactor, "assign", str(HARDENING), "--select", "all", "--name", "watch", "--mode", "audit",
                           "--server", api, "--token", token, "--json")
            key = json.loads(capsys.readouterr().out)["parameter_key"]
            # The phones' next sessions set notification on the controlled settings, nothing else.
            await wait_until(reactor, lambda: all(p.active_notification() for p in fleet.phones), timeout=60,
                             interval=0.2, what="notification set")
            phone = fleet.phones[3]
            path, value = web_page_change(phone, random.Random(1), phone.env.catalogue)
            await wait_until(reactor, lambda: bool(server.store.drift_history(device_id(phone))), timeout=30,
                             what="drift reported")
            started = time.monotonic()
            rc2 = await cli(reactor, "audit", "--assignment", "watch", "--format", "json", "--every", "1",
                            "--server", api, "--token", token)
            report = json.loads(capsys.readouterr().out)
            rc3 = await cli(reactor, "audit", "--report", str(report["job"]["id"]), "--format", "csv",
                            "--server", api, "--token", token)
            csv_text = capsys.readouterr().out
            return dict(rc=(rc, rc2, rc3), key=key, phone=phone, path=path, value=value, report=report,
                        csv=csv_text, fleet=fleet, took=time.monotonic() - started,
                        history=server.store.drift_history(device_id(phone)))
        finally:
            await fleet.stop()
            await server.stop()

    out = run_in_reactor(go, timeout=300)
    assert out["rc"] == (0, 0, 0)
    assert all(p.spv_by_key[out["key"]] == 0 for p in out["fleet"].phones)  # audit mode sends no value
    assert out["phone"].value(out["path"]) == out["value"]  # the drift stays
    (line,) = [h for h in out["history"] if h.event == "4 VALUE CHANGE"]
    assert (line.path, line.action, line.new_value) == (out["path"], "reported", out["value"])
    # The audit found the phones at their factory values: drift lines of the audit, reported only.
    assert {(h.event, h.action) for h in out["history"] if h.event != "4 VALUE CHANGE"} == {
        (f"audit job {out['report']['job']['id']}", "reported")}
    report = out["report"]
    assert report["job"]["kind"] == "audit" and report["job"]["state"] == "completed"
    assert report["devices"] and len(report["devices"]) == 30
    assert report["totals"]["drifted"] > 0 and report["totals"]["missing"] > 0  # phones are at factory values
    mine = next(d for d in report["devices"] if d["serial_number"] == out["phone"].serial)
    item = next(i for i in mine["items"] if i["path"] == out["path"])
    assert item["value"] == out["value"]
    by = {(s["setting"], s["product_class"]): s for s in report["settings"]}
    assert all(s["compliant"] + s["drifted"] + s["missing"] + s["unknown"] > 0 for s in by.values())
    header = out["csv"].splitlines()[0]
    assert header.startswith("serial_number,product_class,software_version,device_id,assignment,setting")
