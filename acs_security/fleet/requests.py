"""The job engine's connection requests: which phones to wake now, by which method, and
what a failed request means for the task (a mixin of :class:`~acs_security.fleet.engine.FleetEngine`,
which holds the state).

Each tick, :meth:`RequestSide.send_requests` takes the job's due tasks within the limits
(in flight over the server, in progress per job), chooses a method per phone
(fleet/reach.py: HTTP when its ConnectionRequestURL is reachable, else UDP through the STUN
server's socket while its binding is fresh, else XMPP, else the periodic Inform) and sends
it. The method goes into the task (``reached_by``): the job report names, per phone, the
method of the last request sent before its session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from acs_security.connreq.methods import ReachMethod, XmppRequester
from acs_security.display import label_of
from acs_security.fleet.live import LiveJob, LiveTask
from acs_security.fleet.reach import ReachChoice, WakeOutcome, choose_method, send_wake
from acs_security.fleet.tasks import TaskEvent, TaskState
from acs_security.store.errors import StoreError, StoreUnavailable
from acs_security.store.jobs import TargetDevice

if TYPE_CHECKING:
    from acs_security.fleet.cluster import ClusterMode
    from acs_security.fleet.limits import EngineLimits
    from acs_security.fleet.writes import TaskWriter

__all__ = ["RequestSide"]

log = Logger(namespace="acs_security.fleet")


class RequestSide:
    """The connection-request methods of the engine (see the module doc)."""

    _cluster: ClusterMode | None
    _writer: TaskWriter
    _clock: IReactorTime
    _http: Any
    _udp: Any
    _xmpp: XmppRequester | None
    _cr_credentials: Callable[[str], Deferred[Any]] | None
    _default_cr: tuple[str, str] | None
    _cr_in_flight: int
    _store_down: bool
    _random: Callable[[], float]
    devices: dict[str, TargetDevice]
    limits: EngineLimits
    _udp_seen: dict[str, float]
    _waiting_binding: dict[str, LiveTask]

    def send_requests(self, job: LiveJob, now: float) -> None:
        if self._store_down:
            return  # the phones would be answered 503 (store_unavailable)
        in_progress = self._cluster.in_progress(job) if self._cluster is not None else job.in_progress
        budget = min(self.limits.max_cr_in_flight - self._cr_in_flight,
                     job.options.max_in_progress - in_progress)
        scanned, size = 0, len(job.queue)
        while budget > 0 and scanned < size and job.queue:
            task = job.queue.popleft()
            scanned += 1
            if task.state is not TaskState.PENDING or task.cr_exhausted or task.gone or not task.claimed:
                continue  # stale entry; exhausted ones wait for a periodic Inform
            if not job.open_wave(task.wave) or task.next_attempt > now:
                job.queue.append(task)
                continue
            device = self.devices.get(task.device_id)
            choice = self._choose(device, now) if device is not None else None
            if device is None or choice is None or choice.method is ReachMethod.PERIODIC:
                task.cr_exhausted = True
                why = choice.why if choice is not None else "device not known"
                task.detail = f"waiting for a periodic Inform ({why})"
                self._writer.mark(task.update(now))
                if device is not None and device.udp_connection_request_address and self._udp is not None:
                    # Its next STUN keep-alive makes it reachable again (note_udp_binding).
                    if len(self._waiting_binding) >= 1_000_000:
                        self._waiting_binding.clear()
                    self._waiting_binding[device.udp_connection_request_address] = task
                continue
            budget -= 1
            job.apply(task, TaskEvent.CR_SENT, now)
            task.requested_at = now
            task.reached_by = choice.method.value
            self._cr_in_flight += 1
            d = Deferred.fromCoroutine(self._connection_request(task, device, choice))
            d.addErrback(lambda f: log.failure("connection request crashed", f))

    def _choose(self, device: TargetDevice, now: float, *, has_credential: bool = True) -> ReachChoice:
        address = device.udp_connection_request_address
        seen = self._udp_seen.get(address) if address else None
        if seen is not None and (device.udp_seen is None or seen > device.udp_seen):
            device = self.devices[device.device_id] = replace(device, udp_seen=seen)
        return choose_method(device, now=now, http=self._http is not None, udp=self._udp is not None,
                             xmpp=self._xmpp is not None, has_credential=has_credential,
                             default_keepalive=self.limits.stun_keepalive)

    def note_udp_binding(self, device_id: str | None, address: str, seen: float) -> None:
        """The STUN server saw a phone at ``address`` (connreq/stun_service.py), the device
        ``device_id`` when its USERNAME named one: UDP requests go there from now on, and
        its keep-alives keep it fresh, without waiting for the store or an Inform."""
        if len(self._udp_seen) >= 1_000_000:
            self._udp_seen.clear()
        self._udp_seen[address] = seen
        device = self.devices.get(device_id) if device_id is not None else None
        waiting = self._waiting_binding.pop(address, None)
        if device is not None and device.udp_connection_request_address != address:
            old = device.udp_connection_request_address
            waiting = waiting or (self._waiting_binding.pop(old, None) if old else None)
            self.devices[device.device_id] = replace(device, udp_connection_request_address=address, udp_seen=seen)
        if waiting is not None and waiting.state is TaskState.PENDING and waiting.cr_exhausted and not waiting.gone:
            # It waited for its periodic Inform for want of a fresh binding: it has one now.
            waiting.cr_exhausted = False
            waiting.next_attempt = seen
            waiting.detail = None
            waiting.job.queue.append(waiting)
            self._writer.mark(waiting.update(seen))

    async def _connection_request(self, task: LiveTask, device: TargetDevice, choice: ReachChoice) -> None:
        try:
            try:
                creds = await self._credential(device.device_id)
            except StoreError as exc:
                self._store_failed_request(task, exc)
                return
            if creds is None and choice.method is not ReachMethod.HTTP:
                # UDP and XMPP carry the credential; HTTP may go without one (issue 19).
                choice = self._choose(device, self._clock.seconds(), has_credential=False)
                task.reached_by = choice.method.value if choice.method is not ReachMethod.PERIODIC else None
            if choice.method is ReachMethod.PERIODIC:
                outcome = WakeOutcome(False, "no connection-request credential for this device", final=True)
            else:
                outcome = await send_wake(choice, creds, http=self._http, udp=self._udp, xmpp=self._xmpp)
        finally:
            self._cr_in_flight -= 1
        now = self._clock.seconds()
        if task.state is not TaskState.REQUESTED or task.gone:
            return  # the device called in (or the job moved on, or another node has it) meanwhile
        if not outcome.ok:
            task.job.apply(task, TaskEvent.CR_LOST, now)
            self._failed_attempt(task, now, f"connection request failed ({outcome.detail})", final=outcome.final)

    def _store_failed_request(self, task: LiveTask, exc: StoreError) -> None:
        """The device's connection-request credential could not be read: nothing was sent,
        so the attempt does not count (an outage must not use up a device's attempts and
        leave it to its next periodic Inform); the task waits and is requested again."""
        now = self._clock.seconds()
        if task.state is not TaskState.REQUESTED or task.gone:
            return
        task.job.apply(task, TaskEvent.CR_LOST, now)
        task.detail = "connection request postponed: the store is unavailable"
        task.next_attempt = now + self.limits.backoff.delay(1, self._random())
        self._writer.mark(task.update(now))
        if not isinstance(exc, StoreUnavailable):
            log.warn("cannot read the connection-request credential of {label}: {error}",
                     device=task.device_id, label=label_of(task.device_id), error=str(exc))

    async def _credential(self, device_id: str) -> tuple[str, str] | None:
        if self._cr_credentials is not None:
            cred = await self._cr_credentials(device_id)
            if cred is not None:
                return cred.username, cred.password
        return self._default_cr

    def _failed_attempt(self, task: LiveTask, now: float, why: str, *, final: bool = False) -> None:
        task.attempts += 1
        task.detail = why
        if final or task.attempts >= self.limits.max_cr_attempts:
            task.cr_exhausted = True
            task.detail = f"{why}; waiting for the next periodic Inform"
        else:
            task.next_attempt = now + self.limits.backoff.delay(task.attempts, self._random())
        self._writer.mark(task.update(now))
