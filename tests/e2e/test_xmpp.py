"""XMPP connection requests end to end (TR-069 Annex K, issue 15 item 5): a real Prosody
(the Debian package, started and stopped here on a loopback port), the real server with its
XMPP client, and simulated phones that log in to Prosody as their own accounts.

A push reaches the phones behind NAT without STUN by XMPP, the others by HTTP or UDP, and
the report names the method per phone. A wrong phone credential is refused by the phone
(not-authorized) and the report says so; a sender not on the phone's allow-list is refused
(service-unavailable); a Prosody restart is followed by the ACS and the phones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acs_security.connreq.methods import WakeResult
from acs_security.connreq.xmpp import XmppClient, XmppOptions
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from acs_security.sim.prosody import ProsodyProcess, find_prosody
from acs_security.sim.xmpp_phones import JABBER_ID
from tests.e2e.woken import HARDENING, RESOLVE, boot_with_credentials, device_id
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
DOMAIN = "xmpp.test"
ACS_JID = f"acs@{DOMAIN}"
ACS_PASSWORD = 'acs "xmpp" secret'


@pytest.fixture
def prosody(tmp_path: Path) -> Any:
    server = ProsodyProcess(find_prosody(), DOMAIN)
    server.add_account("acs", ACS_PASSWORD)
    server.add_account("intruder", "intruder-pw")
    try:
        yield server
    finally:
        server.close()


def xmpp_server(reactor: Any, tmp_path: Path, prosody: ProsodyProcess) -> AcsServer:
    pw = tmp_path / "xmpp.pw"
    pw.write_text(ACS_PASSWORD + "\n")
    settings = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
                "cpe_auth": False, "cr_session_wait": 10, "stun_listen": "127.0.0.1:0",
                "max_connections_per_ip": 0, "xmpp_server": f"127.0.0.1:{prosody.port}", "xmpp_jid": ACS_JID,
                "xmpp_password_file": str(pw), "xmpp_tls": "optional", "cr_timeout": 5}
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
    server.start()
    return server


def xmpp_fleet(reactor: Any, server: AcsServer, prosody: ProsodyProcess, phones: int, *, xmpp: float,
               nat: float = 0.0, **kwargs: Any) -> SimulatedFleet:
    assert server.stun is not None and server.stun.address is not None
    url = f"http://acs.example.net:{server.address('cwmp').port}/cwmp"
    options: dict[str, Any] = dict(
        phones=phones, resolve=RESOLVE, inform_interval=3600, boot_ramp_s=1.0, seed=5, cr_delay=(0.02, 0.1),
        retry_scale=0.02, cr_min_interval=0.2, nat=nat, stun_server=f"127.0.0.1:{server.stun.address[1]}",
        stun_keepalive=5, xmpp=xmpp, xmpp_server=f"127.0.0.1:{prosody.port}", xmpp_domain=DOMAIN,
        xmpp_allowed=(ACS_JID,))
    options.update(kwargs)
    fleet = SimulatedFleet(reactor, url, **options)
    for user, password in fleet.xmpp.accounts():
        prosody.add_account(user, password)
    return fleet


async def boot(reactor: Any, server: AcsServer, fleet: SimulatedFleet) -> None:
    """Boot the fleet, give the ACS the phones' connection-request credentials, and wait
    until every XMPP phone is logged in and the ACS knows its JID (and the NAT phones' bindings)."""
    await boot_with_credentials(reactor, server, fleet)
    xmpp_phones = [p for p in fleet.phones if p in fleet.xmpp]

    def ready() -> bool:
        if server.xmpp is None or not server.xmpp.connected or len(fleet.xmpp.logged_in) < len(xmpp_phones):
            return False
        targets = {d.device_id: d for d in server.store.target_devices()}
        return (all(targets[device_id(p)].xmpp_jid == p.value(JABBER_ID) for p in xmpp_phones)
                and all(targets[device_id(p)].udp_connection_request_address for p in fleet.nat_phones))

    await wait_until(reactor, ready, timeout=60, interval=0.2, what="XMPP logins and JIDs learnt")


async def push(reactor: Any, server: AcsServer) -> dict[str, Any]:
    assert server.service is not None and server.engine is not None
    result = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all"})
    job = server.engine.jobs[result["id"]]
    await wait_until(reactor, lambda: job.state == "completed", timeout=180, interval=0.2, what="push")
    await server.engine.flush()
    report = await server.service.job_report(job.id)
    assert isinstance(report, dict)
    return report


def expected_methods(fleet: SimulatedFleet) -> dict[str, str]:
    """Serial -> how the ACS should reach the phone (while the fleet runs: a stopped NAT has
    no phones)."""
    def method(phone: Any) -> str:
        if phone in fleet.nat:
            return "udp"  # a fresh STUN binding comes before XMPP (fleet/reach.py)
        return "xmpp" if phone in fleet.xmpp else "http"
    return {p.serial: method(p) for p in fleet.phones}


def test_push_reaches_phones_behind_nat_without_stun_by_xmpp(tmp_path: Path, prosody: ProsodyProcess) -> None:
    async def go(reactor: Any) -> Any:
        prosody.start()
        server = xmpp_server(reactor, tmp_path, prosody)
        await server.start_engine()
        fleet = xmpp_fleet(reactor, server, prosody, 150, xmpp=0.4, nat=0.2)
        try:
            await boot(reactor, server, fleet)
            periodic_before = sum(1 for p in fleet.phones if p.next_periodic <= reactor.seconds())
            methods = expected_methods(fleet)
            started = reactor.seconds()
            report = await push(reactor, server)
            elapsed = reactor.seconds() - started
            metrics = server.metrics.render().decode()
            return report, fleet, methods, periodic_before, elapsed, metrics
        finally:
            await fleet.stop()
            await server.stop()

    report, fleet, methods, periodic_before, elapsed, metrics = run_in_reactor(go, timeout=300, many_sockets=True)
    by_xmpp = {serial for serial, method in methods.items() if method == "xmpp"}
    assert 30 <= len(by_xmpp) <= 70, len(by_xmpp)  # 40 % drawn per phone, less those with STUN too
    assert periodic_before == 0
    devices = {d["serial_number"]: d for d in report["devices"]}
    assert len(devices) == 150 and report["job"]["state"] == "completed"
    assert all(d["state"] in ("applied", "applied_pending_reboot") for d in devices.values()), \
        {s: (d["state"], d["detail"]) for s, d in devices.items() if not d["state"].startswith("applied")}
    assert {s: d["reached_by"] for s, d in devices.items()} == methods
    key = report["job"]["parameter_key"]
    assert [p.spv_by_key[key] for p in fleet.phones] == [1] * 150
    assert fleet.stats.xmpp_accepted >= len(by_xmpp) and fleet.xmpp.answers["ok"] >= len(by_xmpp)
    assert f'acs_xmpp_requests_total{{outcome="ok"}} {float(fleet.xmpp.answers["ok"])}' in metrics
    assert "acs_xmpp_connected 1.0" in metrics and ACS_PASSWORD not in metrics
    print(f"\npush to 150 phones ({len(by_xmpp)} by XMPP): {elapsed:.1f} s; phones answered {dict(fleet.xmpp.answers)}")


def test_wrong_phone_credential_is_not_authorized(tmp_path: Path, prosody: ProsodyProcess) -> None:
    async def go(reactor: Any) -> Any:
        prosody.start()
        server = xmpp_server(reactor, tmp_path, prosody)
        await server.start_engine()
        fleet = xmpp_fleet(reactor, server, prosody, 4, xmpp=1.0)
        try:
            await boot(reactor, server, fleet)
            service, engine = server.service, server.engine
            assert service is not None and engine is not None
            victim = fleet.phones[0]
            server.store.put_connection_request_credential(device_id(victim), victim.cr_credentials()[0], "wrong")
            result = await service.submit_job({"policy": HARDENING.read_text(), "select": "all"})
            job = engine.jobs[result["id"]]

            async def detail() -> str:
                report = await service.job_report(job.id)
                assert isinstance(report, dict)
                row = next(d for d in report["devices"] if d["serial_number"] == victim.serial)
                return f"{row['state']}: {row['detail']}"

            seen: list[str] = []
            await wait_until(reactor, lambda: fleet.xmpp.answers["not-authorized"] >= 1, timeout=60, interval=0.2,
                             what="the phone's not-authorized")
            await engine.flush()
            for _ in range(50):
                seen.append(await detail())
                if "not-authorized" in seen[-1]:
                    break
                await sleep(reactor, 0.2)
            others = fleet.phones[1:]
            await wait_until(reactor, lambda: all(p.spv_by_key for p in others), timeout=60, what="the others")
            return seen, victim.spv_by_key, dict(fleet.xmpp.answers)
        finally:
            await fleet.stop()
            await server.stop()

    seen, victim_spv, answers = run_in_reactor(go, timeout=180)
    assert "xmpp: not-authorized" in seen[-1], seen
    assert victim_spv == {}  # the phone refused: no session, nothing applied
    assert answers["not-authorized"] >= 1 and answers["ok"] >= 3


def test_sender_not_on_the_allow_list_is_refused(tmp_path: Path, prosody: ProsodyProcess) -> None:
    async def go(reactor: Any) -> Any:
        prosody.start()
        server = xmpp_server(reactor, tmp_path, prosody)
        await server.start_engine()
        fleet = xmpp_fleet(reactor, server, prosody, 2, xmpp=1.0)
        intruder = XmppClient(reactor, f"intruder@{DOMAIN}", "intruder-pw", prosody.address,
                              options=XmppOptions(tls_required=False, request_timeout=5))
        try:
            await boot(reactor, server, fleet)
            intruder.start()
            await wait_until(reactor, lambda: intruder.connected, timeout=30, what="intruder login")
            phone = fleet.phones[0]
            sessions = phone.sessions_completed
            refused = await intruder.request(phone.value(JABBER_ID), *phone.cr_credentials())
            assert server.xmpp is not None
            accepted = await server.xmpp.request(phone.value(JABBER_ID), *phone.cr_credentials())
            await wait_until(reactor, lambda: phone.sessions_completed > sessions, timeout=30, what="session")
            return refused, accepted, dict(fleet.xmpp.answers), fleet.stats.xmpp_accepted
        finally:
            intruder.stop()
            await fleet.stop()
            await server.stop()

    refused, accepted, answers, xmpp_accepted = run_in_reactor(go, timeout=120)
    assert refused == WakeResult(False, "service-unavailable")
    assert accepted == WakeResult(True)
    assert answers == {"service-unavailable": 1, "ok": 1} and xmpp_accepted == 1


def test_prosody_restart_is_followed(tmp_path: Path, prosody: ProsodyProcess) -> None:
    async def go(reactor: Any) -> Any:
        prosody.start()
        server = xmpp_server(reactor, tmp_path, prosody)
        await server.start_engine()
        fleet = xmpp_fleet(reactor, server, prosody, 20, xmpp=0.5)
        try:
            await boot(reactor, server, fleet)
            client = server.xmpp
            assert client is not None and client.logins == 1
            phone_logins = fleet.xmpp.logins
            prosody.restart()
            n = len(fleet.xmpp)
            await wait_until(reactor, lambda: client.logins == 2 and client.connected
                             and fleet.xmpp.logins >= phone_logins + n and len(fleet.xmpp.logged_in) == n,
                             timeout=60, interval=0.2, what="reconnects after the restart")
            methods = expected_methods(fleet)
            report = await push(reactor, server)
            return report, fleet, methods
        finally:
            await fleet.stop()
            await server.stop()

    report, fleet, methods = run_in_reactor(go, timeout=180)
    devices = {d["serial_number"]: d for d in report["devices"]}
    assert all(d["state"] in ("applied", "applied_pending_reboot") for d in devices.values())
    assert list(methods.values()).count("xmpp") == len(fleet.xmpp) > 0
    assert {s: d["reached_by"] for s, d in devices.items()} == methods


def self_signed(domain: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` (the XMPP service's name, RFC 6120 section 13.7.2.1)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_starttls_with_a_self_signed_certificate(tmp_path: Path, prosody: ProsodyProcess) -> None:
    """TLS required (the default): the ACS starts TLS, checks Prosody's certificate against
    xmpp_ca_file and the JID's domain, and then logs in; the requests go over TLS."""
    cert, key = self_signed(DOMAIN)
    prosody.use_tls(cert, key, require=True)
    (tmp_path / "xmpp-ca.pem").write_bytes(cert)
    (tmp_path / "xmpp.pw").write_text(ACS_PASSWORD + "\n")

    async def go(reactor: Any) -> Any:
        prosody.start()
        settings = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
                    "api_listen": "127.0.0.1:0", "stun_listen": "127.0.0.1:0",
                    "xmpp_server": f"127.0.0.1:{prosody.port}", "xmpp_jid": ACS_JID,
                    "xmpp_password_file": str(tmp_path / "xmpp.pw"), "xmpp_ca_file": str(tmp_path / "xmpp-ca.pem")}
        config = load_config(environ={}, overrides=settings)
        assert config.xmpp_tls == "required"
        server = AcsServer(config=config, reactor=reactor)
        server.start()
        try:
            client = server.xmpp
            assert client is not None
            await wait_until(reactor, lambda: client.connected, timeout=30, what="XMPP login over TLS")
            transport = client._stream.transport if client._stream is not None else None
            # nobody is logged in as this phone: Prosody answers for it (RFC 6120 section 10.5.3.2)
            result = await client.request(f"nobody@{DOMAIN}/cwmp", "u", "p")
            return getattr(transport, "TLS", False), result
        finally:
            await server.stop()

    over_tls, result = run_in_reactor(go, timeout=60)
    assert over_tls is True
    assert result == WakeResult(False, "service-unavailable")
