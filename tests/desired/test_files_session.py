"""Assignments whose phones take a setting only from cfg.xml: the assignment's own cfg.xml
Download, concluded by the phone's TransferComplete. The real CWMP endpoint, file endpoint
and store (SQLite in memory), scripted phones that fetch their file over in-memory HTTP, a
fake clock: no sockets, no time."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from acs_security.desired.composite import CompositeProvisioner
from acs_security.desired.live import LiveAssignments
from acs_security.desired.session import DesiredSide
from acs_security.files.offers import FileOffers
from acs_security.files.tokens import FileSigner
from acs_security.fleet.engine import FleetEngine
from acs_security.mapping import load_catalogue, parse_cfgxml
from acs_security.mapping.paths import datamodel_dir
from acs_security.policy.document import parse_policy
from tests.fleet.test_transfers import World

FIREWALL = "Device.X_CISCO_SecuritySettings.Firewall"
PING = "Device.X_CISCO_SecuritySettings.FirewallOptions"
HARD = '[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'


class DesiredWorld(World):
    """The job engine's world (tests/fleet/test_transfers.py) with the assignments' side
    after the engine, as the server composes them."""

    def new_engine(self) -> FleetEngine:
        engine = super().new_engine()
        self.restart_side()
        self.engine = engine
        return engine

    def restart_side(self) -> None:
        """A new desired side, as after a restart of the server: nothing in memory."""
        engine = getattr(self, "engine", None) or self.h.resource._provisioner
        offers = FileOffers(store=self.ds, signer=FileSigner(b"s" * 32), clock=self.clock,
                            base_url="http://acs.example.net:7547", ttl=60, transfer_timeout=600, fetch_wait=30)
        self.live = LiveAssignments(self.ds, self.clock, catalogue=self.catalogue)
        self.side = DesiredSide(self.live, store=self.ds, clock=self.clock, node="n1", files=offers)
        self.h.resource._provisioner = CompositeProvisioner([engine, self.side])
        if getattr(self, "assigned", False):
            self.run(self.live.refresh())

    def assign(self, text: str = HARD) -> Any:
        policy = parse_policy(text.encode(), source="hard.toml")
        rec = self.store.create_assignment(name="hard", policy=policy.to_json(), policy_name="hard.toml",
                                           selector="all", priority=0, mode="enforce")
        self.assigned = True
        self.run(self.live.refresh())
        return rec

    def row(self, serial: str) -> Any:
        (row,) = self.store.device_rows(self.device(serial))
        return row


@pytest.fixture
def world(tmp_path):
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides", "examples"))
    (target / "overrides").mkdir()
    (target / "overrides" / "78xx.toml").write_text('product_class = "CP-78??-3PCC"\n'
                                                   'cfgxml_only = ["Firewall_Config"]\n')
    w = DesiredWorld(load_catalogue(target))
    yield w
    w.h.close()


def test_the_assignments_file_is_installed_and_concluded_by_the_transfer_complete_across_a_restart(world):
    a = world.assign()
    phones = world.phones
    phones.boot_after.add("P1")
    for serial in ("P0", "P1"):
        world.run(phones.session(serial, "2 PERIODIC"))
        # SetParameterValues of what the phone has a parameter for, then the file, then
        # notification on the parameter only (the file's setting has none to notify).
        assert phones.spv[serial] == [f"acs-des-{a.id}-r1"] and phones.notified[serial] == [FIREWALL]
        [download] = phones.downloads[serial]
        assert download.command_key.startswith(f"acs-des-{a.id}-r1.")
        assert download.file_type == "3 Vendor Configuration File"
        row = world.row(serial)
        assert row.state == "unknown" and "under way" in row.detail
    [body] = phones.fetched["P0"]
    assert set(parse_cfgxml(body).values) == {"Firewall_Config"}
    world.restart_side()  # nothing of the transfer in memory: the TransferComplete names it
    world.advance(3)
    p0, p1 = world.row("P0"), world.row("P1")
    assert (p0.state, p1.state) == ("applied", "applied")
    assert p0.detail == "applied 1 setting(s) by a cfg.xml Download: Firewall_Config"
    assert p1.detail.startswith("applied 1 setting(s) by a cfg.xml Download after a reboot")
    known = world.store.device_parameters(world.device("P0"))
    assert known[PING][0] == "NO_ICMP_PING" and known[FIREWALL][0] == "Enabled"
    first = world.store.device_file(world.device("P0"), kind="download")
    assert first.state == "completed" and world.store.get_file(first.id).content is None
    # Settled: the next sessions send nothing; a repeated TransferComplete changes nothing.
    phones.pending["P0"] = [(first.command_key, 9018)]
    world.run(phones.session("P0", "2 PERIODIC"))
    world.run(phones.session("P0", "2 PERIODIC"))
    assert len(phones.downloads["P0"]) == 1 and len(phones.spv["P0"]) == 1
    assert world.row("P0").state == "applied" and world.store.get_file(first.id).fault_code is None


def test_a_refused_file_faults_the_row_and_is_not_offered_again_at_once(world):
    world.assign()
    world.phones.mode.update({"P2": "bad-file", "P3": "refuse"})
    for serial in ("P2", "P3"):
        world.run(world.phones.session(serial, "2 PERIODIC"))
    world.advance(3)
    bad, refused = world.row("P2"), world.row("P3")
    assert bad.state == "faulted" and bad.detail == "cfg.xml Download failed: fault 9018 file corrupted"
    assert bad.faults == ({"name": "cfg.xml", "code": 9018, "string": "file corrupted"},)
    assert refused.state == "faulted" and "refused the cfg.xml Download: fault 9000" in refused.detail
    assert PING not in world.store.device_parameters(world.device("P2"))  # not installed: not known
    assert world.store.device_file(world.device("P3"), kind="download").state == "failed"
    for serial in ("P2", "P3"):
        world.run(world.phones.session(serial, "2 PERIODIC"))
        assert len(world.phones.downloads[serial]) == 1


def test_a_download_still_out_is_waited_for_and_one_never_fetched_is_withdrawn_then_offered_again(world):
    world.assign()
    world.phones.mode["P0"] = "deaf"  # takes the Download, never fetches it
    world.run(world.phones.session("P0", "2 PERIODIC"))
    world.run(world.phones.session("P0", "2 PERIODIC"))
    assert len(world.phones.downloads["P0"]) == 1  # not sent twice
    row = world.row("P0")
    assert row.state == "unknown" and "offered: waiting for its TransferComplete" in row.detail
    first = world.store.device_file(world.device("P0"), kind="download")
    world.advance(31)  # fetch_wait
    world.phones.mode["P0"] = "ok"
    world.run(world.phones.session("P0", "2 PERIODIC"))
    assert len(world.phones.downloads["P0"]) == 2
    assert world.store.get_file(first.id).state == "expired"  # its URL no longer opens anything
    world.advance(3)
    assert world.row("P0").state == "applied"
