"""Simulated phones behind NAT: the NAT itself and the phones' TR-111 STUN client.

Each phone behind NAT gets its own mapping: a UDP port on loopback that stands for the
public ip:port its NAT allocated. The phone's STUN client sends its Binding Requests from
that port, so the ACS's STUN server sees the mapping as the phone's source address, as it
would on the Internet. The NAT is address-and-port restricted (RFC 4787 section 5 calls
it "address and port-dependent filtering"): the mapping forwards to the phone only what
comes from an address:port the phone has sent to, i.e. the STUN server's socket; a
datagram from anywhere else (another port of the same host included) is dropped, and
counted. That is why the ACS must send UDP connection requests from its STUN socket.

The phone's HTTP connection-request listener is behind the NAT: its ConnectionRequestURL
names a private address (RFC 1918) the ACS cannot reach, and it reports NATDetected true.

The STUN client (TR-111 part 2 section 2.2.1): a Binding Request at boot and then every
STUNMinimumKeepAlivePeriod seconds, with USERNAME (the phone's connection-request username),
CONNECTION-REQUEST-BINDING, MESSAGE-INTEGRITY keyed with its connection-request password and
FINGERPRINT (RFC 5389). A response is taken only for a transaction the phone has pending,
and only with a valid MESSAGE-INTEGRITY. When the mapped address in a response differs from
what the phone knew, the phone stores it as UDPConnectionRequestAddress, reports it in an
Inform with "4 VALUE CHANGE" (no sooner than ``SimulatedNat.notify_hold`` seconds after its
previous such Inform), and sends its next Binding Request with BINDING-CHANGE at once. TR-098
has a parameter for that hold (UDPConnectionRequestAddressNotificationLimit); TR-181 2.17 has
none, so the simulated phones keep it outside their data model.

:meth:`SimulatedNat.rebind` makes the NAT allocate a new mapping (a new port), as a NAT
does when its mapping timed out or it restarted: the phone learns it from its next
Binding Request, which goes at once.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall

from acs_security.connreq.stun import (
    BINDING_RESPONSE,
    StunError,
    binding_request,
    decode_message,
    encode_message,
    new_transaction_id,
    verify_integrity,
)
from acs_security.sim.phone import MS, Phone

__all__ = ["NAT_VALUES", "SimulatedNat", "behind_nat", "private_url"]

_UDP_ADDRESS = MS + "UDPConnectionRequestAddress"
_MAX_PENDING = 8  # Binding Requests a phone keeps waiting for (older ones are forgotten)


def behind_nat(seed: int, index: int, rate: float) -> bool:
    """Whether phone ``index`` of a fleet with ``seed`` sits behind NAT: a draw of its own,
    so the same phones are behind NAT in every run with that seed."""
    return rate > 0 and random.Random(f"nat:{seed}:{index}").random() < rate


def private_url(index: int, serial: str, port: int = 7547) -> str:
    """The ConnectionRequestURL of a phone behind NAT: an address in 10.0.0.0/8 (RFC 1918)."""
    return f"http://10.{(index >> 16) & 255}.{(index >> 8) & 255}.{(index & 255) or 1}:{port}/{serial}"


def NAT_VALUES(index: int, serial: str, keepalive: int) -> dict[str, str]:  # noqa: N802 - a table
    """The parameter values a phone behind NAT starts with."""
    return {MS + "ConnectionRequestURL": private_url(index, serial), MS + "NATDetected": "true",
            MS + "STUNEnable": "true", MS + "STUNMinimumKeepAlivePeriod": str(keepalive), _UDP_ADDRESS: ""}


class _Mapping(DatagramProtocol):
    """One phone's NAT mapping: the public port and its filter."""

    def __init__(self, nat: SimulatedNat, phone: Phone) -> None:
        self.nat = nat
        self.phone = phone
        self.sent_to: set[tuple[str, int]] = set()
        self.pending: dict[bytes, bool] = {}  # transaction id -> sent with BINDING-CHANGE
        self.next_due = 0.0
        self.change_pending = False
        self.port: Any = None

    @property
    def public(self) -> str:
        host = self.port.getHost()
        return f"{host.host}:{host.port}"

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        if self.transport is None:
            return
        self.sent_to.add(to)
        self.transport.write(data, to)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 - Twisted's interface name
        source = (addr[0], addr[1])
        if source not in self.sent_to:
            self.nat.stats["filtered"] += 1  # address-and-port restricted: not for the phone
            return
        try:
            message = decode_message(data)
        except StunError:
            message = None
        if message is not None and message.message_type == BINDING_RESPONSE:
            self.nat.binding_response(self, message)
            return
        self.nat.stats["forwarded"] += 1
        self.nat.deliver(self.phone, data)


class SimulatedNat:
    """The NAT of every phone behind NAT in a fleet, and their STUN clients.

    ``deliver(phone, datagram)``: what the phone does with a UDP datagram that passed its
    NAT (the fleet verifies it as an Annex G connection request). ``changed(phone)``: the
    phone's UDPConnectionRequestAddress changed (the fleet opens a session for its VALUE
    CHANGE Inform). ``stun_server``: (ip, port) of the ACS's STUN server; None: the phones
    run no STUN client (reached by XMPP or their periodic Inform only).
    """

    def __init__(self, reactor: Any, *, stun_server: tuple[str, int] | None, keepalive: float,
                 deliver: Callable[[Phone, bytes], None], changed: Callable[[Phone], None],
                 random_bytes: Callable[[int], bytes], host: str = "127.0.0.1") -> None:
        self._reactor = reactor
        self._stun = stun_server
        self._keepalive = keepalive
        self.deliver = deliver
        self._changed = changed
        self._random_bytes = random_bytes
        self._host = host
        self._mappings: dict[str, _Mapping] = {}
        self._loop: LoopingCall | None = None
        # Seconds a phone waits between two VALUE CHANGE Informs of its UDP address (0: none).
        self.notify_hold = 0.0
        self._notified: dict[str, float] = {}  # serial -> last VALUE CHANGE of its UDP address
        self._delayed: dict[str, Any] = {}  # serial -> the DelayedCall of a held-back one
        self.stats: Counter[str] = Counter()

    def __contains__(self, phone: Phone) -> bool:
        return phone.serial in self._mappings

    def add(self, phone: Phone, first_binding: float) -> None:
        """Put ``phone`` behind the NAT; its first Binding Request goes at ``first_binding``
        (its boot). Raises CannotListenError when no port can be bound."""
        mapping = _Mapping(self, phone)
        mapping.port = self._reactor.listenUDP(0, mapping, interface=self._host)
        mapping.next_due = first_binding
        self._mappings[phone.serial] = mapping

    def public_address(self, phone: Phone) -> str:
        """The phone's current mapping, ``ip:port``. Raises KeyError."""
        return self._mappings[phone.serial].public

    def start(self) -> None:
        """Send the phones' Binding Requests when due (checked every half second)."""
        if self._stun is None or self._loop is not None:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._reactor
        self._loop.start(0.5, now=True)

    def stop(self) -> Deferred[Any]:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for call in self._delayed.values():
            if call.active():
                call.cancel()
        self._delayed.clear()
        waits = []
        for mapping in self._mappings.values():
            d = mapping.port.stopListening()
            if isinstance(d, Deferred):
                waits.append(d)
        self._mappings.clear()
        return DeferredList(waits, consumeErrors=True)

    def rebind(self, phone: Phone) -> Deferred[None]:
        """The NAT drops the phone's mapping and allocates a new port; the phone's STUN
        client finds out at once (its next Binding Request is sent now). Raises KeyError."""
        mapping = self._mappings[phone.serial]
        old = mapping.port
        fresh = _Mapping(self, phone)
        fresh.port = self._reactor.listenUDP(0, fresh, interface=self._host)
        fresh.next_due = self._reactor.seconds()
        self._mappings[phone.serial] = fresh
        self.stats["rebinds"] += 1
        d = old.stopListening()
        self.send_binding(fresh)
        return d if isinstance(d, Deferred) else Deferred.fromCoroutine(_nothing())

    def _tick(self) -> None:
        now = self._reactor.seconds()
        for mapping in list(self._mappings.values()):
            due = mapping.next_due
            if due <= now:
                self.send_binding(mapping)
                # Each phone keeps its own phase (its boot, its last rebinding), as the
                # phones' own timers do: a tick that ran late (the reactor was busy) sends
                # every overdue phone at once, and scheduling them all from that tick would
                # keep them in one burst for good. A burst larger than the STUN server's
                # socket buffer (256 small datagrams by Linux's default) loses its tail,
                # the same phones each time.
                period = self._keepalive_of(mapping.phone)
                mapping.next_due = due + period * (int((now - due) // period) + 1)

    def send_binding(self, mapping: _Mapping) -> None:
        """Send the phone's Binding Request now; its next one is due a keep-alive period
        later (the tick moves that back to the phone's phase)."""
        if self._stun is None:
            return
        phone = mapping.phone
        mapping.next_due = self._reactor.seconds() + self._keepalive_of(phone)
        if phone.lookup(MS + "STUNEnable") != "true":
            return
        username, password = phone.cr_credentials()
        tid = new_transaction_id(self._random_bytes(12))
        change = mapping.change_pending
        request = binding_request(tid, username=username, binding_change=change)
        if len(mapping.pending) >= _MAX_PENDING:
            mapping.pending.pop(next(iter(mapping.pending)))
        mapping.pending[tid] = change
        mapping.send(encode_message(request, integrity_key=password.encode(), fingerprint=True), self._stun)
        self.stats["bindings_sent"] += 1

    def _keepalive_of(self, phone: Phone) -> float:
        text = phone.lookup(MS + "STUNMinimumKeepAlivePeriod") or ""
        return float(text) if text.isdigit() and int(text) > 0 else self._keepalive

    def binding_response(self, mapping: _Mapping, message: Any) -> None:
        phone = mapping.phone
        if message.transaction_id not in mapping.pending:
            self.stats["unexpected_response"] += 1
            return
        sent_with_change = mapping.pending.pop(message.transaction_id)
        password = phone.cr_credentials()[1]
        if not verify_integrity(message, password.encode()):
            self.stats["bad_response"] += 1  # not from the ACS that knows the password
            return
        try:
            mapped = message.reflexive_address
        except StunError:
            mapped = None
        if mapped is None:
            self.stats["bad_response"] += 1
            return
        if sent_with_change:
            mapping.change_pending = False
        address = f"[{mapped[0]}]:{mapped[1]}" if ":" in mapped[0] else f"{mapped[0]}:{mapped[1]}"
        known = phone.lookup(_UDP_ADDRESS) or ""
        if address == known:
            return
        phone.store({_UDP_ADDRESS: address})
        self.stats["address_changes"] += 1
        if known:
            # TR-111 part 2: the next Binding Request carries BINDING-CHANGE; it goes now.
            mapping.change_pending = True
            self.send_binding(mapping)
        self.notify_address(phone)

    def notify_address(self, phone: Phone) -> None:
        """Report the new address in an Inform, held back while ``notify_hold`` seconds since
        the phone's last report have not passed."""
        if phone.serial in self._delayed:
            return  # one is already held back; it reports the latest address
        now = self._reactor.seconds()
        limit = self.notify_hold
        last = self._notified.get(phone.serial)
        if last is not None and now - last < limit:
            self.stats["notifications_held"] += 1

            def later() -> None:
                del self._delayed[phone.serial]
                self.notify_address(phone)

            self._delayed[phone.serial] = self._reactor.callLater(limit - (now - last), later)
            return
        self._notified[phone.serial] = now
        phone.add_event("4 VALUE CHANGE")
        self._changed(phone)


async def _nothing() -> None:
    return None
