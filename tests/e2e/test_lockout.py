"""The guardrails against phones that really lock themselves out: the real server on
loopback, simulated phones (acs_security/sim/lockout.py), pushes through FleetService.

With the guardrails on, a FIPS policy and a Restricted Access Domains policy that leaves out
the ACS host are refused and no phone receives anything. Forced past the guardrails (as an
operator would with --force), the same policies lose the phones: they lock themselves out
and never inform again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.service import ServiceError
from acs_security.sim.fleet import SimulatedFleet
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
RESOLVE = {"acs.example.net": "127.0.0.1"}
CR_USER, CR_PASS = "acs-cr", "cr-lockout-5e1d"
FIPS_POLICY = '[settings]\n"Device.X_CISCO_SecuritySettings.FIPSMode" = "Yes"\nFirewall = "Enabled"\n'
RAD_POLICY = '[settings]\nRestricted_Access_Domains = "sip.example.net,prov.example.net"\n'
INTERVAL = 2  # PeriodicInformInterval of the phones, seconds


def start_server(reactor: Any, tmp_path: Path) -> AcsServer:
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    config = load_config(environ={}, overrides={
        "db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
        "cpe_auth": False, "cr_username": CR_USER, "cr_password_file": str(tmp_path / "cr.pw"),
        "cr_session_wait": 10,
        # The phones' ACS URL: the guardrails take the ACS host from it (the port is irrelevant).
        "public_url": "http://acs.example.net/cwmp",
    })
    server = AcsServer(config=config, reactor=reactor)
    server.start()
    return server


def test_guardrails_keep_the_phones_and_forcing_them_loses_the_phones(tmp_path):
    async def go(reactor: Any) -> None:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        assert server.service is not None
        fleet = SimulatedFleet(
            reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=20,
            firmware=("12.0(1)",), resolve=RESOLVE, inform_interval=INTERVAL, jitter=0.0, boot_ramp_s=0.5,
            seed=3, cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
            cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2, reboot_delay=0.1)
        fips_phones, rad_phones = fleet.phones[:10], fleet.phones[10:]

        def select(phones: list[Any]) -> str:
            return "serial=" + ",".join(p.serial for p in phones)

        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones), timeout=20,
                             what="boot informs")
            await wait_until(reactor, lambda: server.store.count_devices() == 20, timeout=5, what="registry")

            # Guardrails on: both policies refused, nothing created, nothing sent.
            for policy, rule in ((FIPS_POLICY, "fips-mode-over-tr069"), (RAD_POLICY, "restricted-domains-exclude-acs")):
                with pytest.raises(ServiceError) as info:
                    await server.service.submit_job({"policy": policy, "select": "all"})
                assert info.value.status == 400 and [f["rule"] for f in info.value.findings or []] == [rule]
            assert server.store.count_jobs() == 0
            await sleep(reactor, INTERVAL + 0.5)  # a full periodic round: the phones still inform
            assert all(not p.spv_by_key for p in fleet.phones)
            assert all(p.locked_out is None and p.sessions_completed >= 2 for p in fleet.phones)

            # Guardrails forced: the phones apply the policies and lose the ACS.
            fips = await server.service.submit_job({"policy": FIPS_POLICY, "select": select(fips_phones),
                                                    "force": ["fips-mode-over-tr069"]})
            rad = await server.service.submit_job({"policy": RAD_POLICY, "select": select(rad_phones),
                                                   "force": ["restricted-domains-exclude-acs"]})
            await wait_until(reactor, lambda: all(p.locked_out for p in fleet.phones), timeout=15,
                             what="every phone locked out")
            assert all(p.spv_by_key[fips["parameter_key"]] == 1 for p in fips_phones)
            assert all(p.spv_by_key[rad["parameter_key"]] == 1 for p in rad_phones)
            assert all("FIPS" in (p.locked_out or "") for p in fips_phones)
            assert all("acs.example.net" in (p.locked_out or "") for p in rad_phones)
            sessions = [p.sessions_completed for p in fleet.phones]
            informs = {d.device_id: d.last_inform for d in server.store.list_devices(limit=100)}
            await sleep(reactor, 2 * INTERVAL + 0.5)  # two more periodic rounds: silence
            assert [p.sessions_completed for p in fleet.phones] == sessions
            assert {d.device_id: d.last_inform for d in server.store.list_devices(limit=100)} == informs
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=60)
