"""``acs-security simulate``: flags, errors, and a short run against the real ACS."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from acs_security.cli import build_parser
from acs_security.commands import UsageError
from acs_security.commands.simulate import fleet_options, run_simulation
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.faults import FaultKind
from acs_security.store.records import make_device_id
from tests.support import run_in_reactor


def parse(*argv: str):
    return build_parser().parse_args(["simulate", "--acs", "http://acs.example.net:7547/", *argv])


def test_options_from_flags_and_environment(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    args = parse("--phones", "5", "--models", "8851,cp-7841", "--models", "CP-6821-3PCC",
                 "--firmware", "12.0(1)", "--faults", "drop=0.5", "--resolve", "ACS.example.net:127.0.0.1",
                 "--resolve", "v6.example.net:[::1]", "--acs-password-file", str(secret),
                 "--udp-listen", "off", "--seed", "9")
    options = fleet_options(args, env={})
    assert options["models"] == ("CP-8851-3PCC", "CP-7841-3PCC", "CP-6821-3PCC")
    assert options["firmware"] == ("12.0(1)",)
    assert options["faults"].fraction(FaultKind.DROP) == 0.5
    assert options["resolve"] == {"acs.example.net": "127.0.0.1", "v6.example.net": "::1"}
    assert options["acs_password"] == "from-file" and options["udp_listen"] is None
    assert options["seed"] == 9 and options["cr_listen"] == "127.0.0.1:0"
    xmpp = fleet_options(parse("--phones", "2", "--xmpp", "0.5", "--xmpp-server", "127.0.0.1:5222",
                               "--xmpp-domain", "x.test", "--xmpp-allowed", "acs@x.test",
                               "--xmpp-allowed", "acs2@x.test/n1"), env={})
    assert (xmpp["xmpp"], xmpp["xmpp_server"], xmpp["xmpp_domain"], xmpp["xmpp_allowed"]) == (
        0.5, "127.0.0.1:5222", "x.test", ("acs@x.test", "acs2@x.test/n1"))
    assert "xmpp" not in options
    shared = fleet_options(parse("--phones", "1", "--cr-password-mode", "shared"),
                           env={"ACS_SIM_CR_PASSWORD": "crpw", "ACS_SIM_ACS_PASSWORD": "envpw"})
    assert shared["cr_password"] == "crpw" and shared["acs_password"] == "envpw"


@pytest.mark.parametrize("argv, words", [
    (("--phones", "0"), "--phones must be at least 1"),
    (("--phones", "1", "--faults", "slow=2"), "--faults: slow: fraction 2 is outside 0..1"),
    (("--phones", "1", "--models", "CP-0000"), "--models: unknown phone model 'CP-0000'"),
    (("--phones", "1", "--firmware", "newest"), "--firmware: 'newest' is not a version"),
    (("--phones", "1", "--resolve", "acs.example.net"), "--resolve: 'acs.example.net' is not HOST:ADDR"),
    (("--phones", "1", "--cr-listen", "8080"), "--cr-listen: '8080' is not HOST:PORT"),
    (("--phones", "1", "--cr-password-mode", "shared"), "needs --cr-password-file"),
    (("--phones", "1", "--inform-interval", "0.2"), "--inform-interval must be at least 1"),
    (("--phones", "1", "--acs-password-file", "/nonexistent/pw"), "--acs-password-file /nonexistent/pw"),
    (("--phones", "1", "--xmpp", "1.5"), "--xmpp must be a share of the phones from 0 to 1"),
    (("--phones", "1", "--xmpp", "0.5"), "--xmpp needs --xmpp-server HOST:PORT"),
    (("--phones", "1", "--xmpp", "0.5", "--xmpp-server", "127.0.0.1:5222", "--xmpp-allowed", "acs@"),
     "--xmpp-allowed: ConnReqAllowedJabberIDs entry 'acs@': empty domainpart"),
])
def test_bad_flags_are_usage_errors(argv, words):
    with pytest.raises(UsageError) as err:
        fleet_options(parse(*argv), env={})
    assert words in str(err.value)


def test_bad_acs_url():
    args = build_parser().parse_args(["simulate", "--acs", "acs.example.net", "--phones", "1"])
    with pytest.raises(UsageError, match="not an http"):
        fleet_options(args, env={})


def test_a_short_run_prints_status_and_summary_and_registers_cr_credentials(tmp_path: Path):
    db = f"sqlite:///{tmp_path}/acs.db"
    out = io.StringIO()

    async def go(reactor):
        server = AcsServer(config=load_config(environ={}, overrides={
            "db": db, "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0", "cpe_auth": False}),
            reactor=reactor)
        server.start()
        try:
            port = server.address("cwmp").port
            options = fleet_options(parse("--phones", "6", "--resolve", "acs.example.net:127.0.0.1",
                                          "--boot-ramp", "0.2", "--inform-interval", "1"), env={})
            options["acs_url"] = f"http://acs.example.net:{port}/"
            fleet = await run_simulation(reactor, options, out=out, status_interval=0.5,
                                         duration=2.5, cr_credentials_db=db)
            phone = fleet.phones[0]
            stored = server.store.get_connection_request_credential(
                make_device_id("00000C", phone.product_class, phone.serial))
            assert stored is not None and (stored.username, stored.password) == phone.cr_credentials()
        finally:
            await server.stop()

    run_in_reactor(go, timeout=30)
    text = out.getvalue()
    assert text.startswith("6 phones -> http://acs.example.net:")
    assert text.count("phones=6 in_session=") >= 4
    assert "6 connection-request credentials written to the ACS database" in text
    assert "informs: " in text and "1 BOOT=6" in text and "2 PERIODIC=" in text
    assert "sessions: " in text and "0 failed" in text
