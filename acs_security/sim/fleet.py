"""A fleet of simulated Cisco phones in one process, over Twisted.

Scheduling: one heap of wake-up times for the whole fleet and one DelayedCall for its head,
so an idle phone costs a heap entry, not a timer. Phones that are due wait in a queue for one
of ``max_concurrent_sessions`` session slots, so 10 000 phones booting at once do not open
10 000 sockets; boots are spread over ``boot_ramp_s``. Periodic Informs follow each phone's
PeriodicInformInterval with jitter; failed sessions are retried with the TR-069 backoff
(3.2.1.1) or after the ACS's Retry-After.

Sessions and downloads run in :class:`~acs_security.sim.runner.SessionRunner` (one HTTP
connection per session); tests without sockets pass ``agent`` (e.g.
``treq.testing.RequestTraversalAgent``) instead. Connection requests arrive through
:mod:`acs_security.sim.listeners`, which asks this class (the ``ConnectionRequestHooks``).

Everything random comes from ``random.Random(seed)`` (timing, nonces) or from the seed and the
phone's index (identity and faults, :mod:`acs_security.sim.build`).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import deferLater
from twisted.web.iweb import IAgent
from twisted.web.server import Site

from acs_security.connreq.stun_service import widen_receive_buffer
from acs_security.cwmp import messages as m
from acs_security.httpauth.digest import DigestVerifier
from acs_security.httpauth.result import AuthFailure, AuthResult
from acs_security.mapping import Catalogue, load_catalogue
from acs_security.sim.build import index_of, plan_phone
from acs_security.sim.client_certs import DeviceCertificates
from acs_security.sim.faults import FaultKind, FaultSpec
from acs_security.sim.fleet_args import FleetConfigError, check_arguments
from acs_security.sim.fleet_args import endpoint as _endpoint
from acs_security.sim.listeners import ConnectionRequestRoot, UdpConnectionRequestProtocol, tracked_nonces_for
from acs_security.sim.lockout import AcsTlsFacts
from acs_security.sim.nat import NAT_VALUES, SimulatedNat, behind_nat
from acs_security.sim.phone import MS, Phone, PhoneEnvironment
from acs_security.sim.runner import SessionRunner
from acs_security.sim.stats import FleetStats
from acs_security.sim.table import DEFAULT_FIRMWARE, DEFAULT_MODELS, OLD_FIRMWARE, ModelTables
from acs_security.sim.udp_wake import UdpWake
from acs_security.sim.xmpp_phones import XmppPhones, uses_xmpp, xmpp_values

__all__ = ["FleetConfigError", "SimulatedFleet"]

# Phone.state values (fleet bookkeeping).
IDLE, QUEUED, SESSION, LOCKED, OFFLINE = range(5)
_CR_REALM = "Cisco IP Phone"


class SimulatedFleet:
    """``phones`` simulated phones talking CWMP to ``acs_url``. See docs/simulator.md.

    Raises FleetConfigError for arguments that cannot work, UnknownModelError for a model
    the catalogue does not know.
    """

    def __init__(
        self, reactor: Any, acs_url: str, *, phones: int,
        models: Sequence[str] = DEFAULT_MODELS, firmware: Sequence[str] = DEFAULT_FIRMWARE,
        seed: int = 0, inform_interval: float = 300.0, faults: FaultSpec | None = None,
        cr_listen: str | None = "127.0.0.1:0", udp_listen: str | None = "127.0.0.1:0",
        trust_ca_pem: bytes | None = None, serial_prefix: str = "SIM", serial_start: int = 0,
        max_concurrent_sessions: int = 200, boot_ramp_s: float | None = None,
        resolve: Mapping[str, str] | None = None, acs_username: str = "cpe",
        acs_password: str = "cpe", cr_password_mode: str = "per-phone",
        cr_username: str = "acs", cr_password: str = "", agent: IAgent | None = None,
        catalogue: Catalogue | None = None, request_timeout: float = 30.0,
        retry_scale: float = 1.0, cr_delay: tuple[float, float] = (0.05, 0.5),
        cr_min_interval: float = 1.0, slow_delay: float = 2.0, reboot_delay: float = 1.0,
        jitter: float = 0.1, udp_window_s: float = 30.0, advertise_host: str | None = None,
        acs_tls: AcsTlsFacts | None = None, bootstrap: bool = True,
        client_cert_dir: str | Path | None = None, connection_per_request: bool = False,
        nat: float = 0.0, stun_server: str | None = None, stun_keepalive: int = 30,
        xmpp: float = 0.0, xmpp_server: str | None = None, xmpp_domain: str = "xmpp.test",
        xmpp_allowed: Sequence[str] = (),
    ) -> None:
        check_arguments(phones=phones, acs_url=acs_url, max_concurrent_sessions=max_concurrent_sessions,
                        inform_interval=inform_interval, jitter=jitter, retry_scale=retry_scale,
                        request_timeout=request_timeout, cr_password_mode=cr_password_mode, cr_password=cr_password,
                        nat=nat, stun_keepalive=stun_keepalive, xmpp=xmpp, serial_prefix=serial_prefix,
                        serial_start=serial_start)
        client_certs = None
        if client_cert_dir is not None:
            try:
                client_certs = DeviceCertificates(client_cert_dir)
            except NotADirectoryError as exc:
                raise FleetConfigError(f"client_cert_dir: {exc}") from None
        self._reactor = reactor
        self._rng = random.Random(seed)
        self.seed = seed
        self.stats = FleetStats()
        self._catalogue = catalogue if catalogue is not None else load_catalogue()
        self._tables = ModelTables(self._catalogue)
        self._cr_listen = _endpoint(cr_listen, "cr_listen")
        self._udp_listen = _endpoint(udp_listen, "udp_listen")
        self._advertise = advertise_host
        self._runner = SessionRunner(
            reactor, self.stats, self._rng, self._catalogue, agent=agent,
            resolve={k.lower(): v for k, v in (resolve or {}).items()},
            trust_root=ssl.Certificate.loadPEM(trust_ca_pem) if trust_ca_pem else None,
            timeout=request_timeout, retry_scale=retry_scale, slow_delay=slow_delay,
            acs_tls=acs_tls, client_certs=client_certs, connection_per_request=connection_per_request)
        self._cr_delay = cr_delay
        self._cr_min_interval = cr_min_interval
        self._slow_delay = slow_delay
        self._reboot_delay = reboot_delay
        self._jitter = jitter
        self.udp = UdpWake(reactor, self.stats, window_s=udp_window_s, find=self.find_phone,
                           unreachable=self.unreachable, accept=self.connection_request)
        self._max_sessions = max_concurrent_sessions
        self._ramp = boot_ramp_s if boot_ramp_s is not None else max(1.0, phones / 200)
        self._bootstrap = bootstrap
        self._prefix = serial_prefix
        self._start_index = serial_start
        self._models = tuple(models)
        self._firmware = tuple(firmware)
        self._faults = faults or FaultSpec({})
        self.env = PhoneEnvironment(
            self._catalogue, reactor.seconds, acs_url=acs_url, acs_username=acs_username,
            acs_password=acs_password, periodic_interval=max(1, round(inform_interval)),
            cr_mode=cr_password_mode, cr_username=cr_username, cr_password=cr_password,
            cr_secret=random.Random(f"cr:{seed}").randbytes(32),
        )
        self.env.listener = self
        #: The phones, in serial order; those behind NAT (sim/nat.py) by their index in it.
        self.phones: list[Phone] = []
        self._nat_local: list[int] = []
        self._stun_keepalive = stun_keepalive
        self.nat = SimulatedNat(reactor, stun_server=_endpoint(stun_server, "stun_server"), keepalive=stun_keepalive,
                                deliver=lambda phone, data: self.udp_datagram(data, phone),
                                changed=lambda phone: self._soon(phone, 0.0), random_bytes=self._rng.randbytes)
        self.xmpp = XmppPhones(reactor, server=_endpoint(xmpp_server, "xmpp_server"), seed=seed,
                               accept=lambda phone: self.connection_request(phone, "xmpp"),
                               unreachable=self.unreachable)
        for offset in range(phones):
            plan = plan_phone(seed, serial_start + offset, serial_prefix=serial_prefix,
                              models=self._models, firmware=self._firmware, faults=self._faults)
            table = self._tables.get(plan.product_class, plan.firmware)
            self.phones.append(Phone(plan.serial, table, self.env, faults=plan.faults))
            if behind_nat(seed, serial_start + offset, nat):
                self.phones[-1].store(NAT_VALUES(serial_start + offset, plan.serial, stun_keepalive))
                self._nat_local.append(offset)
            if uses_xmpp(seed, serial_start + offset, xmpp):
                values = xmpp_values(serial_start + offset, plan.serial, xmpp_domain, xmpp_allowed,
                                     behind_nat=offset not in self._nat_local[-1:])
                self.xmpp.add(self.phones[-1], 0.0, values)
        self._heap: list[tuple[float, int, int]] = []
        self._seq = 0
        self._timer: IDelayedCall | None = None
        self._ready: deque[int] = deque()
        self._active = 0
        self._running: dict[int, Deferred[Any]] = {}
        self._downloads: set[Deferred[Any]] = set()
        self._calls: set[IDelayedCall] = set()
        self._ports: list[Any] = []
        self._stopped = False
        self._started = False
        self._pump_pending = False
        self._cr_verifier = DigestVerifier(_CR_REALM, self._rng.randbytes(32), algorithms=("SHA-256", "MD5"),
                                           max_tracked_nonces=tracked_nonces_for(phones))

    def __repr__(self) -> str:
        return f"SimulatedFleet({len(self.phones)} phones -> {self.env.acs_url!r})"

    # ------------------------------------------------------------------ public API
    def start(self) -> Deferred[None]:
        """Listen for connection requests and schedule the phones' boots over the ramp.

        Raises CannotListenError when a listener cannot bind; FleetConfigError when started
        twice.
        """
        if self._started:
            raise FleetConfigError("the fleet was already started")
        self._started = True
        now = self._reactor.seconds()
        if self._cr_listen is not None:
            host, port = self._cr_listen
            site = Site(ConnectionRequestRoot(self, self._cr_verifier, self._reactor,
                                              self._rng.randbytes))
            site.noisy = False
            # No access log line per connection request (the fleet's status line counts them).
            site.log = lambda request: None  # type: ignore[method-assign]
            listening = self._reactor.listenTCP(port, site, interface=host)
            self._ports.append(listening)
            shown = self._advertise or (host if host not in ("0.0.0.0", "::") else "127.0.0.1")
            self.env.cr_url_base = f"http://{shown}:{listening.getHost().port}/"
        if self._udp_listen is not None:
            host, port = self._udp_listen
            listening = self._reactor.listenUDP(port, UdpConnectionRequestProtocol(self),
                                                interface=host)
            # One port takes every phone's UDP requests: a wave of them (three copies
            # each, Annex G) would overflow the kernel's default buffer.
            widen_receive_buffer(listening)
            self._ports.append(listening)
            shown = self._advertise or (host if host not in ("0.0.0.0", "::") else "127.0.0.1")
            self.env.udp_address = f"{shown}:{listening.getHost().port}"
        count = len(self.phones)
        for i in self._nat_local:
            self.nat.add(self.phones[i], now + (self._ramp * i / count))
        self.nat.start()
        self.xmpp.start()
        for i, phone in enumerate(self.phones):
            boot = now + (self._ramp * i / count if count else 0.0)
            phone.boot_time = boot
            if self._bootstrap:
                phone.add_event("0 BOOTSTRAP")
            phone.add_event("1 BOOT")
            phone.next_periodic = boot + self._interval(phone)
            if phone.faults & FaultKind.OFFLINE:
                phone.state = OFFLINE
                continue
            self._push(phone, i, boot)
        self._arm()
        return succeed(None)

    def stop(self) -> Deferred[Any]:
        """Stop everything: timers, sessions in progress, listeners, connection pools."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()
        for d in [*self._running.values(), *self._downloads]:
            d.cancel()
        waits: list[Deferred[Any]] = []
        for port in self._ports:
            result = port.stopListening()
            if isinstance(result, Deferred):
                waits.append(result)
        self._ports = []
        waits.append(self.nat.stop())
        waits.append(self.xmpp.stop())
        waits.extend(self._runner.stop())
        return DeferredList(waits, consumeErrors=True)

    def phone(self, serial: str) -> Phone:
        """The phone with that serial. Raises KeyError."""
        index = index_of(self._prefix, serial)
        local = None if index is None else index - self._start_index
        if local is None or not 0 <= local < len(self.phones) or self.phones[local].serial != serial:
            raise KeyError(serial)
        return self.phones[local]

    def connection_request_credentials(self, serial: str) -> tuple[str, str]:
        """(ConnectionRequestUsername, ConnectionRequestPassword) of a phone. Raises KeyError."""
        return self.phone(serial).cr_credentials()

    def connection_request_url(self, serial: str) -> str:
        """The phone's ConnectionRequestURL (empty before ``start``). Raises KeyError."""
        return self.phone(serial).value(MS + "ConnectionRequestURL")

    @property
    def udp_address(self) -> str:
        return self.env.udp_address

    def inform_now(self, serial: str, event: str = "6 CONNECTION REQUEST") -> bool:
        """Make the phone open a session at once with ``event``; False when it cannot
        (locked out or offline). Raises KeyError."""
        phone = self.phone(serial)
        if phone.state in (LOCKED, OFFLINE) or phone.faults & FaultKind.OFFLINE:
            return False
        phone.add_event(event)
        self._soon(phone, 0.0)
        return True

    def set_fault(self, serial: str, kind: FaultKind | str, on: bool = True) -> None:
        """Turn one fault of one phone on or off. Raises KeyError, ValueError for a kind."""
        phone = self.phone(serial)
        if isinstance(kind, str):
            try:
                kind = FaultKind[kind.upper()]
            except KeyError:
                raise ValueError(f"unknown fault kind {kind!r}") from None
        was = phone.faults
        phone.faults = (was | kind.value) if on else (was & ~kind.value)
        if kind is FaultKind.OLD_FIRMWARE and bool(was & kind) != on:
            index = self._start_index + self.phones.index(phone)
            plan = plan_phone(self.seed, index, serial_prefix=self._prefix, models=self._models,
                              firmware=self._firmware, faults=FaultSpec({}))
            phone.table = self._tables.get(plan.product_class,
                                           OLD_FIRMWARE if on else plan.assigned_firmware)
        if kind is FaultKind.OFFLINE:
            if on and phone.state != SESSION:
                phone.state = OFFLINE
                phone.wake_seq += 1
            elif not on and phone.state == OFFLINE:
                phone.state = IDLE
                phone.reboot(self._reactor.seconds(), None)  # powered on again
                self._soon(phone, 0.0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float,
                 interval: float = 0.05) -> Deferred[None]:
        """Fires when ``predicate()`` holds, polling on the reactor clock; fails with
        TimeoutError after ``timeout`` seconds of that clock."""
        async def poll() -> None:
            deadline = self._reactor.seconds() + timeout
            while not predicate():
                if self._reactor.seconds() >= deadline:
                    raise TimeoutError(f"condition not met within {timeout} s")
                await deferLater(self._reactor, interval, lambda: None)

        return Deferred.fromCoroutine(poll())

    @property
    def in_session(self) -> int:
        return self._active

    def locked_out(self) -> list[Phone]:
        return [p for p in self.phones if p.locked_out is not None]

    def status_line(self) -> str:
        return self.stats.line(phones=len(self.phones), in_session=self._active,
                               locked_out=sum(1 for p in self.phones if p.locked_out is not None))

    # ------------------------------------------------------------------ scheduling
    def _interval(self, phone: Phone) -> float:
        _, interval = phone.periodic()
        return interval * (1 + self._rng.uniform(-self._jitter, self._jitter))

    def _local(self, phone: Phone) -> int:
        index = index_of(self._prefix, phone.serial)
        return (index or 0) - self._start_index

    def _push(self, phone: Phone, local: int, at: float) -> None:
        self._seq += 1
        phone.wake_seq = self._seq
        heapq.heappush(self._heap, (at, self._seq, local))

    def _schedule(self, phone: Phone) -> None:
        """Next wake-up: the retry or the periodic Inform, whichever comes first."""
        if self._stopped or phone.state in (LOCKED, OFFLINE, SESSION, QUEUED):
            return
        enabled, _ = phone.periodic()
        times = [t for t in (phone.retry_at, phone.next_periodic if enabled else None)
                 if t is not None]
        phone.wake_seq += 1  # forget older entries
        if times:
            self._push(phone, self._local(phone), min(times))
            self._arm()

    def _soon(self, phone: Phone, delay: float) -> None:
        """A new event: open a session after ``delay`` (TR-069 3.2.1.1: a new event ends
        the retry wait)."""
        if self._stopped or phone.state in (LOCKED, OFFLINE):
            return
        phone.retry_at = None
        if phone.state in (SESSION, QUEUED):
            return  # the events go with the queued session or follow the current one
        self._push(phone, self._local(phone), self._reactor.seconds() + delay)
        self._arm()

    def _arm(self) -> None:
        if self._stopped or not self._heap:
            return
        due = self._heap[0][0]
        delay = max(0.0, due - self._reactor.seconds())
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= due:
                return
            self._timer.reset(delay)
        else:
            self._timer = self._reactor.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self._reactor.seconds()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, local = heapq.heappop(heap)
            phone = self.phones[local]
            if phone.wake_seq == seq:
                self._wake(phone, now)
        self._pump()
        self._arm()

    def _wake(self, phone: Phone, now: float) -> None:
        if phone.state != IDLE:
            return
        enabled, _ = phone.periodic()
        new_event = False
        if enabled and now >= phone.next_periodic:
            phone.add_event("2 PERIODIC")
            phone.next_periodic = now + self._interval(phone)
            new_event = True
        if phone.retry_at is not None and now < phone.retry_at and not new_event:
            self._schedule(phone)
            return
        phone.retry_at = None
        if phone.has_events() or phone.transfers:
            phone.state = QUEUED
            self._ready.append(self._local(phone))
        else:
            self._schedule(phone)

    def _pump(self) -> None:
        while not self._stopped and self._active < self._max_sessions and self._ready:
            local = self._ready.popleft()
            phone = self.phones[local]
            if phone.state != QUEUED:
                continue
            phone.state = SESSION
            self._active += 1
            d = Deferred.fromCoroutine(self._session(phone))
            self._running[local] = d
            d.addBoth(self._session_over, phone, local)

    def _pump_soon(self) -> None:
        """Start waiting sessions from the reactor, not from inside the session that just
        ended: with an in-memory ACS a whole session runs synchronously, and chaining the
        next one into its callbacks would recurse through the entire queue."""
        if not self._pump_pending:
            self._pump_pending = True
            self._call_later(0, self._pumped)

    def _pumped(self) -> None:
        self._pump_pending = False
        self._pump()

    def _session_over(self, result: Any, phone: Phone, local: int) -> None:
        self._running.pop(local, None)
        self._active -= 1
        if phone.state == SESSION:
            # Switched off during the session (set_fault offline): it stays off.
            phone.state = OFFLINE if phone.faults & FaultKind.OFFLINE else IDLE
        if not self._stopped:
            self._after_session(phone)
            self._pump_soon()
        # Errors of a session are turned into SessionEnd inside _session; anything left
        # here (a cancelled session at stop) is consumed.
        return None

    # ------------------------------------------------------------------ sessions
    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self._call_later(delay, fn)

    def _call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            self._calls.discard(call)
            fn(*args)

        call = self._reactor.callLater(delay, run)
        self._calls.add(call)

    async def _session(self, phone: Phone) -> None:
        reason = phone.lockout_reason()
        if reason is not None:
            self._lock(phone, reason)
            return
        await self._runner.session(phone)

    def _after_session(self, phone: Phone) -> None:
        now = self._reactor.seconds()
        rebooting = False
        for kind, argument in phone.take_actions():
            if kind == "reboot":
                phone.reboot(now + self._reboot_delay, argument)
                rebooting = True
            elif kind == "factory_reset":
                phone.factory_reset(now + self._reboot_delay)
                phone.udp_verifier = None
                if phone in self.nat:  # still behind its NAT: private URL, STUN client on
                    local = self._local(phone)
                    phone.store(NAT_VALUES(self._start_index + local, phone.serial, self._stun_keepalive))
                self.xmpp.restore(phone)
                rebooting = True
            elif kind in ("download", "upload"):
                self._transfer(phone, argument)
        if phone.state != IDLE:
            return
        reason = phone.lockout_reason()
        if reason is not None:
            self._lock(phone, reason)
        elif rebooting:
            self._soon(phone, self._reboot_delay)  # the boot Inform after the restart
        elif phone.retry_at is None and (phone.has_events() or phone.transfers):
            self._soon(phone, 0.0)  # events raised during the session go at once
        else:
            self._schedule(phone)

    def _lock(self, phone: Phone, reason: str) -> None:
        phone.locked_out = reason
        phone.state = LOCKED
        phone.wake_seq += 1
        self.stats.lockouts[reason.split(" ")[0].lower()] += 1

    def _transfer(self, phone: Phone, request: m.Download | m.Upload) -> None:
        """Run a Download or Upload after the session; then the TransferComplete goes in a
        new session (after the reboot, when the file needed one)."""
        def done(rebooted: bool | None) -> None:
            if self._stopped:
                return
            if rebooted:
                phone.boot_time = self._reactor.seconds() + self._reboot_delay
            self._soon(phone, self._reboot_delay if rebooted else 0.0)

        work = (self._runner.download(phone, request) if isinstance(request, m.Download)
                else self._runner.upload(phone, request))
        d: Deferred[Any] = Deferred.fromCoroutine(work)
        self._downloads.add(d)

        def forget(result: Any) -> Any:
            self._downloads.discard(d)
            return result

        d.addBoth(forget)
        d.addCallback(done)
        d.addErrback(lambda _: None)  # cancelled at stop

    # ------------------------------------------------------------------ PhoneListener
    def phone_changed(self, phone: Phone, paths: tuple[str, ...], by_acs: bool) -> None:
        if not self._started:
            return  # set before start(): the boot schedules everything
        if MS + "PeriodicInformInterval" in paths or MS + "PeriodicInformEnable" in paths:
            # TR-069: a new interval restarts the periodic schedule from now.
            phone.next_periodic = self._reactor.seconds() + self._interval(phone)
        if MS + "ConnectionRequestUsername" in paths:
            self.udp.renamed(phone)
        if by_acs or phone.state == SESSION:
            return  # applied when the session ends
        if phone.state == LOCKED and phone.lockout_reason() is None:
            phone.state = IDLE
            phone.locked_out = None
        if phone.state == IDLE:
            if phone.has_events():
                self._soon(phone, 0.0)
            else:
                self._schedule(phone)

    # ------------------------------------------------------------------ ConnectionRequestHooks
    def find_phone(self, serial: str) -> Phone | None:
        try:
            return self.phone(serial)
        except KeyError:
            return None

    def unreachable(self, phone: Phone) -> bool:
        if phone.faults & FaultKind.OFFLINE or phone.state == OFFLINE:
            return True
        # FIPS mode or TR-069 off: the phone's CWMP client, listener included, is down.
        return (phone.lookup("Device.X_CISCO_SecuritySettings.FIPSMode") == "Yes"
                or phone.lookup(MS + "EnableCWMP") == "false")

    def answer_delay(self, phone: Phone) -> float:
        return self._slow_delay if phone.faults & FaultKind.SLOW else 0.0

    def auth_result(self, phone: Phone, result: AuthResult) -> None:
        if not result.ok and result.reason is not AuthFailure.MISSING:
            self.stats.cr_refused["auth"] += 1

    def connection_request(self, phone: Phone, via: str) -> tuple[int, float | None]:
        now = self._reactor.seconds()
        refused = self.stats.udp_ignored if via == "udp" else self.stats.cr_refused
        if via == "http" and phone.faults & FaultKind.CR503:
            refused["fault503"] += 1
            return 503, 30.0
        if phone.state == SESSION:
            refused["busy"] += 1
            return 503, 5.0
        if now - phone.last_cr < self._cr_min_interval:
            # TR-069 3.2.2: the CPE may limit how often it accepts connection requests.
            refused["rate"] += 1
            return 503, self._cr_min_interval - (now - phone.last_cr)
        phone.last_cr = now
        if via == "udp":
            self.stats.udp_accepted += 1
        elif via == "xmpp":
            self.stats.xmpp_accepted += 1
        else:
            self.stats.cr_accepted += 1
        if phone.state == LOCKED:
            return 200, None  # accepted, but the phone will not contact that ACS
        phone.add_event("6 CONNECTION REQUEST")
        self._soon(phone, self._rng.uniform(*self._cr_delay))
        return 200, None

    @property
    def nat_phones(self) -> list[Phone]:
        """The phones behind NAT (sim/nat.py), in serial order."""
        return [self.phones[i] for i in self._nat_local]

    def udp_datagram(self, data: bytes, to: Phone | None = None) -> None:
        """A UDP connection request (sim/udp_wake.py)."""
        self.udp.datagram(data, to)
