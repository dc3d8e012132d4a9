"""The XMPP sender of a job node: built from the settings, counted in the metrics (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from acs_security.connreq.methods import WakeResult
from acs_security.server.config import ConfigError, load_config
from acs_security.server.metrics import AcsMetrics
from acs_security.server.xmpp_side import start_xmpp, xmpp_outcome
from tests.connreq.test_xmpp_client import PHONE, Server


def _config(tmp_path: Path, password: str = "acs-secret\n", **extra: str):
    pw = tmp_path / "xmpp.pw"
    pw.write_text(password)
    return load_config(environ={}, overrides={"xmpp_server": "127.0.0.1:5999", "xmpp_jid": "acs@xmpp.test",
                                              "xmpp_password_file": str(pw), "xmpp_tls": "optional", **extra})


def test_off_without_settings() -> None:
    assert start_xmpp(load_config(environ={}), MemoryReactorClock(), AcsMetrics()) is None


def test_started_client_counts_outcomes_and_connection(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    metrics = AcsMetrics()
    xmpp = start_xmpp(_config(tmp_path), reactor, metrics)
    assert xmpp is not None and reactor.tcpClients[0][:2] == ("127.0.0.1", 5999)
    assert b"acs_xmpp_connected 0.0" in metrics.render()
    s = Server(reactor)
    s.login()  # the password read from the file, without its newline
    assert b"acs_xmpp_connected 1.0" in metrics.render()
    got: list[WakeResult] = []
    xmpp.request(PHONE, "u", "p").addCallback(got.append)
    s.take()
    reactor.advance(60)
    assert got == [WakeResult(False, "timeout")]
    text = metrics.render().decode()
    assert 'acs_xmpp_requests_total{outcome="timeout"} 1.0' in text
    assert 'acs_connection_requests_total{method="xmpp",result="error"} 1.0' in text
    assert "acs-secret" not in text
    xmpp.stop()
    assert b"acs_xmpp_connected 0.0" in metrics.render()


def test_unreadable_or_empty_password_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path, password="\n")
    with pytest.raises(ConfigError, match="xmpp_password_file .*: empty"):
        start_xmpp(cfg, MemoryReactorClock(), AcsMetrics())
    (tmp_path / "xmpp.pw").unlink()
    with pytest.raises(ConfigError, match="xmpp_password_file .*No such file"):
        start_xmpp(cfg, MemoryReactorClock(), AcsMetrics())


def test_bad_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(ConfigError, match="xmpp_ca_file .*not a PEM certificate"):
        start_xmpp(_config(tmp_path, xmpp_ca_file=str(ca)), MemoryReactorClock(), AcsMetrics())


@pytest.mark.parametrize(("result", "label"), [
    (WakeResult(True), "ok"), (WakeResult(False, "timeout"), "timeout"),
    (WakeResult(False, "not connected"), "not_connected"), (WakeResult(False, "not-authorized"), "not-authorized"),
    (WakeResult(False, "bad JID: x"), "bad_jid"), (WakeResult(False, "made-up-by-a-phone"), "error"),
])
def test_outcome_labels_are_bounded(result: WakeResult, label: str) -> None:
    assert xmpp_outcome(result) == label
