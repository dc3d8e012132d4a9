"""Simulated phones' own client certificates and a connection per request: files, flags and
errors (no sockets; the TLS runs are tests/e2e/test_haproxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet import ssl
from twisted.internet.task import Clock

from acs_security.cli import build_parser
from acs_security.commands import UsageError
from acs_security.commands.simulate import fleet_options
from acs_security.sim.client_certs import DeviceCertificates
from acs_security.sim.fleet import FleetConfigError, SimulatedFleet


def parse(*argv: str):
    return build_parser().parse_args(["simulate", "--acs", "https://acs.example.net/", "--phones", "2", *argv])


def test_each_phone_gets_its_own_certificate_and_one_without_files_none(dev_pki):
    certs = DeviceCertificates(dev_pki["devices"])
    first, second = certs("SIM00000000"), certs("SIM00000001")
    assert isinstance(first, ssl.PrivateCertificate) and isinstance(second, ssl.PrivateCertificate)
    assert first.getSubject().commonName != second.getSubject().commonName
    assert b"SIM00000000" in first.getSubject().commonName
    assert certs("SIM00000000") is first  # loaded once
    assert certs("SIM99999999") is None


def test_unusable_certificate_files_are_named(tmp_path: Path):
    (tmp_path / "SIM00000000.pem").write_text("not a certificate\n")
    (tmp_path / "SIM00000000.key").write_text("not a key\n")
    with pytest.raises(ValueError, match="SIM00000000.pem"):
        DeviceCertificates(tmp_path)("SIM00000000")
    with pytest.raises(NotADirectoryError):
        DeviceCertificates(tmp_path / "missing")


def test_fleet_and_command_line_take_the_options(tmp_path: Path, dev_pki):
    with pytest.raises(FleetConfigError, match="client_cert_dir"):
        SimulatedFleet(Clock(), "https://acs.example.net/", phones=1, client_cert_dir=tmp_path / "missing")
    options = fleet_options(parse("--client-certs", str(dev_pki["devices"]), "--connection-per-request"), env={})
    assert options["client_cert_dir"] == dev_pki["devices"] and options["connection_per_request"] is True
    plain = fleet_options(parse(), env={})
    assert plain["client_cert_dir"] is None and plain["connection_per_request"] is False
    with pytest.raises(UsageError, match="--client-certs"):
        fleet_options(parse("--client-certs", str(tmp_path / "missing")), env={})
