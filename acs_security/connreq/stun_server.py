"""The ACS's STUN server for TR-111 part 2: learns where phones behind NAT are.

Answers each Binding Request with the datagram's source address (RFC 5389 section 10.1.3:
XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS for RFC 3489 clients, section 12.2) and reports the
binding to a callback, which stores it as the phone's UDPConnectionRequestAddress.

Authentication (TR-111 part 2 section 2.2.1.1): the phone puts its connection-request
username in USERNAME and, when the ACS asked for it, MESSAGE-INTEGRITY keyed with its
connection-request password. A request with MESSAGE-INTEGRITY is answered only when the
HMAC is right for the password of the device that username names; otherwise it is dropped
(RFC 5389 section 10.1.2 would answer 401, but an error response to a forged source address
is reflected traffic). The answer then carries MESSAGE-INTEGRITY with the same key, so the
phone can tell it came from the ACS. The passwords come from a cache in front of the store
(:class:`LoginCache`): a request whose username is not in it yet waits (parked, bounded)
for one batched look-up, not one query per datagram.

Malformed datagrams, other message types, and requests that fail FINGERPRINT or
MESSAGE-INTEGRITY are dropped silently: answering them would make the server a reflector.
RESPONSE-ADDRESS (answer elsewhere) and CHANGE-REQUEST (answer from another address) are
ignored on purpose: the first turns the server into a traffic amplifier (RFC 5389 drops
it for that reason), the second needs a second IP address this server does not have.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from acs_security.connreq.stun import (
    ATTR_FINGERPRINT,
    BINDING_REQUEST,
    StunError,
    StunMessage,
    binding_response,
    decode_message,
    encode_message,
    verify_integrity,
)
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import check_text

__all__ = ["MISSING", "LoginCache", "StunBinding", "StunServerProtocol"]

log = Logger(namespace="acs_security.connreq.stun")

#: LoginCache.get's answer for a username not looked up yet.
MISSING: Any = object()
_MAX_PARKED = 5000  # requests waiting for a look-up; beyond, new ones are dropped


@dataclass(frozen=True, slots=True)
class StunBinding:
    """What one Binding Request told: who (USERNAME, and the device when known), where
    from, the TR-111 flags, and whether MESSAGE-INTEGRITY proved it."""

    username: str | None
    mapped_host: str
    mapped_port: int
    binding_change: bool
    connection_request_binding: bool
    device_id: str | None = None
    authenticated: bool = False

    @property
    def address(self) -> str:
        """``host:port`` as UDPConnectionRequestAddress writes it (IPv6 in brackets)."""
        if ":" in self.mapped_host:
            return f"[{self.mapped_host}]:{self.mapped_port}"
        return f"{self.mapped_host}:{self.mapped_port}"


class LoginCache:
    """username -> (device id, connection-request password), from ``lookup`` (a batch
    look-up, e.g. the store's ``connection_request_logins``), kept ``ttl`` seconds so that a
    password the ACS changed is picked up. ``None`` (no such device) is remembered for
    ``negative_ttl`` seconds only: a phone's credential is often put in the store after the
    phone's first Binding Request. ``default``: the server-wide connection-request
    credential (cr_username), for a username no device has its own credential for; it
    names no device."""

    def __init__(self, lookup: Callable[[list[str]], Deferred[dict[str, tuple[str, str]]]],
                 clock: Any, *, ttl: float = 300.0, negative_ttl: float = 5.0, max_entries: int = 500_000,
                 batch: int = 1000, default: tuple[str, str] | None = None) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._default = default
        self._max = max_entries
        self._batch = batch
        self._known: dict[str, tuple[float, tuple[str | None, str] | None]] = {}
        self._wanted: set[str] = set()
        self._running = False
        self._waiters: list[Deferred[None]] = []

    def get(self, username: str) -> tuple[str | None, str] | None:
        """(device id or None, password); None when no device has it, MISSING when not
        looked up (or too old)."""
        entry = self._known.get(username)
        if entry is None or self._clock.seconds() - entry[0] > (self._ttl if entry[1] else self._negative_ttl):
            return MISSING  # type: ignore[no-any-return]
        return entry[1]

    def want(self, username: str) -> Deferred[None]:
        """Look ``username`` up with the next batch; fires when that batch is in. A name
        the store cannot hold (a NUL, off the wire) is known at once to name no device: in
        a batch, it would fail the look-up of every phone's name with it."""
        try:
            check_text("username", username, empty=False)
        except InvalidArgument:
            if len(self._known) >= self._max:
                self._known.clear()  # the same crude bound as a batch's
            self._known[username] = (self._clock.seconds(), None)
            return succeed(None)
        self._wanted.add(username)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        if not self._running:
            self._clock.callLater(0, self._run)
            self._running = True
        return d

    def _run(self) -> None:
        names = sorted(self._wanted)[: self._batch]
        self._wanted.difference_update(names)
        waiters, self._waiters = self._waiters, []

        def done(result: Any) -> None:
            now = self._clock.seconds()
            if isinstance(result, dict):
                if len(self._known) + len(names) > self._max:
                    self._known.clear()  # a crude bound: the next requests look up again
                for name in names:
                    login: tuple[str | None, str] | None = result.get(name)
                    if login is None and self._default is not None and name == self._default[0]:
                        login = (None, self._default[1])
                    self._known[name] = (now, login)
            else:  # the store failed: log once per batch, the phones' next requests retry
                log.warn("cannot look up STUN usernames: {error}", error=result.getErrorMessage())
            self._running = False
            if self._wanted:
                self._running = True
                self._clock.callLater(0, self._run)
            for w in waiters:
                w.callback(None)

        self._lookup(names).addBoth(done)


class StunServerProtocol(DatagramProtocol):
    """Answer Binding Requests; report each accepted one to ``on_binding``.

    ``server_address`` (this server's public ip, port), when given, is sent back to RFC
    3489 clients as SOURCE-ADDRESS and CHANGED-ADDRESS, which RFC 3489 section 11.1 lists
    in every Binding Response; with one address only, CHANGED-ADDRESS repeats it.
    ``logins``: where passwords for MESSAGE-INTEGRITY and device ids come from; None:
    requests with MESSAGE-INTEGRITY are dropped (nothing to check them with).
    """

    def __init__(
        self,
        on_binding: Callable[[StunBinding], None],
        *,
        server_address: tuple[str, int] | None = None,
        logins: LoginCache | None = None,
    ) -> None:
        self._on_binding = on_binding
        self._server_address = server_address
        self._logins = logins
        self._parked = 0
        self.dropped = 0  # malformed or unexpected datagrams, for a metric
        self.refused: Counter[str] = Counter()  # integrity failures and the like, by reason

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:  # noqa: N802 - Twisted's interface name
        host, port = addr[0], addr[1]
        try:
            message = decode_message(datagram)
            ipaddress.ip_address(host)
        except (StunError, ValueError):
            self.dropped += 1
            return
        if message.message_type != BINDING_REQUEST:
            self.dropped += 1
            return
        if self.transport is None:  # not listening (yet): nothing can be answered
            return
        self._handle(message, host, port)

    def _handle(self, message: StunMessage, host: str, port: int) -> None:
        username = message.username
        login = MISSING if (self._logins is None or not username) else self._logins.get(username)
        key: bytes | None = None
        if message.has_integrity:
            if self._logins is None or not username:
                self.refused["integrity_without_login"] += 1
                return
            if login is MISSING:
                self._park(message, host, port, username)
                return
            if login is None:
                self.refused["unknown_username"] += 1
                return
            key = login[1].encode("utf-8")
            if not verify_integrity(message, key):
                self.refused["bad_integrity"] += 1
                return
        elif login is MISSING and username and self._logins is not None:
            self._logins.want(username)  # known by the time the phone sends its next one
        transport = self.transport
        if transport is None:
            return
        response = binding_response(
            message.transaction_id,
            (host, port),
            source=self._server_address,
            changed=self._server_address,
        )
        fingerprint = message.rfc5389 and message.get(ATTR_FINGERPRINT) is not None
        transport.write(encode_message(response, integrity_key=key, fingerprint=fingerprint), (host, port))
        device_id = login[0] if login not in (None, MISSING) else None
        self._on_binding(
            StunBinding(
                username=username,
                mapped_host=host,
                mapped_port=port,
                binding_change=message.binding_change,
                connection_request_binding=message.connection_request_binding,
                device_id=device_id,
                authenticated=key is not None,
            )
        )

    def _park(self, message: StunMessage, host: str, port: int, username: str) -> None:
        assert self._logins is not None
        if self._parked >= _MAX_PARKED:
            self.refused["busy"] += 1
            return
        self._parked += 1

        def again(_: Any) -> None:
            self._parked -= 1
            assert self._logins is not None
            if self._logins.get(username) is MISSING:  # the look-up failed: drop it
                self.refused["lookup_failed"] += 1
                return
            self._handle(message, host, port)

        self._logins.want(username).addCallback(again)
