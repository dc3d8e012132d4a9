"""UDP connection requests (TR-069 Annex G) as the simulated phones take them.

A datagram comes to the fleet's shared UDP port (phones not behind NAT) or through one
phone's NAT mapping (sim/nat.py). It is parsed, routed to a phone by its USERNAME (the
default ``cr-<serial>`` or a name the ACS set), and verified with the phone's own
credential: signature, timestamp window and replay (connreq/udp.py). A datagram that
fails is dropped and counted by reason in ``stats.udp_ignored``; one that passes is
handed to the fleet's ``connection_request`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acs_security.connreq.udp import UdpRequestError, UdpRequestVerifier, parse_udp_connection_request
from acs_security.sim.phone import Phone
from acs_security.sim.stats import FleetStats

__all__ = ["UdpWake"]


class UdpWake:
    """The phones' UDP connection-request receiver. ``find(serial)``: the phone or None;
    ``accept(phone, "udp")``: the fleet's hook; ``unreachable(phone)``: offline or its
    CWMP client off."""

    def __init__(self, clock: Any, stats: FleetStats, *, window_s: float, find: Callable[[str], Phone | None],
                 unreachable: Callable[[Phone], bool], accept: Callable[[Phone, str], Any]) -> None:
        self._clock = clock
        self._stats = stats
        self._window = window_s
        self._find = find
        self._unreachable = unreachable
        self._accept = accept
        self._names: dict[str, Phone] = {}

    def renamed(self, phone: Phone) -> None:
        """The ACS gave ``phone`` a ConnectionRequestUsername of its own."""
        username = phone.cr_credentials()[0]
        if username != f"cr-{phone.serial}":
            self._names[username] = phone

    def datagram(self, data: bytes, to: Phone | None = None) -> None:
        """A UDP connection request on the fleet's shared port, or one that passed the NAT
        of phone ``to``."""
        ignored = self._stats.udp_ignored
        try:
            request = parse_udp_connection_request(data)
        except UdpRequestError:
            ignored["malformed"] += 1
            return
        phone = self._route(request.username) if to is None else to
        if phone is None:
            ignored["unknown_username"] += 1
            return
        if self._unreachable(phone):
            ignored["offline"] += 1
            return
        username, password = phone.cr_credentials()
        verifier = phone.udp_verifier
        if verifier is None:  # created on first use: most phones never get a UDP request
            verifier = phone.udp_verifier = UdpRequestVerifier(username, password, window_s=self._window)
        else:
            verifier.set_credentials(username, password)
        verdict = verifier.verify(data, self._clock.seconds())
        if not verdict.ok:
            ignored[str(verdict.reason)] += 1
            return
        self._accept(phone, "udp")

    def _route(self, username: str) -> Phone | None:
        phone = self._names.get(username)
        if phone is not None:
            return phone
        if username.startswith("cr-"):
            phone = self._find(username[3:])
            return phone if phone is not None and phone.cr_credentials()[0] == username else None
        return None
