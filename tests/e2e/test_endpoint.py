"""The CWMP endpoint over real loopback sockets: HTTP, HTTPS, mutual TLS, curl, the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from OpenSSL.SSL import Error as TLSError
from treq.client import HTTPClient
from twisted.internet import ssl
from twisted.internet.threads import deferToThreadPool
from twisted.web.client import Agent
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from acs_security import certs
from acs_security.cli import main as cli_main
from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import parse_envelope
from acs_security.httpauth.basic import basic_authorization
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.store import open_store
from acs_security.store.records import make_device_id
from tests.server.harness import inform
from tests.support import BytesProducer, run_in_reactor

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


def config(tmp_path: Path, **overrides):
    base = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
            "api_listen": "127.0.0.1:0", "cpe_auth": False}
    base.update(overrides)
    return load_config(environ={}, overrides=base)


async def post(client, url, body, headers=None):
    resp = await client.post(url, data=BytesProducer(body), headers=headers or {})
    return resp.code, resp, await resp.content()


def test_inform_then_204_over_loopback_and_devices_from_the_cli(tmp_path, capsys):
    async def go(reactor):
        server = AcsServer(config=config(tmp_path), reactor=reactor)
        server.start()
        client = HTTPClient(Agent(reactor))
        try:
            code, _, content = await post(client, server.url("cwmp"), inform(events=("0 BOOTSTRAP", "1 BOOT")))
            assert code == 200 and isinstance(parse_envelope(content).message, m.InformResponse)
            code, _, content = await post(client, server.url("cwmp"), b"")
            assert (code, content) == (204, b"")
            api = server.url("api").rstrip("/")
            token = server.issue_token("e2e", "viewer")
            rc = await deferToThreadPool(reactor, reactor.getThreadPool(), cli_main,
                                         ["devices", "list", "--server", api, "--json", "--token", token])
            assert rc == 0
            rc = await deferToThreadPool(reactor, reactor.getThreadPool(), cli_main,
                                         ["devices", "show", make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1"),
                                          "--server", api, "--json", "--token", token])
            assert rc == 0
        finally:
            await server.stop()

    run_in_reactor(go)
    out = capsys.readouterr().out
    listing, shown = out.split("\n}\n", 1)
    data = json.loads(listing + "\n}")
    assert data["total"] == 1 and data["devices"][0]["serial_number"] == "FCH2231A0B1"
    device = json.loads(shown)
    assert device["parameters"]["Device.DeviceInfo.SoftwareVersion"]["value"] == "sip88xx.12-0-1MPP-1"


def test_curl_posts_an_inform_and_gets_a_schema_valid_response_then_204(tmp_path, bbf_dir):
    from tests.cwmp.xsd import CwmpSchemas  # the schema helper of the codec tests

    sample = (REPO / "tests" / "data" / "inform-boot.xml").read_bytes()

    async def go(reactor):
        server = AcsServer(config=config(tmp_path), reactor=reactor)
        server.start()
        jar = tmp_path / "jar"
        url = server.url("cwmp")

        def curl(*args):
            return subprocess.run(["curl", "-s", "-S", "-c", str(jar), "-b", str(jar), *args, url],
                                  capture_output=True, timeout=20, check=True).stdout

        try:
            pool = reactor.getThreadPool()
            first = await deferToThreadPool(reactor, pool, curl, "-H", "Content-Type: text/xml",
                                            "--data-binary", f"@{tmp_path / 'inform.xml'}")
            second = await deferToThreadPool(reactor, pool, curl, "-X", "POST", "--data-binary", "",
                                             "-w", "%{http_code}")
        finally:
            await server.stop()
        return first, second

    (tmp_path / "inform.xml").write_bytes(sample)
    first, second = run_in_reactor(go)
    env = parse_envelope(first)
    assert isinstance(env.message, m.InformResponse)
    CwmpSchemas(bbf_dir).assert_valid(first, env.namespace)
    assert second == b"204"


def test_oversized_body_refused_with_413_and_server_keeps_serving(tmp_path):
    async def go(reactor):
        server = AcsServer(config=config(tmp_path), reactor=reactor)
        server.start()
        ep = server.address("cwmp")

        def huge():
            with socket.create_connection((ep.host, ep.port), timeout=10) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                          b"Content-Length: 52428800\r\n\r\n" + b"<" * 65536)
                return s.recv(200)

        try:
            head = await deferToThreadPool(reactor, reactor.getThreadPool(), huge)
            assert head.startswith(b"HTTP/1.1 413")
            code, _, _ = await post(HTTPClient(Agent(reactor)), server.url("cwmp"), inform())
            assert code == 200
        finally:
            await server.stop()

    run_in_reactor(go)


# -- TLS ---------------------------------------------------------------------------------


def write_pki(tmp_path: Path):
    ca, ca_key = certs.make_ca("acs-security test CA", now=NOW)
    server, server_key = certs.make_server_cert(ca, ca_key, cn="localhost", sans=certs.LOOPBACK_SANS, now=NOW)
    files = {}
    for name, obj in (("ca.pem", ca), ("server.pem", server), ("server.key", server_key)):
        path = tmp_path / name
        path.write_bytes(certs.pem_bytes(obj))
        files[name] = path
    devices = {}
    for serial in ("FCH2231A0B1", "FCH0000OTHR"):
        cert, key = certs.make_device_cert(ca, ca_key, serial, now=NOW)
        devices[serial] = (cert, key)
    return ca, files, devices


@implementer(IPolicyForHTTPS)
class ClientTLS:
    """Trust the test CA; present a client certificate when given one."""

    def __init__(self, ca, client=None):
        self.ca = ssl.Certificate.loadPEM(certs.pem_bytes(ca))
        self.client = None
        if client is not None:
            cert, key = client
            pem = certs.pem_bytes(cert) + key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            self.client = ssl.PrivateCertificate.loadPEM(pem)

    def creatorForNetloc(self, hostname, port):  # noqa: N802
        return ssl.optionsForClientTLS(hostname.decode(), trustRoot=self.ca, clientCertificate=self.client)


def https_server(tmp_path, reactor, files, **extra):
    cfg = config(tmp_path, cwmp_listen="off", https_listen="127.0.0.1:0",
                 tls_cert=str(files["server.pem"]), tls_key=str(files["server.key"]), **extra)
    server = AcsServer(config=cfg, reactor=reactor)
    server.start()
    port = server.address("cwmps").port
    return server, f"https://localhost:{port}/"


def test_basic_authentication_over_tls(tmp_path):
    ca, files, _ = write_pki(tmp_path)
    store = open_store(f"sqlite:///{tmp_path}/acs.db")
    store.put_cpe_credential("*", "fleet", "fleet-pass")
    store.close()

    async def go(reactor):
        server, url = https_server(tmp_path, reactor, files, cpe_auth=True)
        client = HTTPClient(Agent(reactor, contextFactory=ClientTLS(ca)))
        try:
            code, resp, _ = await post(client, url, inform())
            assert code == 401
            assert any(v.startswith("Basic") for v in resp.headers.getRawHeaders("WWW-Authenticate"))
            code, _, _ = await post(client, url, inform(), {"Authorization": basic_authorization("fleet", "bad")})
            assert code == 401
            code, _, _ = await post(client, url, inform(),
                                    {"Authorization": basic_authorization("fleet", "fleet-pass")})
            assert code == 200
            assert (await post(client, url, b""))[0] == 204
        finally:
            await server.stop()

    run_in_reactor(go)


def test_mutual_tls_certificate_must_belong_to_the_informing_device(tmp_path):
    ca, files, devices = write_pki(tmp_path)

    async def go(reactor):
        server, url = https_server(tmp_path, reactor, files, cpe_auth=True, client_ca=str(files["ca.pem"]))
        try:
            own = HTTPClient(Agent(reactor, contextFactory=ClientTLS(ca, devices["FCH2231A0B1"])))
            code, _, _ = await post(own, url, inform())
            assert code == 200
            assert (await post(own, url, b""))[0] == 204

            other = HTTPClient(Agent(reactor, contextFactory=ClientTLS(ca, devices["FCH0000OTHR"])))
            code, _, _ = await post(other, url, inform())
            assert code == 403

            anonymous = HTTPClient(Agent(reactor, contextFactory=ClientTLS(ca)))
            with pytest.raises(Exception) as exc:
                await post(anonymous, url, inform())
            assert "SSL" in repr(exc.value) or "TLS" in repr(exc.value) or isinstance(exc.value, TLSError)
        finally:
            await server.stop()

    run_in_reactor(go)
    store = open_store(f"sqlite:///{tmp_path}/acs.db")
    assert store.count_devices() == 1
    store.close()
