"""The simulator against the project's own CWMP endpoint over loopback sockets."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import ssl
from twisted.internet.protocol import DatagramProtocol
from twisted.web.client import Agent
from twisted.web.resource import Resource
from twisted.web.server import Site

from acs_security import certs
from acs_security.connreq.http_client import HttpConnectionRequester, ResultKind
from acs_security.connreq.udp_client import UdpConnectionRequester
from acs_security.cwmp import messages as m
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from acs_security.sim.lockout import AcsTlsFacts
from acs_security.store.records import make_device_id
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
MS = "Device.ManagementServer."
SEC = "Device.X_CISCO_SecuritySettings."
RESTRICTED = "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains"
RESOLVE = {"acs.example.net": "127.0.0.1"}


class FileServer(Resource):
    """Serves fixed files by path; 404 for the rest."""

    isLeaf = True

    def __init__(self, files: dict[bytes, bytes]) -> None:
        super().__init__()
        self.files = files

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - Twisted's interface name
        body = self.files.get(request.path)
        if body is None:
            request.setResponseCode(404)
            return b"not here"
        return body


class Scripted:
    """A provisioner that sends the requests queued per device id and keeps the answers."""

    def __init__(self) -> None:
        self.plan: dict[str, list[m.Message]] = {}
        self.answers: list[tuple[str, m.Message, m.Message]] = []
        self.sessions: list[tuple[str, tuple[str, ...], str]] = []

    async def session_started(self, ctx: Any) -> None:
        return None

    async def next_request(self, ctx: Any) -> m.Message | None:
        queue = self.plan.get(ctx.device_id) or []
        return queue.pop(0) if queue else None

    async def handle_response(self, ctx: Any, request: m.Message, response: m.Message) -> None:
        self.answers.append((ctx.device_id, request, response))

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        self.sessions.append((ctx.device_id, ctx.inform.event_codes if ctx.inform else (), outcome))


def acs_server(reactor: Any, tmp_path: Path, provisioner: Any = None, **overrides: Any) -> AcsServer:
    # Thousands of simulated phones share 127.0.0.1: no per-address connection cap.
    settings = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
                "api_listen": "127.0.0.1:0", "cpe_auth": False, "max_connections_per_ip": 0}
    settings.update(overrides)
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor,
                       provisioner=provisioner)
    server.start()
    return server


def acs_url(server: AcsServer, name: str = "cwmp") -> str:
    scheme = "https" if name == "cwmps" else "http"
    return f"{scheme}://acs.example.net:{server.address(name).port}/cwmp"


def device_id(phone: Any) -> str:
    return make_device_id("00000C", phone.product_class, phone.serial)


def fleet_for(reactor: Any, url: str, phones: int, **kwargs: Any) -> SimulatedFleet:
    options: dict[str, Any] = dict(phones=phones, resolve=RESOLVE, inform_interval=300,
                                   boot_ramp_s=0.2, seed=11, cr_delay=(0.05, 0.1),
                                   retry_scale=0.02)
    options.update(kwargs)
    return SimulatedFleet(reactor, url, **options)


def test_boot_informs_are_registered_with_model_firmware_and_cr_url(tmp_path):
    async def go(reactor):
        server = acs_server(reactor, tmp_path)
        fleet = fleet_for(reactor, acs_url(server), 12)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones),
                             timeout=15, what="boot sessions")
            await sleep(reactor, 0.2)  # the store commits in its thread
            store = server.store
            assert store.count_devices() == 12
            for phone in fleet.phones:
                device = store.get_device(device_id(phone))
                assert device is not None and device.events == ("0 BOOTSTRAP", "1 BOOT")
                assert device.software_version == phone.params["Device.DeviceInfo.SoftwareVersion"]
                assert device.connection_request_url == fleet.connection_request_url(phone.serial)
                assert device.udp_connection_request_address == fleet.udp_address
                assert device.parameter_key == ""
            assert fleet.stats.sessions_ok == 12 and fleet.stats.sessions_failed == 0
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_set_parameter_values_mix_gets_exactly_the_phones_faults(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        fleet = fleet_for(reactor, acs_url(server), 2, models=("CP-6821-3PCC",),
                          firmware=("11.3(7)",))
        phone = fleet.phones[0]
        did = device_id(phone)
        bad_mix = m.SetParameterValues((
            m.ParameterValue(SEC + "TLSMinVersion", "TLS 1.2", "string"),
            m.ParameterValue("Device.X_CISCO_VPNSettings.VPNServer", "vpn.example.net", "string"),
            m.ParameterValue(MS + "PeriodicInformInterval", "600", "string"),
            m.ParameterValue("Device.X_CISCO_Ext.1.SIPTransport", "SCTP", "string"),
            m.ParameterValue(MS + "ParameterKey", "mine", "string"),
        ), "try-1")
        good = m.SetParameterValues((
            m.ParameterValue(SEC + "TLSMinVersion", "TLS 1.2", "string"),
            m.ParameterValue("Device.X_CISCO_Ext.2.SIPTransport", "TLS", "string"),
        ), "try-2")
        provisioner.plan[did] = [bad_mix, good]
        try:
            await fleet.start()
            await wait_until(reactor, lambda: len(provisioner.answers) == 2, timeout=15,
                             what="both answers")
            (_, _, fault), (_, _, ok) = provisioner.answers
            assert isinstance(fault, m.Fault) and fault.code == 9003
            assert [(f.name, f.code) for f in fault.set_parameter_values_faults] == [
                ("Device.X_CISCO_VPNSettings.VPNServer", 9005),  # the 6821 has no VPN (seed 001)
                (MS + "PeriodicInformInterval", 9006),
                ("Device.X_CISCO_Ext.1.SIPTransport", 9007),
                (MS + "ParameterKey", 9008),
            ]
            assert ok == m.SetParameterValuesResponse(0)
            assert phone.spv_by_key == {"try-1": 1, "try-2": 1}
            assert phone.params[SEC + "TLSMinVersion"] == "TLS 1.2"
            assert phone.params["Device.X_CISCO_Ext.1.SIPTransport"] == "UDP"  # untouched
            # The ACS sees the new ParameterKey in the phone's next Inform.
            assert fleet.inform_now(phone.serial, "6 CONNECTION REQUEST")
            await wait_until(reactor, lambda: phone.sessions_completed >= 2, timeout=10)
            await sleep(reactor, 0.2)
            assert server.store.get_device(did).parameter_key == "try-2"
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_http_connection_requests_wrong_credentials_refused_right_ones_start_a_session(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        fleet = fleet_for(reactor, acs_url(server), 3)
        requester = HttpConnectionRequester(Agent(reactor), reactor, timeout=5,
                                            nonce_source=random.Random(3).randbytes)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones),
                             timeout=15)
            await sleep(reactor, 0.2)
            phone = fleet.phones[1]
            did = device_id(phone)
            user, password = fleet.connection_request_credentials(phone.serial)
            # What an operator does: the ACS keeps the phone's CR credentials.
            server.store.put_connection_request_credential(did, user, password)
            url = server.store.get_device(did).connection_request_url
            wrong = await requester.request(url, user, password + "x")
            assert wrong.kind is ResultKind.AUTH_FAILED
            other = fleet.connection_request_credentials(fleet.phones[0].serial)
            assert (await requester.request(url, *other)).kind is ResultKind.AUTH_FAILED
            assert phone.sessions_completed == 1
            stored = server.store.get_connection_request_credential(did)
            started = reactor.seconds()
            right = await requester.request(url, stored.username, stored.password)
            assert right.kind is ResultKind.ACCEPTED and right.auth in ("digest-SHA-256", "digest-MD5")
            await wait_until(reactor, lambda: (did, ("6 CONNECTION REQUEST",), "done")
                             in provisioner.sessions, timeout=5, what="CR session")
            assert reactor.seconds() - started < 2.0
            assert fleet.stats.cr_accepted == 1 and fleet.stats.cr_refused["auth"] == 2
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_udp_connection_requests_bad_signature_and_replays_ignored(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        fleet = fleet_for(reactor, acs_url(server), 2, cr_min_interval=0.0)
        sender = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        udp = UdpConnectionRequester(sender, reactor, first_id=1000, repeat=3, interval=0.05,
                                     nonce_source=random.Random(4).randbytes)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones),
                             timeout=15)
            await sleep(reactor, 0.2)
            phone = fleet.phones[0]
            did = device_id(phone)
            address = server.store.get_device(did).udp_connection_request_address
            user, password = fleet.connection_request_credentials(phone.serial)
            await udp.send(address, user, "not-the-password")
            await sleep(reactor, 0.3)
            assert fleet.stats.udp_ignored["bad_signature"] == 3 and fleet.stats.udp_accepted == 0
            assert phone.sessions_completed == 1
            await udp.send(address, user, password)
            await wait_until(reactor, lambda: (did, ("6 CONNECTION REQUEST",), "done")
                             in provisioner.sessions, timeout=5)
            # The three copies carry one id: the first acts, the other two are replays.
            await wait_until(reactor, lambda: fleet.stats.udp_ignored["replayed_id"] == 2,
                             timeout=2, what="the two copies")
            assert fleet.stats.udp_accepted == 1
        finally:
            await sender.stopListening()
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_fips_and_restricted_domain_lockouts_happen(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        fleet = fleet_for(reactor, acs_url(server), 3, firmware=("12.0(1)",), inform_interval=1,
                          jitter=0.0)
        fips, restricted, allowed = fleet.phones
        provisioner.plan[device_id(fips)] = [m.SetParameterValues(
            (m.ParameterValue(SEC + "FIPSMode", "Yes", "string"),), "fips-on")]
        provisioner.plan[device_id(restricted)] = [m.SetParameterValues(
            (m.ParameterValue(RESTRICTED, "sip.example.net,prov.example.net", "string"),), "rd")]
        provisioner.plan[device_id(allowed)] = [m.SetParameterValues(
            (m.ParameterValue(RESTRICTED, "acs.example.net,sip.example.net", "string"),), "rd")]
        try:
            await fleet.start()
            await wait_until(reactor, lambda: len(provisioner.answers) == 3, timeout=15)
            assert [a for _, _, a in provisioner.answers].count(m.SetParameterValuesResponse(0)) == 2
            assert m.SetParameterValuesResponse(1) in [a for _, _, a in provisioner.answers]
            await sleep(reactor, 3.2)  # three more periodic intervals
            assert fips.locked_out is not None and "FIPS" in fips.locked_out
            assert restricted.locked_out is not None and "acs.example.net" in restricted.locked_out
            assert allowed.locked_out is None and allowed.sessions_completed >= 3
            assert fips.sessions_completed == 1 and restricted.sessions_completed == 1
            seen = {d for d, _, _ in provisioner.sessions}
            assert len([s for s in provisioner.sessions if s[0] == device_id(fips)]) == 1
            assert device_id(allowed) in seen
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def _tls_listener(reactor: Any, server: AcsServer, tmp_path: Path) -> tuple[Any, bytes]:
    now = datetime.now(UTC)
    ca, ca_key = certs.make_ca("Sim Test CA", now=now)
    cert, key = certs.make_server_cert(ca, ca_key, cn="acs.example.net", now=now)
    # pyOpenSSL takes cryptography's keys and certificates; Twisted's hints name only its own.
    options = ssl.CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=cert,  # type: ignore[arg-type]
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        lowerMaximumSecurityTo=ssl.TLSVersion.TLSv1_2,  # an ACS that speaks TLS 1.2 at most
    )
    # The ACS's own CWMP site, behind TLS (a tcp.Port has it; IListeningPort does not say so).
    site = server.ports["cwmp"].factory  # type: ignore[attr-defined]
    port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
    return port, certs.pem_bytes(ca)


def test_tls_settings_pushed_by_the_acs_break_the_real_handshake(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        port, ca_pem = _tls_listener(reactor, server, tmp_path)
        url = f"https://acs.example.net:{port.getHost().port}/cwmp"
        fleet = fleet_for(reactor, url, 8, trust_ca_pem=ca_pem,
                          acs_tls=AcsTlsFacts(max_version="TLS 1.2"))
        new = next(p for p in fleet.phones if "12-0-1" in p.table.software_version)
        old = next(p for p in fleet.phones if "11-3-7" in p.table.software_version)
        control = next(p for p in fleet.phones if p not in (new, old))
        provisioner.plan[device_id(new)] = [m.SetParameterValues(
            (m.ParameterValue(SEC + "TLSClientMinVersion", "TLS 1.3", "string"),), "tls13")]
        # RSA-authenticated suites only, against an ACS with an ECDSA certificate.
        provisioner.plan[device_id(old)] = [m.SetParameterValues(
            (m.ParameterValue(SEC + "TLSCipherList", "aRSA", "string"),), "rsa")]
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones)
                             and len(provisioner.answers) == 2, timeout=20, what="boots over TLS")
            for phone in (new, old, control):
                assert fleet.inform_now(phone.serial)
            await wait_until(reactor, lambda: control.sessions_completed == 2
                             and new.sessions_failed and old.sessions_failed, timeout=10)
            assert new.locked_out == ("TLS minimum version TLS 1.3 is above the ACS's highest "
                                      "version TLS 1.2 (protocol alert, seed 000 TLS Min Version table)")
            assert old.locked_out is not None and old.locked_out.startswith("TLS handshake failed")
            assert control.locked_out is None
            assert fleet.stats.failures["TLS handshake failed"] == 2
        finally:
            await fleet.stop()
            await port.stopListening()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_cpe_digest_authentication_towards_the_acs(tmp_path):
    async def go(reactor):
        server = acs_server(reactor, tmp_path, cpe_auth=True)
        server.store.put_cpe_credential("*", "cpe", "fleet-secret")
        good = fleet_for(reactor, acs_url(server), 2, acs_password="fleet-secret")
        bad = fleet_for(reactor, acs_url(server), 1, acs_password="wrong", serial_prefix="BAD",
                        cr_listen=None, udp_listen=None)
        try:
            await good.start()
            await bad.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in good.phones)
                             and bad.phones[0].sessions_failed, timeout=15)
            assert bad.phones[0].sessions_completed == 0
            assert bad.stats.failures["the ACS refused the phone's credentials"] >= 1
        finally:
            await good.stop()
            await bad.stop()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_download_of_a_cfg_xml_is_applied_and_reported_with_transfer_complete(tmp_path):
    provisioner = Scripted()

    async def go(reactor):
        server = acs_server(reactor, tmp_path, provisioner)
        files = FileServer({b"/phone.xml": b"<flat-profile><TLS_Cipher_List>HIGH</TLS_Cipher_List>"
                                           b"</flat-profile>"})
        file_port = reactor.listenTCP(0, Site(files), interface="127.0.0.1")
        fleet = fleet_for(reactor, acs_url(server), 1, reboot_delay=0.1)
        phone = fleet.phones[0]
        base = f"http://127.0.0.1:{file_port.getHost().port}"
        provisioner.plan[device_id(phone)] = [
            m.Download("cfg-1", "3 Vendor Configuration File", f"{base}/phone.xml"),
            m.Download("cfg-2", "3 Vendor Configuration File", f"{base}/missing.xml"),
        ]
        try:
            await fleet.start()
            await wait_until(reactor, lambda: len(server.store.list_transfer_completes(device_id(phone))) == 2,
                             timeout=15, what="two TransferCompletes")
            done = {t.command_key: t.fault_code for t in server.store.list_transfer_completes(device_id(phone))}
            assert done == {"cfg-1": 0, "cfg-2": 9016}
            assert phone.params[SEC + "TLSCipherList"] == "HIGH"
            # The session that delivered the TransferComplete is logged when it ends, which
            # may be a moment after the store has the record.
            await wait_until(reactor, lambda: any(
                "7 TRANSFER COMPLETE" in e and "M Download" in e
                for d, e, _ in provisioner.sessions if d == device_id(phone)), timeout=10,
                what="the TransferComplete session's events")
        finally:
            await fleet.stop()
            await file_port.stopListening()
            await server.stop()

    run_in_reactor(go, timeout=40)


def test_two_thousand_phones_complete_a_full_periodic_round(tmp_path):
    async def go(reactor):
        server = acs_server(reactor, tmp_path)
        fleet = fleet_for(reactor, acs_url(server), 2000, inform_interval=4, boot_ramp_s=2.0,
                          cr_listen=None, udp_listen=None)
        try:
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed >= 2 for p in fleet.phones),
                             timeout=45, interval=0.2, what="boot and one periodic Inform each")
            assert fleet.stats.informs["1 BOOT"] == 2000
            assert fleet.stats.informs["2 PERIODIC"] >= 2000
            assert fleet.stats.sessions_failed == 0
            await sleep(reactor, 0.3)
            assert server.store.count_devices() == 2000
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=60)
