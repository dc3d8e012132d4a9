"""deploy/haproxy.cfg is the generator's output, the tests' HAProxy differs from it only in
addresses, ports and file paths, real HAProxy accepts both, and the nodes of compose.yaml
believe exactly what that HAProxy sends (PROXY v2 on the CWMP port, X-Forwarded-For on the
API). The HAProxy runs themselves are in tests/e2e/test_haproxy.py and test_cluster.py."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from acs_security.cli import main
from acs_security.deploy_config import (
    COMPOSE_LAYOUT,
    HaproxyLayout,
    HaproxyNode,
    LayoutError,
    parse_node,
    render_haproxy,
)
from acs_security.server.config import load_config
from acs_security.sim.haproxy import HaproxyError, HaproxyProcess, loopback_layout
from tests.test_deploy import DEPLOY, NODES, compose, directive, haproxy_sections, node_environ

HAPROXY_CFG = DEPLOY / "haproxy.cfg"
# What may differ between two renderings: a [host]:port, a bare port, an absolute path.
_VARIABLE = re.compile(r"(?:[\w.\-\[\]]*:\d+|\d+|/\S+)")


def loopback(tmp_path: Path, mtls: bool = False) -> HaproxyLayout:
    nodes = [HaproxyNode(name, "127.0.0.1", 40000 + i, 40100 + i, 40200 + i) for i, name in enumerate(NODES)]
    return loopback_layout(nodes, crt=tmp_path / "acs.pem", stats_socket=tmp_path / "admin.sock", mtls=mtls)


def differences(a: str, b: str) -> list[tuple[str, str]]:
    """The word pairs in which two configurations differ; AssertionError when they differ in
    anything else than words (line count, word count per line)."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    assert len(lines_a) == len(lines_b), "the configurations have different line counts"
    out: list[tuple[str, str]] = []
    for la, lb in zip(lines_a, lines_b, strict=True):
        wa, wb = la.split(), lb.split()
        assert len(wa) == len(wb), f"{la!r} / {lb!r}"
        out.extend((x, y) for x, y in zip(wa, wb, strict=True) if x != y)
    return out


def uncomment_mtls(text: str) -> str:
    """deploy/haproxy.cfg with its commented-out passthrough sections active."""
    head, sep, tail = text.partition("# frontend cwmp_mtls")
    assert sep, "the passthrough example is in the file"
    return head + re.sub(r"^# ?", "", sep + tail, flags=re.M)


def test_haproxy_cfg_is_the_command_output(capsys):
    assert main(["config", "haproxy"]) == 0
    printed = capsys.readouterr().out
    assert printed == render_haproxy(COMPOSE_LAYOUT)
    assert HAPROXY_CFG.read_text() == printed, "regenerate: acs-security config haproxy > deploy/haproxy.cfg"


@pytest.mark.parametrize("mtls", [False, True])
def test_the_tests_haproxy_differs_from_deploy_only_in_addresses_ports_and_paths(tmp_path, mtls):
    deployed = HAPROXY_CFG.read_text()
    if mtls:
        deployed = uncomment_mtls(deployed)
    tested = render_haproxy(loopback(tmp_path, mtls=mtls))
    changed = differences(deployed, tested)
    assert changed, "the loopback layout changes the addresses"
    for deployed_word, tested_word in changed:
        assert _VARIABLE.fullmatch(deployed_word) and _VARIABLE.fullmatch(tested_word), (deployed_word, tested_word)
    # Everything that decides behaviour is in both: the cookie, the checks, PROXY v2, TLS.
    for needle in ("cookie ACSNODE insert indirect nocache", "send-proxy-v2", "option forwardfor",
                   "http-reuse never", "option httpchk GET /readyz", "ssl crt", "option redispatch"):
        assert needle in tested and needle in deployed


def test_the_comparison_catches_a_changed_directive(tmp_path):
    tested = render_haproxy(loopback(tmp_path)).replace("http-reuse never", "http-reuse safe")
    changed = differences(HAPROXY_CFG.read_text(), tested)
    assert ("never", "safe") in changed and not _VARIABLE.fullmatch("safe")


def test_real_haproxy_accepts_the_deploy_and_the_loopback_configurations(tmp_path, haproxy_bin, dev_pki):
    # deploy/haproxy.cfg with only its file paths moved here (the node names do not resolve
    # outside compose: init-addr "none" lets HAProxy start with them unresolved).
    deployed = (HAPROXY_CFG.read_text().replace(COMPOSE_LAYOUT.crt, str(dev_pki["crt"]))
                .replace(COMPOSE_LAYOUT.stats_socket, str(tmp_path / "admin.sock")))
    for name, text in (("deploy", deployed), ("deploy-mtls", uncomment_mtls(deployed))):
        (tmp_path / f"{name}.cfg").write_text(text)
        out = HaproxyProcess.check_file(haproxy_bin, tmp_path / f"{name}.cfg")
        assert "Configuration file is valid" in out, out
        warnings = [line for line in out.splitlines() if "[WARNING]" in line]
        assert warnings and all(re.search(r"could not resolve address 'acs[12]'", w) for w in warnings), out
    for mtls in (False, True):
        layout = loopback_layout([HaproxyNode(n, "127.0.0.1") for n in NODES], crt=dev_pki["crt"],
                                 stats_socket=tmp_path / f"l{mtls}" / "admin.sock", mtls=mtls)
        out = HaproxyProcess(haproxy_bin, layout, log=tmp_path / "log").check()
        assert "Configuration file is valid" in out and "[WARNING]" not in out, out
    # And refuses a broken one, with HAProxy's reason.
    (tmp_path / "bad.cfg").write_text(deployed.replace("balance roundrobin", "balance sometimes", 1))
    with pytest.raises(HaproxyError, match="balance only supports"):
        HaproxyProcess.check_file(haproxy_bin, tmp_path / "bad.cfg")


def test_compose_nodes_believe_exactly_what_haproxy_sends():
    haproxy = compose()["services"]["haproxy"]
    proxy_address = haproxy["networks"]["default"]["ipv4_address"]
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(subnet)
    backends = {k.split()[1]: v for k, v in haproxy_sections().items() if k.startswith("backend ")}
    sends_proxy = {name for name, lines in backends.items()
                   if all("send-proxy-v2" in s for s in directive(lines, "server"))}
    forwards = {name for name, lines in backends.items() if ["option", "forwardfor"] in directive(lines, "option")}
    assert sends_proxy == {"acs_cwmp"} and forwards == {"acs_api"}
    for name in NODES:
        cfg = load_config(environ=node_environ(name))
        assert proxy_address in cfg.trusted_proxies
        assert cfg.proxy_protocol == ("cwmp",), "the CWMP port requires the header HAProxy sends"
        # The health checks go to the API port, which takes no PROXY header.
        assert "api" not in cfg.proxy_protocol


@pytest.mark.parametrize("text, message", [
    ("acs1", "is not NAME=HOST"),
    ("acs1=h:70000", "not a port"),
    ("a b=h", "node name"),
    ("acs1=h:1:2:3:4", "is not NAME=HOST"),
])
def test_bad_node_is_refused_with_the_reason(text, message):
    with pytest.raises(LayoutError, match=message):
        parse_node(text)


def test_config_haproxy_command_takes_nodes_and_refuses_bad_layouts(capsys):
    assert main(["config", "haproxy", "--node", "n1=10.0.0.1:8000:8001:8002", "--node", "n2=[2001:db8::1]",
                 "--cwmp-bind", "0.0.0.0:4443", "--mtls"]) == 0
    out = capsys.readouterr().out
    assert "server n1 10.0.0.1:8000 cookie n1 check port 8001" in out
    assert "server n2 [2001:db8::1]:7547 cookie n2 check port 7557" in out
    assert "\n    server n1 10.0.0.1:8002 check port 8001" in out  # the passthrough, active
    assert "bind 0.0.0.0:4443 ssl crt" in out
    assert main(["config", "haproxy", "--node", "x=h", "--node", "x=g"]) == 2
    assert "distinct" in capsys.readouterr().err
    assert main(["config", "haproxy", "--crt", "/a b"]) == 2
    assert "usable path" in capsys.readouterr().err
