"""The STUN server of ``serve`` and the UDP connection requests sent from its socket.

TR-111 part 2 / TR-069 Annex G: a phone behind NAT keeps a mapping open in its NAT by
sending Binding Requests to the ACS's STUN server; an address-and-port-restricted NAT then
forwards to the phone only datagrams from the address and port the phone sent to, so the
UDP connection request must leave from the STUN server's own socket. This module owns that
socket: it runs :class:`~acs_security.connreq.stun_server.StunServerProtocol` on it, sends
the Annex G datagrams through its transport (:class:`RateLimitedUdpRequester` over
:class:`~acs_security.connreq.udp_client.UdpConnectionRequester`), and writes the bindings
it learns to the store in batches (store/bindings.py): every phone sends one every
keep-alive period, so one transaction per datagram would be one write per phone per
minute. A batch goes every ``flush_interval`` seconds, or at once when ``max_batch``
bindings wait; within a batch the latest sight of an address wins.

Every binding also goes at once to ``on_device_binding`` (the job engine: device id when
known, address, time), so a push follows a NAT that remapped a phone, and sees a phone's
keep-alives, without waiting for the batch or an Inform.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from acs_security.connreq.stun_server import MISSING, LoginCache, StunBinding, StunServerProtocol
from acs_security.connreq.udp_client import UdpConnectionRequester, UdpSendResult
from acs_security.connreq.udp_drops import socket_drops
from acs_security.store.bindings import UdpBindingRecord

__all__ = ["RECEIVE_BUFFER_BYTES", "RateLimitedUdpRequester", "StunService", "widen_receive_buffer"]

log = Logger(namespace="acs_security.connreq.stun")

# The STUN socket's receive buffer, asked of the kernel. Linux's default (rmem_default,
# 208 KiB) holds about 256 small datagrams, and what arrives while the reactor is busy
# elsewhere waits there: 100,000 phones at a 30 s keep-alive send 3,300 Binding Requests a
# second, so a 100 ms pause of the reactor already overflows the default and drops phones'
# keep-alives. Linux caps the size at net.core.rmem_max (docs/nat.md says how to raise it).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


def socket_of(port: Any) -> socket.socket | None:
    """The socket of a listening UDP port, or None (not listening, or a test's fake)."""
    get_handle = getattr(port, "getHandle", None)
    handle = get_handle() if get_handle is not None else None
    return handle if isinstance(handle, socket.socket) else None


def widen_receive_buffer(port: Any, wanted: int = RECEIVE_BUFFER_BYTES) -> int | None:
    """Ask for a ``wanted``-byte receive buffer on a listening UDP port; returns the size
    the kernel granted (Linux reports twice what it books), or None when the port has no
    socket to set it on."""
    handle = socket_of(port)
    if handle is None:
        return None
    try:
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        granted: int = handle.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    except OSError as exc:
        log.warn("cannot size a UDP socket's receive buffer: {error}", error=exc)
        return None
    return granted


class RateLimitedUdpRequester:
    """At most one UDP connection request per address every ``min_interval`` seconds (a
    phone is not flooded when several jobs or retries want it at once; Annex G's copies of
    one request are not counted, they are one request)."""

    def __init__(self, inner: Any, clock: Any, *, min_interval: float = 2.0, max_entries: int = 200_000) -> None:
        self._inner = inner
        self._clock = clock
        self._min = min_interval
        self._max = max_entries
        self._last: dict[str, float] = {}
        self.limited = 0

    def send(self, address: str, username: str, password: str) -> Deferred[UdpSendResult]:
        now = self._clock.seconds()
        last = self._last.get(address)
        if last is not None and now - last < self._min:
            self.limited += 1
            return succeed(UdpSendResult(address, 0, 0, f"rate-limited: one request per {self._min:g} s"))
        if len(self._last) >= self._max:
            self._last = {a: t for a, t in self._last.items() if now - t < self._min}
        self._last[address] = now
        result: Deferred[UdpSendResult] = self._inner.send(address, username, password)
        return result


class StunService:
    """One node's STUN server: listens, answers, stores, and sends UDP requests.

    ``store``: a DeferredStore (``call(method, ...)``). ``node``: this node's name, stored
    with each binding. ``public_address``: (ip, port) the phones reach this server at,
    sent to RFC 3489 clients as SOURCE-/CHANGED-ADDRESS.
    """

    def __init__(
        self,
        clock: Any,
        store: Any,
        *,
        random_bytes: Callable[[int], bytes],
        node: str | None = None,
        public_address: tuple[str, int] | None = None,
        on_device_binding: Callable[[str | None, str, float], None] | None = None,
        flush_interval: float = 1.0,
        max_batch: int = 2000,
        login_ttl: float = 300.0,
        udp_repeat: int = 3,
        udp_interval: float = 1.0,
        min_request_interval: float = 2.0,
        keep_bindings: timedelta = timedelta(days=1),
        default_login: tuple[str, str] | None = None,
    ) -> None:
        self._clock = clock
        self._store = store
        self._random_bytes = random_bytes
        self._node = node
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._keep = keep_bindings
        self.on_device_binding = on_device_binding
        self.logins = LoginCache(lambda names: store.call("connection_request_logins", names), clock, ttl=login_ttl,
                                 default=default_login)
        self.protocol = StunServerProtocol(self._observe, server_address=public_address, logins=self.logins)
        self._udp_repeat = udp_repeat
        self._udp_interval = udp_interval
        self._min_request_interval = min_request_interval
        self._pending: dict[str, tuple[StunBinding, float]] = {}
        self._changed: set[str] = set()
        self._flushing = False
        self._after_flush: list[Deferred[None]] = []
        self._loop: LoopingCall | None = None
        self._purged = float("-inf")
        self._port: Any = None
        self.requester: RateLimitedUdpRequester | None = None
        # For the metrics (server/metrics.py watch_stun): Binding Requests answered, those
        # that said BINDING-CHANGE, bindings written to the store and batches that failed.
        self.bindings_seen = 0
        self.binding_changes = 0
        self.bindings_written = 0
        self.write_failures = 0

    # -- life cycle -----------------------------------------------------------------------

    def listen(self, reactor: Any, host: str, port: int) -> Any:
        """Bind the UDP socket and start the batch writer; returns the listening port.

        Raises:
            twisted.internet.error.CannotListenError: the port cannot be bound.
        """
        self._port = reactor.listenUDP(port, self.protocol, interface=host)
        granted = widen_receive_buffer(self._port)
        if granted is not None and granted < RECEIVE_BUFFER_BYTES:
            log.info("the STUN socket's receive buffer is {granted} bytes (asked {wanted}; "
                     "net.core.rmem_max caps it): a burst of Binding Requests beyond it is dropped",
                     granted=granted, wanted=RECEIVE_BUFFER_BYTES)
        self.requester = RateLimitedUdpRequester(
            UdpConnectionRequester(self._port, self._clock, first_id=int.from_bytes(self._random_bytes(4), "big"),
                                   nonce_source=self._random_bytes, repeat=self._udp_repeat,
                                   interval=self._udp_interval, answer_at_first_copy=True),
            self._clock, min_interval=self._min_request_interval)
        self.start_writing()
        return self._port

    def start_writing(self) -> None:
        """Write the pending bindings every ``flush_interval`` seconds (listen() calls it)."""
        if self._loop is None:
            self._loop = LoopingCall(self.flush)
            self._loop.clock = self._clock
            self._loop.start(self._flush_interval, now=False)

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped at the STUN socket because its receive buffer was
        full (connreq/udp_drops.py), or None when not listening or the system does not say."""
        handle = socket_of(self._port)
        return socket_drops(handle) if handle is not None else None

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port), or None before listen()."""
        if self._port is None:
            return None
        host = self._port.getHost()
        return host.host, host.port

    def stop(self) -> Deferred[None]:
        """Stop listening and write what is pending."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        d: Deferred[Any] = succeed(None)
        if self._port is not None:
            stopped = self._port.stopListening()
            self._port = None
            if isinstance(stopped, Deferred):
                d = stopped
        d.addCallback(lambda _: self.flush())
        return d

    # -- bindings -------------------------------------------------------------------------

    def _observe(self, binding: StunBinding) -> None:
        now = self._clock.seconds()
        self.bindings_seen += 1
        address = binding.address
        self._pending[address] = (binding, now)
        if binding.binding_change:
            self.binding_changes += 1
            self._changed.add(address)
        if self.on_device_binding is not None:
            self.on_device_binding(binding.device_id, address, now)
        if len(self._pending) >= self._max_batch:
            self.flush()

    def flush(self) -> Deferred[None]:
        """Write the pending bindings as one batch (one at a time; the next waits its turn).

        Fires once every binding seen before the call is written (or its write failed): a
        call while a batch is being written waits for it and then writes what came since,
        so stop() and a caller that reads the store after it see every binding.
        """
        if self._flushing:
            waiter: Deferred[None] = Deferred()
            self._after_flush.append(waiter)
            return waiter
        if not self._pending:
            return succeed(None)
        pending, self._pending = self._pending, {}
        changed, self._changed = self._changed, set()
        records = []
        for address, (binding, seen) in pending.items():
            device_id = binding.device_id
            if device_id is None and binding.username:
                login = self.logins.get(binding.username)  # looked up since the request came
                if login is not MISSING and login is not None and login[0] is not None:
                    device_id = login[0]
                    if self.on_device_binding is not None:
                        self.on_device_binding(device_id, address, seen)
            records.append(UdpBindingRecord(
                address, datetime.fromtimestamp(seen, UTC), device_id=device_id,
                username=binding.username or None, changed=address in changed, server=self._node))
        self._flushing = True
        d: Deferred[Any] = self._store.call("record_udp_bindings", records)

        def written(moved: Any) -> None:
            self.bindings_written += len(records)
            if moved:
                log.debug("{n} phone(s) behind NAT have a new UDP address", n=moved)

        def failed(failure: Any) -> None:
            # The phones send again within their keep-alive period: nothing is queued again.
            self.write_failures += 1
            log.warn("writing {n} STUN binding(s) failed: {error}", n=len(records), error=failure.getErrorMessage())

        def done(_: Any) -> None:
            self._flushing = False
            self._purge_soon()
            waiters, self._after_flush = self._after_flush, []
            if waiters:
                self.flush().addBoth(release, waiters)

        def release(_: Any, waiters: list[Deferred[None]]) -> None:
            for waiter in waiters:
                waiter.callback(None)

        d.addCallbacks(written, failed)
        d.addBoth(done)
        return d

    def _purge_soon(self) -> None:
        now = self._clock.seconds()
        if now - self._purged < 600:
            return
        self._purged = now
        before = datetime.fromtimestamp(now, UTC) - self._keep
        d = self._store.call("purge_udp_bindings", before)
        d.addErrback(lambda f: log.warn("purging old STUN bindings failed: {error}", error=f.getErrorMessage()))
