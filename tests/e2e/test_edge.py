"""The listeners' edge over real loopback sockets: slowloris and never-ending bodies closed
on time while simulated phones are served, connection caps, a CPE without cookies dropping
its connection, and the phone's real address through PROXY headers and X-Forwarded-For.

127.0.0.2 and 127.0.0.3 (Linux routes all of 127.0.0.0/8 to loopback) stand for hosts other
than the proxy at 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThread

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.records import make_device_id
from tests.e2e.raw import Attack, connect, http_post
from tests.server.harness import body_message, inform
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
PARAM = "Device.X_CISCO_SecuritySettings.TLSCipherList"


def _second_loopback_usable() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


needs_loopback_net = pytest.mark.skipif(not _second_loopback_usable(),
                                        reason="127.0.0.2 cannot be bound here (loopback is not a /8)")


def start(reactor: Any, tmp_path: Path, provisioner: Any = None, observer: Any = None, **settings: Any) -> AcsServer:
    base = {"db": f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
            "cpe_auth": False}
    base.update(settings)
    server = AcsServer(config=load_config(environ={}, overrides=base), reactor=reactor,
                       provisioner=provisioner, session_observer=observer)
    server.start()
    return server


def counter(server: AcsServer, name: str, **labels: str) -> float:
    value = server.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


# -- slowloris ----------------------------------------------------------------------------

SLOW_HEADERS, CHUNKED = 300, 40
HEADER_TIMEOUT = BODY_TIMEOUT = 3.0


def span(start: float | None, end: float | None) -> float:
    """The time between two instants of a finished connection (raw.Dripper sets both)."""
    assert start is not None and end is not None
    return end - start


def test_slow_headers_and_endless_bodies_are_closed_on_time_while_phones_are_served(tmp_path):
    """Hundreds of connections sending a header byte every half second, and dozens of chunked
    bodies that never end, reconnecting whenever they are closed: each is closed by the
    server within its deadline (Twisted's own timeout would restart with every byte), and
    30 simulated phones boot and complete their sessions meanwhile."""

    async def go(reactor: Any) -> None:
        server = start(reactor, tmp_path, header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT,
                       max_connections=2000, max_connections_per_ip=0)
        port = server.address("cwmp").port
        slow = Attack(reactor, port, SLOW_HEADERS, b"POST /cwmp HTTP/1.1\r\nHost: acs\r\nX-Slow: ", b"a", 0.5)
        endless = Attack(reactor, port, CHUNKED, b"POST /cwmp HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\na\r\n", 0.5)
        fleet = SimulatedFleet(reactor, f"http://127.0.0.1:{port}/cwmp", phones=30, inform_interval=3600,
                               boot_ramp_s=1.0, seed=3, retry_scale=0.05)
        try:
            slow.start()
            endless.start()
            counts = server.connection_counts["cwmp"]
            await wait_until(reactor, lambda: counts.open >= SLOW_HEADERS + CHUNKED, timeout=60,
                             what="the attack's connections")
            # A first generation closed by the server and replaced: the attack is in full swing.
            await wait_until(reactor, lambda: len(slow.finished) >= SLOW_HEADERS
                             and len(endless.finished) >= CHUNKED, timeout=60, what="the first closures")
            await fleet.start()
            await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones), timeout=120,
                             what="the phones' boot sessions")
            # The attack was still holding its connections when the phones were done.
            assert len(slow.live) + len(endless.live) >= (SLOW_HEADERS + CHUNKED) // 2
            assert fleet.stats.sessions_failed == 0, fleet.stats.failures
            assert server.store.count_devices() == 30
            slow.stop()
            endless.stop()
            await wait_until(reactor, lambda: not slow.live and not endless.live, timeout=60,
                             what="the server to close the last attack connections")
        finally:
            slow.stop()
            endless.stop()
            await fleet.stop()
            await server.stop()
        for attack, limit in ((slow, HEADER_TIMEOUT), (endless, BODY_TIMEOUT)):
            # Never before the deadline: counted from when the connection was asked for, which
            # is before the server accepted it (this side's connectionMade may run later on a
            # busy reactor and make a lifetime look short). After the deadline by no more than
            # a busy machine's delay (without the deadlines these connections would stay open
            # as long as they drip).
            earliest = min(span(c.requested, c.ended) for c in attack.finished)
            lifetimes = sorted(span(c.opened, c.ended) for c in attack.finished)
            assert earliest >= limit - 0.05, lifetimes[:5]
            assert lifetimes[-1] <= limit + 10, lifetimes[-5:]
            assert all(c.data.startswith(b"HTTP/1.1 408 ") for c in attack.finished)
        assert counter(server, "acs_http_connections_closed_total", listener="cwmp",
                       reason="header_timeout") >= len(slow.finished)
        assert counter(server, "acs_http_connections_closed_total", listener="cwmp",
                       reason="body_timeout") >= len(endless.finished)

    run_in_reactor(go, timeout=300, many_sockets=True)


# -- connection caps ----------------------------------------------------------------------


@needs_loopback_net
def test_per_address_cap_refuses_with_503_and_serves_other_addresses(tmp_path):
    async def go(reactor: Any) -> None:
        server = start(reactor, tmp_path, max_connections_per_ip=5, max_connections=50, retry_after=13)
        port = server.address("cwmp").port
        held = []
        try:
            for _ in range(5):
                held.append(await connect(reactor, port, source="127.0.0.2"))
            counts = server.connection_counts["cwmp"]
            await wait_until(reactor, lambda: counts.of("127.0.0.2") == 5, timeout=30, what="5 connections")
            extra = await connect(reactor, port, source="127.0.0.2")
            extra.send(http_post(inform()))
            answer = await extra.response(1)
            assert answer.status == 503 and answer.headers["retry-after"] == "13"
            await extra.closed
            # Another address is served meanwhile.
            phone = await connect(reactor, port, source="127.0.0.3")
            phone.send(http_post(inform()))
            assert (await phone.response(1)).status == 200
            phone.close()
            assert counter(server, "acs_http_connections_refused_total", listener="cwmp",
                           reason="max_connections_per_ip") == 1
        finally:
            for c in held:
                c.close()
            await server.stop()

    run_in_reactor(go)


def test_total_cap_refuses_with_503_and_admits_again_once_a_connection_closes(tmp_path):
    async def go(reactor: Any) -> None:
        server = start(reactor, tmp_path, max_connections=10, max_connections_per_ip=0)
        port = server.address("cwmp").port
        held = [await connect(reactor, port) for _ in range(10)]
        counts = server.connection_counts["cwmp"]
        try:
            await wait_until(reactor, lambda: counts.open == 10, timeout=30, what="10 connections")
            extra = await connect(reactor, port)
            extra.send(http_post(inform()))
            assert (await extra.response(1)).status == 503
            await extra.closed
            held.pop().close()
            await wait_until(reactor, lambda: counts.open == 9, timeout=30, what="a free place")
            phone = await connect(reactor, port)
            phone.send(http_post(inform()))
            assert (await phone.response(1)).status == 200
            phone.close()
            # The management API has its own count: operators get in while phones fill theirs.
            api = await connect(reactor, server.address("api").port)
            api.send(b"GET /healthz HTTP/1.1\r\nHost: acs\r\n\r\n")
            assert (await api.response(1)).status == 200
            api.close()
        finally:
            for c in held:
                c.close()
            await server.stop()

    run_in_reactor(go)


# -- a CPE without cookies drops its connection mid-session ------------------------------


class OneRequest:
    """A provisioner that asks every device for one parameter."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    async def session_started(self, ctx: Any) -> None:
        ctx.provisioner_state = "ask"

    async def next_request(self, ctx: Any) -> Any:
        if ctx.provisioner_state != "ask":
            return None
        ctx.provisioner_state = "asked"
        return m.GetParameterValues((PARAM,))

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        ctx.provisioner_state = "answered"

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        self.ended.append((ctx.device_id, outcome))


def gpv_reply(content: bytes) -> bytes:
    env = parse_envelope(content)
    assert env is not None
    assert isinstance(env.message, m.GetParameterValues)
    return build_envelope(m.GetParameterValuesResponse((m.ParameterValue(PARAM, "HIGH", "string"),)),
                          namespace=CWMP_1_0, cwmp_id=env.cwmp_id)


def test_a_cookieless_cpe_that_drops_its_connection_is_released_at_once_and_a_cookie_cpe_is_not(tmp_path):
    dev_a = make_device_id("00000C", "CP-8851-3PCC", "FCH0000NOCK")
    dev_b = make_device_id("00000C", "CP-8851-3PCC", "FCH0000COOK")

    async def go(reactor: Any) -> None:
        prov = OneRequest()
        server = start(reactor, tmp_path, provisioner=prov, session_timeout=30)
        port = server.address("cwmp").port
        try:
            # A CPE that never returns the cookie: its session is its connection.
            a = await connect(reactor, port)
            a.send(http_post(inform("FCH0000NOCK")))
            assert (await a.response(1)).status == 200
            a.send(http_post(b""))
            assert isinstance(body_message((await a.response(2)).body), m.GetParameterValues)
            a.close()
            await wait_until(reactor, lambda: (dev_a, "disconnected") in prov.ended, timeout=30,
                             what="the session to end with its connection")
            again = await connect(reactor, port)
            again.send(http_post(inform("FCH0000NOCK", events=("1 BOOT",))))
            assert (await again.response(1)).status == 200, "the device is not refused until the timeout"
            again.close()

            # A CPE returning the cookie may carry on over a new connection (TR-069 3.4.1).
            b = await connect(reactor, port)
            b.send(http_post(inform("FCH0000COOK")))
            first = await b.response(1)
            cookie = first.headers["set-cookie"].split(";")[0]
            b.send(http_post(b"", headers={"Cookie": cookie}))
            asked = await b.response(2)
            b.close()
            await b.closed
            other = await connect(reactor, port)
            other.send(http_post(inform("FCH0000COOK")))
            assert (await other.response(1)).status == 503, "its session is still on"
            resumed = await connect(reactor, port)
            resumed.send(http_post(gpv_reply(asked.body), headers={"Cookie": cookie}))
            assert (await resumed.response(1)).status == 204
            resumed.close()
            assert (dev_b, "done") in prov.ended and (dev_b, "disconnected") not in prov.ended
            assert counter(server, "acs_cwmp_sessions_total", outcome="disconnected") >= 1
        finally:
            await server.stop()

    run_in_reactor(go)


# -- the phone's address behind a proxy ---------------------------------------------------


def proxy_v2(source: str, sport: int, dest: str = "127.0.0.1", dport: int = 7547) -> bytes:
    block = socket.inet_aton(source) + socket.inet_aton(dest) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(block)) + block


@needs_loopback_net
def test_proxy_protocol_gives_the_registry_and_the_log_the_phones_address_and_forged_headers_are_refused(tmp_path):
    dev = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")

    async def go(reactor: Any) -> None:
        sessions: list[dict[str, Any]] = []
        server = start(reactor, tmp_path, observer=sessions.append, proxy_protocol="cwmp",
                       trusted_proxies="127.0.0.1, 10.0.0.0/8")
        port = server.address("cwmp").port
        try:
            # From the proxy: a v2 header naming the phone, then the phone's HTTP.
            c = await connect(reactor, port)
            c.send(proxy_v2("203.0.113.77", 40001) + http_post(inform()))
            assert (await c.response(1)).status == 200
            c.send(http_post(b""))
            assert (await c.response(2)).status == 204
            c.close()
            assert server.store.get_device(dev).remote_address == "203.0.113.77"
            await wait_until(reactor, lambda: any(s.get("outcome") == "done" for s in sessions), timeout=10)
            assert [s["remote"] for s in sessions if s.get("outcome") == "done"] == ["203.0.113.77"]

            # A PROXY header from a host that is not a trusted proxy: closed, unanswered.
            forged = await connect(reactor, port, source="127.0.0.2")
            forged.send(b"PROXY TCP4 10.9.9.9 127.0.0.1 40002 7547\r\n" + http_post(inform("FCH0000FAKE")))
            await forged.closed
            # From the proxy without a header where one is required: closed, unanswered.
            bare = await connect(reactor, port)
            bare.send(http_post(inform("FCH0000BARE")))
            await bare.closed
            assert forged.data == bare.data == b""
            assert server.store.count_devices() == 1
            for reason in ("proxy_untrusted", "proxy_invalid"):
                assert counter(server, "acs_http_connections_refused_total", listener="cwmp", reason=reason) == 1
            # The API listener needs no header (proxy_protocol names only cwmp).
            api = await connect(reactor, server.address("api").port)
            api.send(b"GET /healthz HTTP/1.1\r\nHost: acs\r\n\r\n")
            assert (await api.response(1)).status == 200
            api.close()
        finally:
            await server.stop()

    run_in_reactor(go)


@needs_loopback_net
def test_x_forwarded_for_is_believed_from_trusted_proxies_only(tmp_path):
    async def go(reactor: Any) -> None:
        server = start(reactor, tmp_path, trusted_proxies="127.0.0.1")
        port = server.address("cwmp").port
        try:
            via_proxy = await connect(reactor, port)
            # The phone forged the first entry; the proxy appended the address it saw.
            via_proxy.send(http_post(inform("FCH00000XFF"), headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.20"}))
            assert (await via_proxy.response(1)).status == 200
            via_proxy.close()
            direct = await connect(reactor, port, source="127.0.0.2")
            direct.send(http_post(inform("FCH0000DIRE"), headers={"X-Forwarded-For": "198.51.100.21"}))
            assert (await direct.response(1)).status == 200
            direct.close()
            addresses = {d.serial_number: d.remote_address for d in server.store.list_devices()}
            assert addresses == {"FCH00000XFF": "198.51.100.20", "FCH0000DIRE": "127.0.0.2"}
        finally:
            await server.stop()

    run_in_reactor(go)


def test_proxy_header_before_tls_on_the_https_listener(tmp_path):
    """TCP passthrough for client certificates: HAProxy sends the PROXY header, then the
    phone's TLS handshake follows on the same connection (proxy_protocol = https)."""
    from tests.e2e.test_endpoint import write_pki

    _, files, _ = write_pki(tmp_path)
    dev = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")

    def phone_through_proxy(port: int) -> bytes:
        ctx = ssl.create_default_context(cafile=str(files["ca.pem"]))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(b"PROXY TCP4 192.0.2.61 127.0.0.1 40003 7548\r\n")
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(http_post(inform(), headers={"Connection": "close"}))
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        return data

    async def go(reactor: Any) -> None:
        server = start(reactor, tmp_path, cwmp_listen="off", https_listen="127.0.0.1:0",
                       tls_cert=str(files["server.pem"]), tls_key=str(files["server.key"]),
                       proxy_protocol="https", trusted_proxies="127.0.0.1")
        try:
            data = await deferToThread(phone_through_proxy, server.address("cwmps").port)
            assert data.startswith(b"HTTP/1.1 200 ")
            assert server.store.get_device(dev).remote_address == "192.0.2.61"
        finally:
            await server.stop()

    run_in_reactor(go)
