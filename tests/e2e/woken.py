"""What the end-to-end tests of the wake-up methods share (test_nat: HTTP and UDP through
the STUN server; test_xmpp: XMPP): the policy pushed, the phones' ACS host name, the device
id of a simulated phone, and booting a fleet whose credentials the ACS then knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acs_security.server.app import AcsServer
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.support import wait_until

__all__ = ["HARDENING", "RESOLVE", "boot_with_credentials", "device_id"]

REPO = Path(__file__).resolve().parents[2]
HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"
RESOLVE = {"acs.example.net": "127.0.0.1"}


def device_id(phone: Any) -> str:
    return make_device_id(phone.value("Device.DeviceInfo.ManufacturerOUI"), phone.product_class, phone.serial)


async def boot_with_credentials(reactor: Any, server: AcsServer, fleet: SimulatedFleet) -> None:
    """Boot the fleet, wait for every phone's boot Inform, then give the ACS each phone's
    own connection-request credential (what an operator's import does)."""
    await fleet.start()
    n = len(fleet.phones)
    await wait_until(reactor, lambda: sum(1 for p in fleet.phones if p.sessions_completed) >= n,
                     timeout=90, what="boot informs")
    for phone in fleet.phones:
        server.store.put_connection_request_credential(device_id(phone), *phone.cr_credentials())
