"""The ACS's XMPP client against a scripted server over StringTransport (no sockets, no real time)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from acs_security.connreq.methods import WakeResult
from acs_security.connreq.xmpp import XmppClient, XmppOptions
from acs_security.connreq.xmpp_stanza import parse_iq

HEADER = ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
          "from='xmpp.test' id='s{n}' version='1.0'>")
SASL = ("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
        "</mechanisms></stream:features>")
STARTTLS = ("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms "
            "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
BIND = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
PHONE = "sep001122334455@xmpp.test/cwmp"


class Server:
    """One scripted XMPP server side: what the client wrote, and feeding it bytes."""

    def __init__(self, reactor: MemoryReactorClock, index: int = -1) -> None:
        host, port, factory, _timeout, _bind = reactor.tcpClients[index]
        self.address = (host, port)
        self.factory = factory
        proto = factory.buildProtocol(None)
        assert proto is not None
        self.proto = proto
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def take(self) -> str:
        data = self.transport.value().decode()
        self.transport.clear()
        return data

    def feed(self, text: str) -> None:
        self.proto.dataReceived(text.encode())

    def login(self) -> None:
        """Plain stream (tls optional): SASL PLAIN, then bind."""
        assert "<stream:stream" in self.take()
        self.feed(HEADER.format(n=1) + SASL)
        auth = self.take()
        m = re.search(r"mechanism=['\"]PLAIN['\"]>([^<]+)</auth>", auth)
        assert m, auth
        assert base64.b64decode(m.group(1)) == b"\x00acs\x00acs-secret"
        self.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        assert "<stream:stream" in self.take()
        self.feed(HEADER.format(n=2) + BIND)
        bind = self.take()
        bind_id = re.search(r"id=['\"]([^'\"]+)['\"]", bind)
        assert bind_id and "urn:ietf:params:xml:ns:xmpp-bind" in bind
        self.feed(f"<iq type='result' id='{bind_id.group(1)}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<jid>acs@xmpp.test/node1</jid></bind></iq>")

    def lose(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure
        self.proto.connectionLost(Failure(ConnectionLost()))
        # No connector: the client schedules its own reconnection and never uses it.
        self.factory.clientConnectionLost(None, Failure(ConnectionLost()))  # type: ignore[arg-type]


def make(reactor: MemoryReactorClock, states: list[bool] | None = None, **opts: Any) -> XmppClient:
    options = XmppOptions(**{"tls_required": False, **opts})
    c = XmppClient(reactor, "acs@xmpp.test", "acs-secret", ("127.0.0.1", 5222), options=options,
                   on_state=(states.append if states is not None else None), jitter=lambda: 0.0)
    c.start()
    return c


def results(d: Any) -> list[WakeResult]:
    out: list[WakeResult] = []
    d.addCallback(out.append)
    return out


def test_logs_in_and_sends_a_connection_request() -> None:
    reactor = MemoryReactorClock()
    states: list[bool] = []
    c = make(reactor, states)
    assert reactor.tcpClients[0][:2] == ("127.0.0.1", 5222)
    assert results(c.request(PHONE, "u", "p")) == [WakeResult(False, "not connected")]
    s = Server(reactor)
    s.login()
    assert c.connected and states == [True] and c.bound_jid == "acs@xmpp.test/node1"
    got = results(c.request(PHONE, "cruser", "crpw"))
    sent = parse_iq(s.take())
    assert (sent.type, sent.to, sent.request and sent.request.username) == ("set", PHONE, "cruser")
    assert sent.request is not None and sent.request.password == "crpw"
    assert got == [] and c.in_flight == 1
    s.feed(f"<iq type='result' id='{sent.id}' from='{PHONE}'/>")
    assert got == [WakeResult(True)] and c.in_flight == 0


def test_error_iq_gives_its_condition() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor)
    s = Server(reactor)
    s.login()
    got = results(c.request(PHONE, "u", "wrong"))
    sent = parse_iq(s.take())
    s.feed(f"<iq type='error' id='{sent.id}' from='{PHONE}'><error type='auth'>"
           "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    assert got == [WakeResult(False, "not-authorized")]


def test_no_answer_times_out_and_a_late_answer_is_ignored() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor, request_timeout=5.0)
    s = Server(reactor)
    s.login()
    got = results(c.request(PHONE, "u", "p"))
    sent = parse_iq(s.take())
    reactor.advance(4.9)
    assert got == []
    reactor.advance(0.2)
    assert got == [WakeResult(False, "timeout")]
    s.feed(f"<iq type='result' id='{sent.id}' from='{PHONE}'/>")
    assert got == [WakeResult(False, "timeout")] and c.in_flight == 0


def test_in_flight_cap() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor, max_in_flight=2)
    s = Server(reactor)
    s.login()
    results(c.request(PHONE, "u", "p"))
    results(c.request(PHONE, "u", "p"))
    assert results(c.request(PHONE, "u", "p")) == [WakeResult(False, "too many requests in flight")]
    assert s.take().count("<iq") == 2


def test_bad_jid_is_refused_without_sending() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor)
    s = Server(reactor)
    s.login()
    [r] = results(c.request("bad@", "u", "p"))
    assert not r.ok and r.detail.startswith("bad JID") and s.take() == ""


def test_iq_requests_to_the_acs_get_service_unavailable() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor)
    s = Server(reactor)
    s.login()
    s.feed("<iq type='get' id='v1' from='someone@xmpp.test/x' to='acs@xmpp.test/node1'>"
           "<query xmlns='jabber:iq:version'/></iq>")
    answer = parse_iq(s.take())
    assert (answer.type, answer.id, answer.to, answer.condition) == (
        "error", "v1", "someone@xmpp.test/x", "service-unavailable")
    assert c.connected


def test_lost_connection_fails_pending_and_reconnects_with_backoff() -> None:
    reactor = MemoryReactorClock()
    states: list[bool] = []
    c = make(reactor, states, backoff_initial=1.0, backoff_max=4.0)
    s = Server(reactor)
    s.login()
    got = results(c.request(PHONE, "u", "p"))
    s.lose()
    assert got == [WakeResult(False, "not connected")] and states == [True, False] and not c.connected
    assert len(reactor.tcpClients) == 1
    reactor.advance(0.99)
    assert len(reactor.tcpClients) == 1
    reactor.advance(0.02)
    assert len(reactor.tcpClients) == 2
    # connection refused, refused again: 2 s, then 4 s (the cap), then 4 s
    for n, delay in ((3, 2.0), (4, 4.0), (5, 4.0)):
        reactor.tcpClients[-1][2].clientConnectionFailed(None, _refused())  # type: ignore[arg-type]  # no connector
        reactor.advance(delay - 0.01)
        assert len(reactor.tcpClients) == n - 1
        reactor.advance(0.02)
        assert len(reactor.tcpClients) == n
    s2 = Server(reactor)
    s2.login()
    assert c.connected and c.logins == 2 and states == [True, False, True]
    # a successful login resets the backoff
    s2.lose()
    reactor.advance(1.01)
    assert len(reactor.tcpClients) == 6


def _refused() -> Any:
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure
    return Failure(ConnectionRefusedError())


def test_login_timeout_drops_a_silent_server() -> None:
    reactor = MemoryReactorClock()
    make(reactor, login_timeout=20.0)
    s = Server(reactor)
    reactor.advance(19.9)
    assert not s.transport.disconnecting
    reactor.advance(0.2)
    assert s.transport.disconnecting


def test_whitespace_keepalive() -> None:
    reactor = MemoryReactorClock()
    make(reactor, keepalive=30.0)
    s = Server(reactor)
    s.login()
    s.take()
    reactor.advance(29.0)
    assert s.take() == ""
    reactor.advance(1.0)
    assert s.take() == " "


def test_tls_required_refuses_a_server_without_starttls() -> None:
    reactor = MemoryReactorClock()
    c = make(reactor, tls_required=True)
    s = Server(reactor)
    s.take()
    s.feed(HEADER.format(n=1) + SASL)
    assert "<auth" not in s.take()  # the password is not sent over a plain stream
    assert s.transport.disconnecting and not c.connected


def test_tls_required_starts_tls_when_offered() -> None:
    reactor = MemoryReactorClock()
    make(reactor, tls_required=True)
    s = Server(reactor)
    s.take()
    s.feed(HEADER.format(n=1) + STARTTLS)
    assert s.take() == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


def test_stop_closes_and_stops_reconnecting() -> None:
    reactor = MemoryReactorClock()
    states: list[bool] = []
    c = make(reactor, states)
    s = Server(reactor)
    s.login()
    got = results(c.request(PHONE, "u", "p"))
    c.stop()
    assert got == [WakeResult(False, "not connected")] and s.transport.disconnecting
    s.lose()
    reactor.advance(120)
    assert len(reactor.tcpClients) == 1 and states == [True, False]


def test_password_not_in_repr_and_jid_checked() -> None:
    reactor = MemoryReactorClock()
    c = XmppClient(reactor, "acs@xmpp.test", "acs-secret", ("h", 1))
    assert "acs-secret" not in repr(c)
    with pytest.raises(ValueError, match="local@domain"):
        XmppClient(reactor, "xmpp.test", "pw", ("h", 1))
    with pytest.raises(ValueError, match="empty domainpart"):
        XmppClient(reactor, "acs@", "pw", ("h", 1))
