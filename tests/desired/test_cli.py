"""The desired-state commands as an operator types them (tables, not JSON), against a real
server and simulated phones over loopback."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.cli import main as cli_main
from acs_security.sim.drift import web_page_change
from acs_security.sim.fleet import SimulatedFleet
from tests.nbi.support import CR_PASS, CR_USER, RESOLVE, start_server
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
HARDENING = Path(__file__).resolve().parents[2] / "datamodel" / "examples" / "hardening.toml"


def test_assign_show_compliance_drift_desired_and_audit_tables(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # a wide terminal: cells are not folded
    outputs: dict[str, tuple[int, str]] = {}

    async def go(reactor: Any) -> None:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=6,
                               resolve=RESOLVE, inform_interval=3, boot_ramp_s=0.3, seed=8, jitter=0.1,
                               cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
                               cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        pool = reactor.getThreadPool()

        async def cli(name: str, *argv: str) -> None:
            rc = await deferToThreadPool(reactor, pool, cli_main, [*argv, "--server", api, "--token", token])
            outputs[name] = (rc, capsys.readouterr().out)

        try:
            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 6, timeout=30, what="boot")
            api = server.url("api").rstrip("/")
            token = server.issue_token("ops", "operator")
            await cli("dry", "assign", str(HARDENING), "--select", "all", "--name", "hardening", "--dry-run")
            await cli("assign", "assign", str(HARDENING), "--select", "all", "--name", "hardening")
            phone = fleet.phones[0]
            await wait_until(reactor, lambda: all(p.active_notification() for p in fleet.phones), timeout=30,
                             what="enforced")
            change = web_page_change(phone, random.Random(2), phone.env.catalogue)
            assert change is not None
            path, value = change
            await wait_until(reactor, lambda: phone.value(path) != value, timeout=30, what="corrected")
            await cli("list", "assignments", "list")
            await cli("show", "assignments", "show", "hardening")
            await cli("compliance", "assignments", "compliance", "hardening")
            await cli("devices", "assignments", "devices", "hardening")
            await cli("drift", "devices", "drift", phone.serial)
            await cli("desired", "devices", "desired", phone.serial)
            await cli("audit", "audit", "--assignment", "hardening", "--every", "1")
            await cli("disable", "assignments", "disable", "hardening")
            await cli("delete", "assignments", "delete", "hardening")
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=180)
    assert {name: rc for name, (rc, _) in outputs.items()} == dict.fromkeys(outputs, 0)
    assert "dry run: would create: 6 device(s) selected now" in outputs["dry"][1]
    assert "assignment hardening created: revision 1" in outputs["assign"][1]
    assert "hardening" in outputs["list"][1] and "Restricted_Access_Domains" in outputs["show"][1]
    assert "6 device(s) selected, 100.0% compliant" in outputs["compliance"][1]
    assert "compliant" in outputs["devices"][1]
    assert "corrected" in outputs["drift"][1] and "4 VALUE CHANGE" in outputs["drift"][1]
    assert "compliant" in outputs["desired"][1] and "hardening" in outputs["desired"][1]
    assert "audit job" in outputs["audit"][1] and "compliant" in outputs["audit"][1]
    assert "disabled" in outputs["disable"][1] and "deleted" in outputs["delete"][1]
