"""Time limits and connection caps of a listener, driven with real HTTP bytes through the real
EdgeFactory, Site and channel over StringTransports, on a fake clock."""

from __future__ import annotations

import struct

import pytest
from twisted.web import server
from twisted.web.resource import Resource

from acs_security.server.edge import LINGER, ConnectionCounts
from tests.server.wire import Wire, request


class Echo(Resource):
    """Answers with the client address it sees; POST bodies are counted; ``hold`` keeps
    requests unanswered until released."""

    isLeaf = True

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.hold = hold
        self.held: list = []
        self.seen = 0

    def render_GET(self, request):  # noqa: N802 - twisted.web's method name
        self.seen += 1
        if self.hold:
            self.held.append(request)
            return server.NOT_DONE_YET
        return request.getClientAddress().host.encode()

    def render_POST(self, request):  # noqa: N802 - twisted.web's method name
        self.seen += 1
        return b"%d bytes" % len(request.content.read())


def get(headers=None):
    return request("GET", headers=headers)


# -- deadlines ----------------------------------------------------------------------------


def test_header_bytes_do_not_move_the_header_deadline():
    w = Wire(Echo(), header_timeout=10)
    c = w.connect()
    for piece in (b"GET / HTTP/1.1\r\n", b"Ho", b"st", b": a", b"\r\n", b"X-A: 1\r\n", b"X-B", b": 2"):
        c.send(piece)
        w.clock.advance(1.2)
    assert not c.closing
    w.clock.advance(10 - 8 * 1.2 - 0.01)
    assert not c.closing
    w.clock.advance(0.02)
    assert c.closing
    [answer] = c.responses()
    assert answer.status == 408 and answer.headers["connection"] == "close"
    assert w.events == [("closed", "cwmp", "header_timeout")]


def test_a_silent_connection_is_closed_at_the_header_deadline_unanswered():
    w = Wire(Echo(), header_timeout=10)
    c = w.connect()
    w.clock.advance(9.99)
    assert not c.closing
    w.clock.advance(0.02)
    assert c.closing and c.output() == b""
    c.lose()
    assert w.counts.open == 0


def test_a_never_ending_chunked_body_is_closed_at_the_body_deadline():
    echo = Echo()
    w = Wire(echo, body_timeout=20)
    c = w.connect()
    c.send(request("POST", headers={"Transfer-Encoding": "chunked"}).replace(b"Content-Length: 0\r\n", b""))
    for _ in range(19):
        c.send(b"1\r\nx\r\n")
        w.clock.advance(1)
    assert not c.closing
    w.clock.advance(1)
    assert c.closing
    [answer] = c.responses()
    assert answer.status == 408
    assert echo.seen == 0, "the truncated request never reaches the resource"
    assert w.events == [("closed", "cwmp", "body_timeout")]


def test_a_body_in_time_is_served_and_its_deadline_cancelled():
    w = Wire(Echo(), body_timeout=20)
    c = w.connect()
    whole = request("POST", b"<x/>" * 10)
    c.send(whole[:-5])
    w.clock.advance(19)
    c.send(whole[-5:])
    [answer] = c.responses()
    assert (answer.status, answer.body) == (200, b"40 bytes")
    w.clock.advance(25)  # past the body deadline: nothing fires; the idle deadline is 30 s
    assert not c.closing and w.events == []


def test_a_kept_alive_connection_is_closed_after_idle_timeout_between_requests():
    w = Wire(Echo(), idle_timeout=30)
    c = w.connect()
    c.send(get())
    assert c.responses()[0].status == 200
    w.clock.advance(29)
    c.send(get())
    assert c.responses()[0].status == 200
    w.clock.advance(29.9)
    assert not c.closing
    w.clock.advance(0.2)
    assert c.closing and c.output() == b""
    assert w.events == [("closed", "cwmp", "idle_timeout")]


def test_the_next_requests_first_byte_starts_its_header_deadline():
    w = Wire(Echo(), header_timeout=10, idle_timeout=30)
    c = w.connect()
    c.send(get())
    c.responses()
    w.clock.advance(5)
    c.send(b"GET / HT")
    w.clock.advance(9.9)
    assert not c.closing
    w.clock.advance(0.2)
    assert c.closing and w.events == [("closed", "cwmp", "header_timeout")]


def test_no_deadline_runs_while_the_application_handles_a_request():
    echo = Echo(hold=True)
    w = Wire(echo, header_timeout=10, body_timeout=20, idle_timeout=30)
    c = w.connect()
    c.send(get())
    w.clock.advance(300)
    assert not c.closing
    [held] = echo.held
    held.setHeader(b"content-length", b"4")
    held.write(b"late")
    held.finish()
    assert c.responses()[0].body == b"late"
    w.clock.advance(30.1)
    assert c.closing and w.events == [("closed", "cwmp", "idle_timeout")]


def test_pipelined_request_waiting_behind_a_slow_one_gets_its_own_header_deadline():
    echo = Echo(hold=True)
    w = Wire(echo, header_timeout=10, idle_timeout=30)
    c = w.connect()
    c.send(get() + b"GET /next HTTP/1.1\r\nHo")  # the second request's head is incomplete
    w.clock.advance(60)
    echo.held[0].finish()
    w.clock.advance(9.9)
    assert not c.closing
    w.clock.advance(0.2)
    assert c.closing and w.events == [("closed", "cwmp", "header_timeout")]


# -- connection caps ----------------------------------------------------------------------


def test_total_cap_answers_503_with_retry_after_and_admits_again_once_one_closes():
    echo = Echo()
    w = Wire(echo, max_total=2)
    a, b = w.connect(port=1), w.connect(host="203.0.113.5", port=2)
    c = w.connect(host="192.0.2.99", port=3)
    [answer] = c.responses()
    assert answer.status == 503 and answer.headers["retry-after"] == "7"
    assert answer.headers["connection"] == "close" and c.closing
    c.send(get())  # drained, never served
    assert echo.seen == 0 and w.events == [("refused", "cwmp", "max_connections")]
    a.lose()
    d = w.connect(port=4)
    d.send(get())
    assert d.responses()[0].status == 200
    b.lose()
    d.lose()
    c.lose()
    assert w.counts.open == 0


def test_a_refused_connection_is_dropped_after_draining_for_linger_seconds():
    w = Wire(Echo(), max_total=1)
    w.connect()
    c = w.connect(port=2)
    assert w.counts.lingering == 1 and not c.transport.disconnected
    w.clock.advance(LINGER)
    assert c.transport.disconnected
    c.lose()
    assert w.counts.lingering == 0


def test_refusals_past_the_cap_of_lingering_ones_are_closed_at_once():
    w = Wire(Echo(), max_total=1)
    w.connect()
    draining = w.connect(port=2)
    assert draining.responses()[0].status == 503
    c = w.connect(port=3)  # lingering == max_total: no more answers held open
    assert c.output() == b"" and c.transport.disconnected


def test_total_cap_on_a_tls_listener_closes_without_an_answer():
    w = Wire(Echo(), max_total=1, answer_busy=False)
    w.connect()
    c = w.connect(port=2)
    assert c.output() == b"" and c.transport.disconnected
    assert w.events == [("refused", "cwmp", "max_connections")]


def test_per_address_cap():
    w = Wire(Echo(), per_ip=2)
    a, b = w.connect(port=1), w.connect(port=2)
    c = w.connect(port=3)
    assert c.responses()[0].status == 503
    other = w.connect(host="203.0.113.9")
    other.send(get())
    assert other.responses()[0].status == 200
    a.lose()
    c.lose()
    d = w.connect(port=4)
    d.send(get())
    assert d.responses()[0].status == 200
    assert w.events == [("refused", "cwmp", "max_connections_per_ip")]
    for conn in (b, other, d):
        conn.lose()
    assert w.counts.open == 0 and w.counts.of("198.51.100.7") == 0


def test_ipv6_clients_are_counted_per_64():
    w = Wire(Echo(), per_ip=2)
    w.connect("2001:db8:1:2::a")
    w.connect("2001:db8:1:2::b")
    assert w.connect("2001:db8:1:2:ffff::1").responses()[0].status == 503
    c = w.connect("2001:db8:1:3::1")
    c.send(get())
    assert c.responses()[0].status == 200


def test_ipv4_mapped_peers_count_as_their_ipv4_address():
    w = Wire(Echo(), per_ip=1)
    w.connect("198.51.100.7")
    assert w.connect("::ffff:198.51.100.7").responses()[0].status == 503


def test_per_address_cap_zero_means_no_cap():
    w = Wire(Echo(), per_ip=0, max_total=50)
    conns = [w.connect(port=p) for p in range(40)]
    conns[-1].send(get())
    assert conns[-1].responses()[0].status == 200


def test_counts_claim_moves_a_connection_between_addresses():
    counts = ConnectionCounts(10, 1)
    a, b = object(), object()
    assert counts.claim(a, "x") and not counts.claim(b, "x")
    assert counts.claim(a, "y") and counts.claim(b, "x")
    assert not counts.claim(a, "x") and counts.of("y") == 1
    counts.release(a)
    counts.release(b)
    assert counts.of("x") == counts.of("y") == 0


# -- PROXY protocol -----------------------------------------------------------------------

PROXY = "10.1.1.1"


def proxied(**kw):
    kw.setdefault("trusted", ("10.0.0.0/8",))
    return Wire(Echo(), proxy_protocol=True, **kw)


def v2_tcp4(src: str, sport: int, dst: str = "10.1.1.1", dport: int = 7547, *, command: int = 1,
            tlv: bytes = b"") -> bytes:
    import ipaddress

    block = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + struct.pack("!HH", sport, dport)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(block) + len(tlv))
            + block + tlv)


def test_proxy_v1_header_names_the_client():
    w = proxied()
    c = w.connect(PROXY)
    c.send(b"PROXY TCP4 192.0.2.33 10.1.1.1 51000 7547\r\n" + get())
    assert c.responses()[0].body == b"192.0.2.33"


def test_proxy_v2_header_fed_a_byte_at_a_time_names_the_client():
    w = proxied()
    c = w.connect(PROXY)
    for byte in v2_tcp4("192.0.2.34", 51001, tlv=b"\x04\x00\x02ab") + get():
        c.send(bytes([byte]))
    assert c.responses()[0].body == b"192.0.2.34"


def test_proxy_local_command_keeps_the_proxys_address():
    w = proxied()
    c = w.connect(PROXY)
    c.send(v2_tcp4("192.0.2.34", 1, command=0) + get())
    assert c.responses()[0].body == PROXY.encode()


def test_proxy_header_from_an_untrusted_peer_is_refused_unread():
    echo = Echo()
    w = Wire(echo, proxy_protocol=True, trusted=("10.0.0.0/8",))
    c = w.connect("192.0.2.66")
    c.send(b"PROXY TCP4 10.9.9.9 10.1.1.1 51000 7547\r\n" + get())
    assert c.transport.disconnected and c.output() == b"" and echo.seen == 0
    assert w.events == [("refused", "cwmp", "proxy_untrusted")]


def test_a_missing_proxy_header_is_refused_where_one_is_required():
    echo = Echo()
    w = Wire(echo, proxy_protocol=True, trusted=("10.0.0.0/8",))
    c = w.connect(PROXY)
    c.send(get())
    assert c.transport.disconnected and echo.seen == 0
    assert w.events == [("refused", "cwmp", "proxy_invalid")]


def test_a_proxy_that_never_finishes_its_header_is_closed_at_the_header_deadline():
    w = proxied(header_timeout=10)
    c = w.connect(PROXY)
    c.send(b"PROXY TCP4 192.0.2.3")
    w.clock.advance(10)
    assert c.transport.disconnected
    assert w.events == [("closed", "cwmp", "header_timeout")]
    c.lose()
    assert w.counts.open == 0


def test_per_address_cap_counts_the_proxy_headers_client():
    w = proxied(per_ip=1)
    for n, src in enumerate(("192.0.2.33", "192.0.2.34")):
        c = w.connect(PROXY, port=n)
        c.send(f"PROXY TCP4 {src} 10.1.1.1 5000{n} 7547\r\n".encode() + get())
        assert c.responses()[0].status == 200
    c = w.connect(PROXY, port=9)
    c.send(b"PROXY TCP4 192.0.2.33 10.1.1.1 50009 7547\r\n" + get())
    assert c.responses()[0].status == 503
    assert w.events == [("refused", "cwmp", "max_connections_per_ip")]


# -- X-Forwarded-For ----------------------------------------------------------------------


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client_and_a_forged_entry_is_skipped():
    w = Wire(Echo(), trusted=("10.0.0.0/8",))
    c = w.connect(PROXY)
    # The client wrote the first entry itself; the proxy appended the address it saw.
    c.send(get({"X-Forwarded-For": "6.6.6.6, 192.0.2.50"}))
    assert c.responses()[0].body == b"192.0.2.50"


def test_x_forwarded_for_from_anyone_else_is_ignored():
    w = Wire(Echo(), trusted=("10.0.0.0/8",))
    c = w.connect("192.0.2.66")
    c.send(get({"X-Forwarded-For": "10.9.9.9"}))
    assert c.responses()[0].body == b"192.0.2.66"


def test_per_address_cap_counts_the_forwarded_client_and_not_the_proxy():
    w = Wire(Echo(), trusted=(PROXY,), per_ip=1)
    # The proxy's own connections are not counted per address...
    plain = [w.connect(PROXY, port=p) for p in range(3)]
    plain[2].send(get())
    assert plain[2].responses()[0].status == 200
    # ...its requests' clients are.
    a = w.connect(PROXY, port=10)
    a.send(get({"X-Forwarded-For": "192.0.2.50"}))
    assert a.responses()[0].status == 200
    b = w.connect(PROXY, port=11)
    b.send(get({"X-Forwarded-For": "192.0.2.50"}))
    [refused] = b.responses()
    assert refused.status == 503 and refused.headers["retry-after"] == "7" and b.closing
    b.send(get({"X-Forwarded-For": "192.0.2.51"}))  # nothing more is read
    assert b.output() == b""
    other = w.connect(PROXY, port=12)
    other.send(get({"X-Forwarded-For": "192.0.2.51"}))
    assert other.responses()[0].status == 200
    assert w.events == [("refused", "cwmp", "max_connections_per_ip")]


@pytest.mark.parametrize("value", ["unknown", "", "192.0.2.50:99999x", "_hidden"])
def test_unusable_forwarded_entries_leave_the_proxy_as_client(value):
    w = Wire(Echo(), trusted=("10.0.0.0/8",))
    c = w.connect(PROXY)
    c.send(get({"X-Forwarded-For": value}))
    assert c.responses()[0].body == PROXY.encode()
