"""The ACS's XMPP client: sends Annex K connection requests to phones (Twisted edge).

One long-lived client-to-server stream (RFC 6120) logged in as the ACS's own JID, built on
twisted.words' jabber stream and initialisers: STARTTLS (RFC 6120 section 5; required
unless ``tls_required=False``, meant for a server on loopback), SASL (section 6) and
resource binding (section 7). Around it, what a server-side daemon needs and the library
leaves out:

- a reconnect loop with exponential backoff (reset once a login succeeds), so that a
  restarted or unreachable XMPP server is retried forever without hammering it;
- a login timeout: a server that accepts the TCP connection but never finishes the
  stream negotiation is dropped and retried;
- a whitespace keepalive (RFC 6120 section 4.6.1), so that NATs and the server keep the
  idle stream open;
- per request: an id, a timeout (no answer -> ``WakeResult(False, "timeout")``), an error
  IQ -> ``WakeResult(False, condition)``, a cap on requests in flight, and
  ``WakeResult(False, "not connected")`` while there is no stream;
- IQ ``get``/``set`` addressed to the ACS are answered ``service-unavailable``
  (RFC 6120 section 8.4: an entity must answer every IQ request).

The stanzas themselves are built and read by :mod:`acs_security.connreq.xmpp_stanza`.
The client never logs a password, its own or a phone's.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import client, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import xmlstream as xish

from acs_security.connreq.methods import WakeResult
from acs_security.connreq.xmpp_stanza import (
    JidError,
    StanzaError,
    build_connection_request,
    build_error,
    parse_iq,
    parse_jid,
)

__all__ = ["XmppClient", "XmppOptions"]

log = Logger(namespace="acs_security.connreq.xmpp")


@dataclass(frozen=True, slots=True)
class XmppOptions:
    """Timings and limits of :class:`XmppClient` (seconds)."""

    request_timeout: float = 10.0
    login_timeout: float = 20.0
    keepalive: float = 60.0
    max_in_flight: int = 500
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    tls_required: bool = True


class _Factory(protocol.ClientFactory):
    """Builds one jabber XmlStream per connection, with a fresh authenticator (the bind
    step rewrites the authenticator's JID) and the owner's observers."""

    def __init__(self, owner: XmppClient) -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> xmlstream.XmlStream:  # noqa: N802 - Twisted's interface name
        return self.owner._build_stream()

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:  # noqa: N802 - Twisted's interface name
        self.owner._connection_gone(reason)

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:  # noqa: N802 - Twisted's interface name
        self.owner._connection_gone(reason)


class XmppClient:
    """Sends Annex K connection requests over one XMPP stream (an ``XmppRequester``).

    ``connect(host, port, factory)``: how to open the TCP connection (default the
    reactor's ``connectTCP``). ``tls_options``: the client TLS configuration for STARTTLS
    (``optionsForClientTLS``; default: the platform's trust roots). ``on_state(bool)``
    is told when the stream comes up (logged in and bound) and goes down.
    """

    def __init__(self, reactor: Any, jid: str, password: str, server: tuple[str, int], *,
                 options: XmppOptions | None = None, tls_options: Any = None,
                 connect: Callable[[str, int, protocol.ClientFactory], Any] | None = None,
                 on_state: Callable[[bool], None] | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        try:
            parsed = parse_jid(jid)
        except JidError as exc:
            raise ValueError(f"xmpp_jid {jid!r}: {exc}") from None
        if not parsed.local:
            raise ValueError(f"xmpp_jid {jid!r}: the ACS logs in as an account: local@domain")
        self.reactor = reactor
        self.jid = str(parsed)
        self._password = password
        self.server = server
        self.options = options or XmppOptions()
        self._tls_options = tls_options
        self._connect = connect or (lambda host, port, f: reactor.connectTCP(host, port, f))
        self._on_state = on_state
        self._jitter = jitter
        self._factory = _Factory(self)
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[Deferred[WakeResult], Any]] = {}
        self._stream: xmlstream.XmlStream | None = None  # the stream being set up or up
        self._ready = False
        self._running = False
        self._attempt = 0
        self._retry: Any = None
        self._login_timer: Any = None
        self._keepalive: LoopingCall | None = None
        self.bound_jid: str | None = None
        self.logins = 0

    def __repr__(self) -> str:  # never the password
        return f"XmppClient({self.jid!r}, server={self.server!r}, connected={self._ready})"

    @property
    def connected(self) -> bool:
        """Logged in and bound: requests can be sent."""
        return self._ready

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Connect, and keep reconnecting until :meth:`stop`."""
        if self._running:
            return
        self._running = True
        self._dial()

    def stop(self) -> Deferred[None]:
        """Stop reconnecting, close the stream, answer what is in flight ("not connected")."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        stream = self._stream
        self._went_down()
        if stream is not None and stream.transport is not None:
            stream.transport.loseConnection()
        return succeed(None)

    def _dial(self) -> None:
        self._retry = None
        if not self._running:
            return
        self._connect(self.server[0], self.server[1], self._factory)

    def _build_stream(self) -> xmlstream.XmlStream:
        auth = client.XMPPAuthenticator(JID(self.jid), self._password, configurationForTLS=self._tls_options)
        xs = xmlstream.XmlStream(auth)
        for init in xs.initializers:
            if isinstance(init, xmlstream.TLSInitiatingInitializer):
                # RFC 6120 section 5.3.1: the client decides whether TLS is mandatory; a
                # plain stream carries the phones' connection-request passwords in clear.
                init.required = self.options.tls_required
        xs.addObserver(xish.STREAM_CONNECTED_EVENT, self._stream_connected)
        xs.addObserver(xmlstream.STREAM_AUTHD_EVENT, self._authenticated)
        xs.addObserver(xmlstream.INIT_FAILED_EVENT, self._init_failed)
        xs.addObserver("/iq", self._on_iq)
        return xs

    def _stream_connected(self, xs: xmlstream.XmlStream) -> None:
        self._stream = xs
        self._login_timer = self.reactor.callLater(self.options.login_timeout, self._login_timed_out, xs)

    def _login_timed_out(self, xs: xmlstream.XmlStream) -> None:
        self._login_timer = None
        log.warn("XMPP login to {server} did not finish within {seconds}s; reconnecting",
                 server=self._server_text(), seconds=self.options.login_timeout)
        transport: Any = xs.transport
        if transport is not None:
            transport.abortConnection()

    def _cancel_login_timer(self) -> None:
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None

    def _authenticated(self, xs: xmlstream.XmlStream) -> None:
        self._cancel_login_timer()
        self._ready = True
        self._attempt = 0
        self.logins += 1
        self.bound_jid = xs.authenticator.jid.full()
        # RFC 6120 section 4.6.1: a space between stanzas keeps an idle stream alive.
        self._keepalive = LoopingCall(self._send_keepalive, xs)
        self._keepalive.clock = self.reactor
        self._keepalive.start(self.options.keepalive, now=False)
        log.info("XMPP connected to {server} as {jid}", server=self._server_text(), jid=self.bound_jid)
        if self._on_state is not None:
            self._on_state(True)

    @staticmethod
    def _send_keepalive(xs: xmlstream.XmlStream) -> None:
        if xs.transport is not None:
            xs.transport.write(b" ")

    def _init_failed(self, failure: Failure) -> None:
        # The stream's negotiation failed: SASL refused the ACS's credential, the server
        # offers no STARTTLS while TLS is required, binding refused. Logged without the
        # password; the connection is then closed and the loop retries with backoff.
        log.error("XMPP login to {server} as {jid} failed: {why}", server=self._server_text(), jid=self.jid,
                  why=_reason(failure))
        stream = self._stream
        if stream is not None and stream.transport is not None:
            stream.transport.loseConnection()

    def _went_down(self) -> None:
        self._cancel_login_timer()
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self._keepalive = None
        was_ready = self._ready
        self._ready = False
        self._stream = None
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.callback(WakeResult(False, "not connected"))
        if was_ready and self._on_state is not None:
            self._on_state(False)

    def _connection_gone(self, reason: Failure) -> None:
        was_ready = self._ready
        self._went_down()
        if not self._running:
            return
        delay = self._next_delay()
        if was_ready:
            log.warn("XMPP connection to {server} lost ({why}); reconnecting in {delay:.1f}s",
                     server=self._server_text(), why=_reason(reason), delay=delay)
        else:
            log.info("XMPP connection to {server} failed ({why}); retrying in {delay:.1f}s",
                     server=self._server_text(), why=_reason(reason), delay=delay)
        self._retry = self.reactor.callLater(delay, self._dial)

    def _next_delay(self) -> float:
        """Exponential backoff with up to 50 % jitter (several ACS nodes restarted together
        do not reconnect in step), capped at backoff_max."""
        o = self.options
        base = min(o.backoff_max, o.backoff_initial * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return min(o.backoff_max, base * (1.0 + 0.5 * self._jitter()))

    def _server_text(self) -> str:
        host, port = self.server
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- requests --------------------------------------------------------------------

    def request(self, jid: str, username: str, password: str) -> Deferred[WakeResult]:
        """Send one connection request to the phone ``jid``; fires with a WakeResult, never
        fails. The IQ goes to the JID the phone reported (its full JID: a bare JID is
        answered by the phone's server, not the phone, RFC 6120 section 10.5.3)."""
        stream = self._stream
        if not self._ready or stream is None:
            return succeed(WakeResult(False, "not connected"))
        if len(self._pending) >= self.options.max_in_flight:
            return succeed(WakeResult(False, "too many requests in flight"))
        iq_id = f"cr{next(self._ids)}"
        try:
            text = build_connection_request(iq_id, "", jid, username, password)
        except JidError as exc:
            return succeed(WakeResult(False, f"bad JID: {exc}"))
        d: Deferred[WakeResult] = Deferred()
        timer = self.reactor.callLater(self.options.request_timeout, self._timed_out, iq_id)
        self._pending[iq_id] = (d, timer)
        stream.send(text)
        return d

    def _timed_out(self, iq_id: str) -> None:
        entry = self._pending.pop(iq_id, None)
        if entry is not None:
            entry[0].callback(WakeResult(False, "timeout"))

    def _on_iq(self, element: Any) -> None:
        try:
            iq = parse_iq(element.toXml())
        except StanzaError as exc:
            log.debug("XMPP: unreadable iq ignored: {why}", why=str(exc))
            return
        if iq.type in ("result", "error"):
            entry = self._pending.pop(iq.id, None)
            if entry is None:
                return  # late (after its timeout) or not ours (the bind/session answers)
            d, timer = entry
            if timer.active():
                timer.cancel()
            d.callback(WakeResult(True) if iq.type == "result" else WakeResult(False, iq.condition))
            return
        # An IQ get/set to the ACS: nothing here serves one (RFC 6120 section 8.4). The
        # stream's own negotiation IQs never reach here as requests.
        stream = self._stream
        if stream is not None and self._ready:
            stream.send(build_error(iq, "service-unavailable"))

    @property
    def in_flight(self) -> int:
        return len(self._pending)


def _reason(failure: Failure) -> str:
    value = failure.value
    condition = getattr(value, "condition", None)
    if condition:
        return f"{type(value).__name__}: {condition}"
    text = str(value) or type(value).__name__
    return text.splitlines()[0][:200]
