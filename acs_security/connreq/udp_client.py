"""UDP connection requests from the ACS (TR-069 Annex G), over a Twisted datagram transport.

UDP may lose the datagram, so the ACS sends the same datagram (same ``ts``, ``id`` and
signature) ``repeat`` times, ``interval`` seconds apart on the clock; the phone acts on
the first copy and drops the others by their id (Annex G.2.2.3). Each request gets a new
id: a counter starting from a random 32-bit value, so ids never repeat within 2**32
requests of one requester and do not collide across ACS processes by design.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from acs_security.connreq.udp import (
    UdpAddressError,
    build_udp_connection_request,
    parse_host_port,
)

__all__ = ["DatagramWriter", "UdpConnectionRequester", "UdpSendResult"]


class DatagramWriter(Protocol):
    """The part of ``IUDPTransport`` used here (a listening UDP port's transport)."""

    def write(self, packet: bytes, addr: Any = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class UdpSendResult:
    """What was sent: the target, the request id, how many copies left, and any error."""

    address: str
    request_id: int
    copies_sent: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class UdpConnectionRequester:
    """Sends Annex G UDP connection requests through ``transport``.

    ``first_id`` seeds the id counter (pass a random uint32); ``nonce_source(n)`` gives
    n random bytes for each request's cnonce. ``ts`` is the clock's Unix time.
    """

    def __init__(
        self,
        transport: DatagramWriter,
        clock: IReactorTime,
        *,
        first_id: int,
        nonce_source: Callable[[int], bytes],
        repeat: int = 3,
        interval: float = 1.0,
        log: Logger | None = None,
        answer_at_first_copy: bool = False,
    ) -> None:
        """``answer_at_first_copy``: the Deferred of :meth:`send` fires once the first copy
        is written (``copies_sent`` 1) and the others follow on the clock, so a caller that
        limits requests in flight (the job engine) does not hold a slot for the seconds of
        the copies; cancelling the Deferred then no longer stops them.

        Raises:
        ValueError: repeat below 1, interval negative, first_id outside uint32.
        """
        if repeat < 1:
            raise ValueError("repeat must be at least 1")
        if interval < 0:
            raise ValueError("interval must not be negative")
        if not 0 <= first_id <= 0xFFFFFFFF:
            raise ValueError("first_id must be an unsigned 32-bit integer")
        self._transport = transport
        self._clock = clock
        self._next_id = first_id
        self._nonce_source = nonce_source
        self._repeat = repeat
        self._interval = float(interval)
        self._log = log if log is not None else Logger(namespace="acs_security.connreq.udp")
        self._answer_early = answer_at_first_copy

    def _take_id(self) -> int:
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return request_id

    def send(self, address: str, username: str, password: str) -> Deferred[UdpSendResult]:
        """Send the request ``repeat`` times to ``address`` (UDPConnectionRequestAddress).

        The Deferred fires after the last copy, or at the first failed write with
        ``error`` set. Cancelling it stops the copies not yet sent.

        Raises:
            UdpAddressError: ``address`` is not ``ip:port`` / ``[ipv6]:port`` (a host
                name would need a DNS lookup; STUN always yields an IP address).
        """
        target = parse_host_port(address)
        try:
            ipaddress.ip_address(target.host)
        except ValueError:
            raise UdpAddressError("UDP connection request needs an IP address, not a host name") from None
        request_id = self._take_id()
        datagram = build_udp_connection_request(
            target,
            username=username,
            password=password,
            ts=int(self._clock.seconds()),
            request_id=request_id,
            cnonce=self._nonce_source(8).hex(),
        )
        pending: list[IDelayedCall] = []

        def cancel(_: Deferred[UdpSendResult]) -> None:
            for call in pending:
                if call.active():
                    call.cancel()

        done: Deferred[UdpSendResult] = Deferred(cancel)
        state = {"sent": 0, "over": 0}

        def finish(error: str | None) -> None:
            result = UdpSendResult(str(target), request_id, state["sent"], error)
            # Routine when sent (debug); a failure at the default level.
            emit = self._log.debug if error is None else self._log.info
            emit(
                "UDP connection request {id} to {address} as {username}: {copies} copies{error}",
                id=request_id,
                address=str(target),
                username=username,
                copies=result.copies_sent,
                error="" if error is None else f", failed: {error}",
            )
            state["over"] = 1
            if not done.called:
                done.callback(result)

        def send_copy() -> None:
            if state["over"] or (done.called and not self._answer_early):
                return
            try:
                self._transport.write(datagram, (target.host, target.port))
            except Exception as exc:  # noqa: BLE001 - socket errors end the request, reported
                cancel(done)
                finish(type(exc).__name__)
                return
            state["sent"] += 1
            if state["sent"] >= self._repeat:
                finish(None)
            elif state["sent"] == 1 and self._answer_early and not done.called:
                done.callback(UdpSendResult(str(target), request_id, 1))

        send_copy()
        for copy in range(1, self._repeat):
            if state["over"]:
                break
            pending.append(self._clock.callLater(self._interval * copy, send_copy))
        return done
