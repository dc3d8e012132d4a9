"""cfg.xml Downloads and configuration backups end to end: the real server, simulated phones,
loopback sockets. A mixed push (SetParameterValues where the phone has the parameter, a
cfg.xml Download for what its model takes only from cfg.xml) on 300 phones with some
refusing the file; a backup and restore round trip through the CLI; a server killed in the
middle of a Download push that resumes without installing anything twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.mapping import load_catalogue
from acs_security.mapping.paths import DATAMODEL_ENV, datamodel_dir
from acs_security.sim.faults import FaultKind, parse_faults
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.e2e.test_push import (
    CR_PASS,
    CR_USER,
    HARDENING,
    RESOLVE,
    api_json,
    booted,
    cli,
    fleet_for,
    free_port,
    make_token,
    server_for,
    start_serve,
)
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
# The 7800 family takes these only from cfg.xml here (an override file, as an operator
# would write after `datamodel learn`): the push sends them in a Download.
CFG_ONLY = ["Firewall_Config", "TLS_Name_Validate_n_"]


@pytest.fixture()
def datamodel(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides"))
    (target / "overrides").mkdir()
    (target / "overrides" / "50-78xx.toml").write_text(
        'product_class = "CP-78??-3PCC"\nsource = "e2e test"\n'
        f"cfgxml_only = {CFG_ONLY!r}\n".replace("'", '"'))
    monkeypatch.setenv(DATAMODEL_ENV, str(target))
    return target


def device_id(phone: Any) -> str:
    return make_device_id("00000C", phone.product_class, phone.serial)


def installed(phone: Any, job_key: str) -> int:
    """Files of a job the phone installed (each transfer's CommandKey is the job's key and a tag)."""
    return sum(n for key, n in phone.installs_by_key.items() if key.startswith(job_key + "."))


def test_mixed_push_on_300_phones_spv_and_download_with_some_refusing_the_file(tmp_path, datamodel):
    figures: dict[str, float] = {}

    async def go(reactor):
        server = server_for(reactor, tmp_path, cpe_auth=True)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 300, faults=parse_faults("refuse_file=0.1"), seed=11,
                          acs_username="cpe", acs_password="cpe-pass")
        # Half the phones have a credential of their own (digest file URLs), the rest only the
        # shared one (signed single-use URLs).
        server.store.put_cpe_credential("*", "cpe", "cpe-pass")
        for phone in fleet.phones[::2]:
            server.store.put_cpe_credential(phone.serial, "cpe", "cpe-pass")
        try:
            await booted(reactor, server, fleet, 300)
            t0 = reactor.seconds()
            result = await server.service.submit_job({
                "policy": HARDENING.read_text(), "select": "all", "max_fault_rate": 1.0})
            job = server.engine.jobs[result["id"]]
            await wait_until(reactor, lambda: job.state == "completed", timeout=150, what="job end")
            figures["push_300_s"] = reactor.seconds() - t0
            await server.engine.flush()
            report = await server.service.job_report(job.id)
            files = {d: server.store.device_file(d, kind="download", job_id=job.id)
                     for d in (device_id(p) for p in fleet.phones)}
            metrics = server.metrics.render().decode()
            return job, report, fleet, files, metrics
        finally:
            await fleet.stop()
            await server.stop()

    job, report, fleet, files, metrics = run_in_reactor(go, timeout=240)
    key = job.parameter_key
    mixed = [p for p in fleet.phones if p.product_class.startswith("CP-78")]
    others = [p for p in fleet.phones if not p.product_class.startswith("CP-78")]
    refusing = {p.serial for p in mixed if p.faults & FaultKind.REFUSE_FILE}
    assert mixed and others and refusing
    rows = {d["serial_number"]: d for d in report["devices"]}
    for phone in others:  # every setting by SetParameterValues, the job's key on it
        assert phone.spv_by_key == {key: 1}, phone
        assert rows[phone.serial]["state"].startswith("applied") and files[device_id(phone)] is None
    for phone in mixed:
        # One SetParameterValues without the job's key, then exactly one Download.
        assert phone.spv_by_key == {f"{key}.1": 1}, phone
        rec = files[device_id(phone)]
        assert rec is not None and rec.command_key.startswith(key + ".") and rec.fetches == 1
        row = rows[phone.serial]
        if phone.serial in refusing:
            assert row["state"] == "faulted" and row["fault_code"] == 9018
            assert rec.state == "failed" and phone.cfg_value("Firewall_Config") == ""
            assert installed(phone, key) == 0
        else:
            assert row["state"] == "applied" and row["detail"] == "applied by a cfg.xml Download"
            assert rec.state == "completed" and installed(phone, key) == 1
            assert phone.cfg_value("Firewall_Config") == "NO_ICMP_PING"
            assert phone.cfg_value("TLS_Name_Validate_1_") == "Yes"
    assert job.counts["faulted"] == len(refusing) and job.counts["applied"] == 300 - len(refusing)
    assert 'acs_file_requests_total{method="GET",outcome="served"} ' + f"{len(mixed)}.0" in metrics
    auths = {files[device_id(p)].auth for p in mixed}
    assert auths == {"digest", "signed"}
    figures.update(phones=300, by_download=len(mixed), refused=len(refusing))
    print(f"\nmixed push figures: { {k: round(v, 1) for k, v in figures.items()} }")


def test_an_assignment_sends_what_its_phones_take_only_from_cfgxml_in_a_download_once(tmp_path, capsys, datamodel):
    """Desired state with Download: at their own periodic sessions the phones get the
    assignment's SetParameterValues and, for the settings their model takes only from
    cfg.xml, one file each; phones refusing the file are faulted and not sent it again in
    every session; later sessions send nothing."""
    import json
    import sqlite3

    figures: dict[str, float] = {}

    async def go(reactor):
        server = server_for(reactor, tmp_path, desired_sync_interval=1)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 60, inform_interval=8, jitter=0.2, seed=23,
                          faults=parse_faults("refuse_file=0.2"))
        try:
            await booted(reactor, server, fleet, 60)
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e-assign-files", "operator")
            auth = ("--server", api, "--token", token)
            assert await cli(reactor, "assign", str(HARDENING), "--select", "all", "--name", "hardening",
                             "--json", *auth) == 0
            assigned = json.loads(capsys.readouterr().out)
            t0 = reactor.seconds()

            def rows() -> dict[str, Any]:
                return {r.device_id: r for r in server.store.assignment_rows(assigned["id"])}

            await wait_until(reactor, lambda: len(found := rows()) == 60 and all(
                r.state in ("applied", "compliant", "faulted") for r in found.values()),
                timeout=150, interval=0.5, what="every phone applied or faulted")
            figures["settled_60_s"] = reactor.seconds() - t0
            # Two more sessions each: a settled or faulted phone is sent nothing again.
            seen = {p.serial: p.sessions_completed for p in fleet.phones}
            await wait_until(reactor, lambda: all(p.sessions_completed >= seen[p.serial] + 2 for p in fleet.phones),
                             timeout=90, interval=0.5, what="two more sessions per phone")
            shown = next(p for p in fleet.phones if p.product_class.startswith("CP-78")
                         and not p.faults & FaultKind.REFUSE_FILE)
            assert await cli(reactor, "devices", "desired", shown.serial, "--json", *auth) == 0
            desired_view = json.loads(capsys.readouterr().out)
            return assigned, rows(), fleet, desired_view
        finally:
            await fleet.stop()
            await server.stop()

    assigned, rows, fleet, desired_view = run_in_reactor(go, timeout=300)
    with sqlite3.connect(tmp_path / "acs.db") as db:
        offered = dict(db.execute("SELECT device_id, count(*) FROM device_files GROUP BY device_id").fetchall())
    prefix = f"acs-des-{assigned['id']}-r1."
    mixed = [p for p in fleet.phones if p.product_class.startswith("CP-78")]
    refusing = [p for p in mixed if p.faults & FaultKind.REFUSE_FILE]
    assert mixed and refusing and len(refusing) < len(mixed)
    for phone in fleet.phones:
        row = rows[device_id(phone)]
        installs = sum(n for key, n in phone.installs_by_key.items() if key.startswith(prefix))
        assert "refused" not in (row.detail or "").replace("cfg.xml Download", ""), row  # notification took
        if phone not in mixed:  # every setting has a parameter: no file at all
            assert row.state == "applied" and device_id(phone) not in offered and installs == 0, row
        elif phone in refusing:
            assert row.state == "faulted" and row.faults[0]["code"] == 9018, row
            assert offered[device_id(phone)] == 1 and installs == 0
            assert phone.cfg_value("Firewall_Config") == ""
        else:
            assert row.state == "applied" and "by a cfg.xml Download" in row.detail, row
            assert offered[device_id(phone)] == 1 and installs == 1  # one file, installed once
            assert phone.cfg_value("Firewall_Config") == "NO_ICMP_PING"
            assert phone.cfg_value("TLS_Name_Validate_1_") == "Yes"
    # The operator's view: the file's setting known from the installed file, and compliant.
    [ping] = [x for x in desired_view["settings"] if x["setting"] == "Firewall_Config"]
    assert ping["verdict"] == "compliant" and ping["detail"].startswith("cfg.xml only (sent by Download)")
    figures.update(phones=60, by_download=len(mixed), refused=len(refusing))
    print(f"\nassignment figures: { {k: round(v, 1) for k, v in figures.items()} }")


def test_backup_diff_and_restore_round_trip_through_the_cli(tmp_path, capsys, datamodel):
    async def go(reactor):
        server = server_for(reactor, tmp_path)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 12, seed=4)
        try:
            await booted(reactor, server, fleet, 12)
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e-backup", "operator")
            auth = ("--server", api, "--token", token)
            assert await cli(reactor, "backup", "--select", "all", "--wait", *auth) == 0
            phone = next(p for p in fleet.phones if p.product_class == "CP-7841-3PCC")
            first = dict(phone.params)
            # Someone changes the phone by hand (its web page): a second backup sees it.
            phone.set_param("Device.X_CISCO_SecuritySettings.Firewall", "Disabled")
            phone.set_param("Device.X_CISCO_HTTPProxySettings.ProxyHost", "rogue.example.net")
            assert await cli(reactor, "backup", "--select", f"serial={phone.serial}", "--wait", *auth) == 0
            capsys.readouterr()
            assert await cli(reactor, "backup", "diff", phone.serial, "--json", *auth) == 0
            diff = capsys.readouterr().out
            assert await cli(reactor, "backup", "list", phone.serial, "--json", *auth) == 0
            listed = capsys.readouterr().out
            assert await cli(reactor, "backup", "show", phone.serial, "1", *auth) == 0
            shown = capsys.readouterr().out
            assert await cli(reactor, "backup", "restore", phone.serial, "1", "--wait", *auth) == 0
            after = dict(phone.params)
            versions = server.store.backup_versions([device_id(p) for p in fleet.phones])
            return diff, listed, shown, first, after, versions, phone
        finally:
            await fleet.stop()
            await server.stop()

    import json

    diff, listed, shown, first, after, versions, phone = run_in_reactor(go, timeout=150)
    assert sorted(versions.values()) == [1] * 11 + [2]  # an unchanged upload confirms version 1
    changes = {c["element"]: c for c in json.loads(diff)["changes"]}
    assert changes["Firewall"] == {"element": "Firewall", "change": "changed", "old": "Enabled",
                                   "new": "Disabled", "secret": False}
    assert changes["Proxy_Host"]["new"] == "rogue.example.net"
    assert [b["version"] for b in json.loads(listed)["backups"]] == [2, 1]
    assert "<flat-profile>" in shown and "<Firewall ua=\"na\">Enabled</Firewall>" in shown
    assert "Firewall_Config" in shown  # a cfg.xml-only setting of this model is in its backup
    # The restore sent version 1 back: the phone is as it was.
    assert after["Device.X_CISCO_SecuritySettings.Firewall"] == "Enabled"
    assert after["Device.X_CISCO_HTTPProxySettings.ProxyHost"] == first["Device.X_CISCO_HTTPProxySettings.ProxyHost"]


def kill_mid_download(tmp_path: Path, db: str) -> None:
    cwmp, api = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []

    async def go(reactor):
        pool = reactor.getThreadPool()

        def thread(fn, *a):
            return deferToThreadPool(reactor, pool, fn, *a)

        token = await thread(make_token, db)
        # A file not fetched within 5 s was never received (the Download went down with the
        # server): withdrawn and offered again, so the job ends within the test's patience.
        serve = ("--file-fetch-wait", "5")
        procs.append(await thread(start_serve, tmp_path, db, cwmp, api, *serve))
        fleet = SimulatedFleet(
            reactor, f"http://acs.example.net:{cwmp}/cwmp", phones=150, resolve=RESOLVE,
            inform_interval=600, boot_ramp_s=1.0, seed=13, cr_delay=(0.02, 0.1), retry_scale=0.02,
            cr_password_mode="shared", cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2,
            catalogue=load_catalogue())
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones),
                             timeout=60, what="boot informs")
            job = await thread(api_json, api, "POST", "/api/v1/jobs", {
                "policy": HARDENING.read_text(), "select": "all", "max_in_progress": 10,
                "method": "download"}, token)
            key = job["parameter_key"]
            def transfers_out() -> int:
                # Files being fetched, TransferCompletes not yet acknowledged.
                return len(fleet._downloads) + sum(1 for p in fleet.phones if p.transfers)

            await wait_until(reactor, lambda: sum(installed(p, key) for p in fleet.phones) >= 30
                             and transfers_out() > 0, timeout=60, interval=0.01,
                             what="a part of the fleet installed its file, transfers under way")
            in_flight = transfers_out()
            procs[0].send_signal(signal.SIGKILL)
            await thread(procs[0].wait)
            before = sum(installed(p, key) for p in fleet.phones)
            assert before < 150, "the job finished before the kill; the test needs a slower push"
            await sleep(reactor, 1.0)  # phones fetching or reporting meet a dead server
            procs.append(await thread(start_serve, tmp_path, db, cwmp, api, *serve))
            state: dict[str, Any] = {}
            deadline = reactor.seconds() + 120
            while reactor.seconds() < deadline:
                state = await thread(api_json, api, "GET", f"/api/v1/jobs/{job['id']}", None, token)
                if state["state"] == "completed":
                    break
                await sleep(reactor, 0.5)
            report = await thread(api_json, api, "GET", f"/api/v1/jobs/{job['id']}/report", None, token)
            stuck = {d["serial_number"] for d in report["devices"] if d["state"] != "applied"}
            # What the phones that did not end well were doing (for a failure's message).
            seen = [(p.serial, p.state, p.transfers, p.events, dict(p.installs_by_key), p.retry_at)
                    for p in fleet.phones if p.serial in stuck]
            return key, state, report, [installed(p, key) for p in fleet.phones], \
                [p.spv_by_key for p in fleet.phones], in_flight, seen
        finally:
            await fleet.stop()
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    await thread(proc.wait)

    key, state, report, installs, spv, in_flight, seen = run_in_reactor(go, timeout=300)
    if state.get("state") != "completed":  # what the store holds of the phones that did not end well
        from acs_security.store import open_store

        store = open_store(db)
        try:
            for d in report["devices"]:
                if d["state"] != "applied":
                    seen.append((d["serial_number"], store.list_transfer_completes(d["device_id"]),
                                 store.device_file(d["device_id"], kind="download"),
                                 store.list_tasks(1, device_id=d["device_id"])))
        finally:
            store.close()
    assert in_flight > 0, "no transfer was under way at the kill"
    odd = [(d["serial_number"], d["state"], d["fault_code"], d["detail"]) for d in report["devices"]
           if d["state"] != "applied"]
    assert state["state"] == "completed", (state["counts"], odd, seen)
    assert state["applied"] == 150, (state["counts"], odd)
    assert installs == [1] * 150  # every phone installed its file exactly once
    assert all(not counts for counts in spv)  # method download: no SetParameterValues
    assert {d["detail"] for d in report["devices"]} <= {"applied by a cfg.xml Download"}


def test_server_killed_mid_download_push_installs_nothing_twice_sqlite(tmp_path):
    kill_mid_download(tmp_path, f"sqlite:///{tmp_path}/acs.db")


def test_server_killed_mid_download_push_installs_nothing_twice_postgresql(tmp_path, postgres_url):
    import psycopg

    schema = f"files_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        kill_mid_download(tmp_path, f"{postgres_url}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
