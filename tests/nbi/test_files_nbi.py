"""Files and backups through REST and SOAP (zeep reading the WSDL): render a phone's cfg.xml,
take backups, list, show, diff and restore them; secrets never in an answer."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.nbi.support import CR_PASS, CR_USER, RESOLVE, http, start_server
from tests.support import run_in_reactor, wait_until

zeep = pytest.importorskip("zeep")
pytestmark = pytest.mark.e2e
POLICY = ('[settings]\nProxy_Mode = "Manual"\nProxy_Host = "p.example.net"\nProxy_Port = "3128"\n'
          'Proxy_Server_Requires_Authentication = "Yes"\nProxy_Username = "u"\nProxy_Password = "Nbi-Secret-1"\n')


def exercise(base: str, token: str, device_id: str) -> dict[str, Any]:
    import requests
    from zeep.transports import Transport

    quoted = urllib.parse.quote(device_id, safe="")
    out: dict[str, Any] = {}
    out["render"] = http(f"{base}/api/v1/devices/{quoted}/cfgxml/render", token=token, method="POST",
                         body={"policy": POLICY})
    out["render_bad"] = http(f"{base}/api/v1/devices/{quoted}/cfgxml/render", token=token, method="POST",
                             body={"policy": POLICY, "method": "tftp"})
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    client = zeep.Client(f"{base}/soap?wsdl", transport=Transport(session=session))
    client.service._binding_options["address"] = f"{base}/soap"
    out["soap_render"] = client.service.RenderDeviceCfgXml(device_id=device_id, policy=POLICY)
    job = client.service.BackupDevices(select="all", wave=2)

    def wait(job_id: int) -> None:
        deadline = time.monotonic() + 120  # generous: a busy machine must not fail the test
        while time.monotonic() < deadline:
            if client.service.GetJob(job_id=job_id).state == "completed":
                return
            time.sleep(0.1)
        raise AssertionError("job did not complete")

    wait(job.id)
    pushed = client.service.SubmitJob(policy=POLICY, select="all", method="download")
    wait(pushed.id)
    job = client.service.BackupDevices(select="all")
    wait(job.id)
    out["list"] = http(f"{base}/api/v1/backups?limit=50", token=token)
    out["soap_list"] = client.service.ListBackups(device_id=device_id)
    out["show"] = http(f"{base}/api/v1/devices/{quoted}/backups/latest", token=token)
    out["soap_diff"] = client.service.DiffBackups(device_id=device_id)
    out["diff"] = http(f"{base}/api/v1/devices/{quoted}/backups/2/diff?against=1", token=token)
    out["missing"] = http(f"{base}/api/v1/devices/{quoted}/backups/9", token=token)
    out["restore"] = http(f"{base}/api/v1/devices/{quoted}/backups/1/restore", token=token, method="POST",
                          body={"dry_run": True})
    restored = client.service.RestoreBackup(device_id=device_id, version="1")
    wait(restored.id)
    out["restored"] = restored
    return out


def test_files_and_backups_over_rest_and_soap(tmp_path: Path) -> None:
    async def go(reactor: Any) -> tuple[dict[str, Any], Any]:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=3,
                               resolve=RESOLVE, inform_interval=600, boot_ramp_s=0.3, seed=6,
                               models=("CP-8851-3PCC",), cr_delay=(0.02, 0.05), retry_scale=0.02,
                               cr_password_mode="shared", cr_username=CR_USER, cr_password=CR_PASS,
                               cr_min_interval=0.2)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 3, timeout=30, what="boot")
            token = server.issue_token("oss-files", "operator")
            phone = fleet.phones[0]
            device = make_device_id("00000C", phone.product_class, phone.serial)
            out = await deferToThreadPool(reactor, reactor.getThreadPool(), exercise,
                                          server.url("api").rstrip("/"), token, device)
            return out, phone
        finally:
            await fleet.stop()
            await server.stop()

    out, phone = run_in_reactor(go, timeout=400)
    status, _, body = out["render"]
    rendered = json.loads(body)
    assert status == 200 and rendered["secret_elements"] == ["Proxy_Password"]
    assert "Nbi-Secret-1" not in body.decode() and "<!-- Proxy_Password: secret" in rendered["cfgxml"]
    assert out["render_bad"][0] == 400
    assert "Nbi-Secret-1" not in out["soap_render"] and "<Proxy_Host" in out["soap_render"]
    listed = json.loads(out["list"][2])
    assert listed["total"] == 6 and {b["version"] for b in listed["backups"]} == {1, 2}
    assert [b.version for b in out["soap_list"].backups.Backup] == [2, 1]
    shown = json.loads(out["show"][2])
    assert shown["version"] == 2 and "<Proxy_Host ua=\"rw\">p.example.net</Proxy_Host>" in shown["cfgxml"]
    changes = {c["element"]: c for c in json.loads(out["diff"][2])["changes"]}
    assert changes["Proxy_Host"]["new"] == "p.example.net" and changes["Proxy_Mode"]["new"] == "Manual"
    assert "Proxy_Password" not in changes  # the phone uploads it as <Proxy_Password/>: not compared
    assert {c.element for c in out["soap_diff"]} == set(changes)
    assert out["missing"][0] == 404
    assert out["restore"][0] == 200 and json.loads(out["restore"][2])["dry_run"] is True
    assert out["restored"].total == 1
    assert phone.params["Device.X_CISCO_HTTPProxySettings.ProxyHost"] == ""  # version 1 is back
