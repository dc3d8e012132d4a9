"""Simulated phones reachable by XMPP (TR-069 Annex K).

A phone with XMPP logs in to the XMPP server as an account of its own
(``<serial>@<domain>/cwmp``, SASL PLAIN over the loopback stream), reports the JID in
``Device.ManagementServer.ConnReqJabberID`` (sent in every Inform, as the ACS learns it
from there), the ACS JIDs it accepts requests from in ``ConnReqAllowedJabberIDs`` and
its connection in ``ConnReqXMPPConnection``. It answers the ACS's ``connectionRequest`` IQ
by :func:`acs_security.connreq.xmpp_stanza.phone_verdict`: ``service-unavailable`` to a
sender not on its list, ``not-authorized`` to a wrong credential, else a ``result``, and
then opens a CWMP session with "6 CONNECTION REQUEST" (the fleet's ``connection_request``
hook, which also applies the phone's rate limit: a refused request is answered
``resource-constraint``, RFC 6120 section 8.3.3.18).

The phones it is given sit behind a NAT that lets nothing in and have no STUN: their
ConnectionRequestURL is private and they report NATDetected, so XMPP is the one way the
ACS can reach them between periodic Informs. Each phone's stream reconnects by itself
(a restarted XMPP server); the accounts and passwords (:meth:`XmppPhones.accounts`) are
for the server's set-up (sim/prosody.py).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred, succeed
from twisted.words.protocols.jabber import client, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import xmlstream as xish

from acs_security.connreq.xmpp_stanza import (
    JidError,
    StanzaError,
    build_error,
    build_result,
    parse_allowed_jids,
    parse_iq,
    phone_verdict,
)
from acs_security.sim.nat import private_url
from acs_security.sim.phone import MS, Phone

__all__ = ["JABBER_ID", "XmppPhones", "uses_xmpp", "xmpp_values"]

JABBER_ID = MS + "ConnReqJabberID"
_ALLOWED = MS + "ConnReqAllowedJabberIDs"
_CONNECTION = MS + "ConnReqXMPPConnection"
_RESOURCE = "cwmp"


def uses_xmpp(seed: int, index: int, rate: float) -> bool:
    """Whether phone ``index`` of a fleet with ``seed`` is reached by XMPP (its own draw)."""
    return rate > 0 and random.Random(f"xmpp:{seed}:{index}").random() < rate


def xmpp_values(index: int, serial: str, domain: str, allowed: Sequence[str], *,
                behind_nat: bool = True) -> dict[str, str]:
    """The parameter values an XMPP phone starts with; ``behind_nat``: without STUN (its
    ConnectionRequestURL private, NATDetected true, no UDPConnectionRequestAddress)."""
    values = {JABBER_ID: f"{serial.lower()}@{domain}/{_RESOURCE}", _ALLOWED: ",".join(allowed),
              _CONNECTION: "Device.XMPP.Connection.1"}
    if behind_nat:
        values |= {MS + "ConnectionRequestURL": private_url(index, serial), MS + "NATDetected": "true",
                   MS + "STUNEnable": "false", MS + "UDPConnectionRequestAddress": ""}
    return values


class _PhoneFactory(protocol.ReconnectingClientFactory):
    """One phone's stream; reconnects (capped backoff) when the server goes away."""

    maxDelay = 5
    initialDelay = 0.2

    def __init__(self, owner: XmppPhones, phone: Phone) -> None:
        self.owner = owner
        self.phone = phone
        self.stream: xmlstream.XmlStream | None = None

    def buildProtocol(self, addr: Any) -> xmlstream.XmlStream:  # noqa: N802 - Twisted's interface name
        jid = self.phone.value(JABBER_ID)
        auth = client.XMPPAuthenticator(JID(jid), self.owner.password(self.phone.serial))
        xs = xmlstream.XmlStream(auth)
        for init in xs.initializers:
            if isinstance(init, xmlstream.TLSInitiatingInitializer):
                init.required = False  # the simulator's server is on loopback
        xs.addObserver(xmlstream.STREAM_AUTHD_EVENT, self._authd)
        xs.addObserver(xish.STREAM_END_EVENT, self._ended)
        xs.addObserver("/iq[@type='set']", self._iq)
        xs.addObserver("/iq[@type='get']", self._iq)
        self.stream = xs
        return xs

    def _authd(self, xs: xmlstream.XmlStream) -> None:
        self.resetDelay()
        self.owner.logged_in.add(self.phone.serial)
        self.owner.logins += 1

    def _ended(self, _reason: Any) -> None:
        self.owner.logged_in.discard(self.phone.serial)

    def _iq(self, element: Any) -> None:
        element.handled = True
        xs = self.stream
        if xs is None:
            return
        answer = self.owner.answer(self.phone, element.toXml())
        if answer is not None:
            xs.send(answer)


class XmppPhones:
    """The XMPP side of the simulated phones given to :meth:`add`.

    ``accept(phone)``: the fleet's connection-request hook, (HTTP-like status, retry);
    ``unreachable(phone)``: an offline phone answers nothing.
    """

    def __init__(self, reactor: Any, *, server: tuple[str, int] | None, seed: int,
                 accept: Callable[[Phone], tuple[int, float | None]],
                 unreachable: Callable[[Phone], bool]) -> None:
        self._reactor = reactor
        self._server = server
        self._seed = seed
        self._accept = accept
        self._unreachable = unreachable
        self._phones: list[tuple[Phone, float]] = []
        self._values: dict[str, dict[str, str]] = {}  # serial -> its XMPP values (a factory reset keeps them)
        self._factories: list[_PhoneFactory] = []
        self._calls: list[Any] = []
        self.logged_in: set[str] = set()
        self.logins = 0
        self.answers: Counter[str] = Counter()

    def __contains__(self, phone: Phone) -> bool:
        return phone.serial in self._values

    def __len__(self) -> int:
        return len(self._phones)

    def password(self, serial: str) -> str:
        """The XMPP account password of phone ``serial`` (derived from the fleet's seed)."""
        return hashlib.sha256(f"xmpp-account:{self._seed}:{serial}".encode()).hexdigest()[:24]

    def accounts(self) -> list[tuple[str, str]]:
        """(local part, password) of every phone's account, for the XMPP server."""
        return [(p.value(JABBER_ID).partition("@")[0], self.password(p.serial)) for p, _ in self._phones]

    def add(self, phone: Phone, login_at: float, values: Mapping[str, str]) -> None:
        """Make ``phone`` an XMPP phone with ``values`` (xmpp_values); it logs in at ``login_at``."""
        self._values[phone.serial] = dict(values)
        phone.store(values)
        self._phones.append((phone, login_at))

    def restore(self, phone: Phone) -> None:
        """After a factory reset: the phone keeps its XMPP account (its values come back, as
        a provisioned phone's would from its profile)."""
        values = self._values.get(phone.serial)
        if values is not None:
            phone.store(values)

    def start(self) -> None:
        """Log every phone in at its time (its boot), when a server is configured."""
        if self._server is None:
            return
        now = self._reactor.seconds()
        for phone, at in self._phones:
            self._calls.append(self._reactor.callLater(max(0.0, at - now), self._login, phone))

    def _login(self, phone: Phone) -> None:
        assert self._server is not None
        factory = _PhoneFactory(self, phone)
        factory.clock = self._reactor
        self._factories.append(factory)
        self._reactor.connectTCP(self._server[0], self._server[1], factory)

    def answer(self, phone: Phone, stanza: str) -> str | None:
        """The phone's answer to one IQ (None: it does not answer)."""
        try:
            iq = parse_iq(stanza)
        except StanzaError:
            self.answers["malformed"] += 1
            return None
        if self._unreachable(phone):
            self.answers["offline"] += 1
            return None
        try:
            allowed = parse_allowed_jids(phone.lookup(_ALLOWED) or "")
        except JidError:
            allowed = ()
        username, password = phone.cr_credentials()
        verdict = phone_verdict(iq, username=username, password=password, allowed=allowed)
        if not verdict.ok:
            self.answers[verdict.condition] += 1
            return build_error(iq, verdict.condition)
        status, _retry = self._accept(phone)
        if status != 200:
            self.answers["resource-constraint"] += 1
            return build_error(iq, "resource-constraint")
        self.answers["ok"] += 1
        return build_result(iq)

    def stop(self) -> Deferred[None]:
        """Stop logging in and reconnecting; close every stream."""
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []
        for factory in self._factories:
            factory.stopTrying()
            xs = factory.stream
            if xs is not None and xs.transport is not None:
                xs.transport.loseConnection()
        self._factories = []
        self.logged_in.clear()
        return succeed(None)
