"""The fleet job engine: connection requests, waves and outcomes, and the sessions' provisioner.

Two halves meet here:
- a tick (every ``tick`` seconds on the clock) that, for each running job, opens waves,
  halts on the fault brake, sends connection requests within the limits, notices devices
  that accepted a request but never called, and ends the job at its deadline;
- the :class:`~acs_security.server.provisioning.Provisioner` of the CWMP endpoint
  (fleet/session_side.py): when a targeted device is in a session, it gets its
  SetParameterValues (with the job's ParameterKey), and the response or fault becomes the
  task's outcome, committed before the session goes on.

With several nodes on one store, fleet/cluster.py takes over what the store must decide
(claims, counts, job decisions; decision 0005).

A device that already carries the job's ParameterKey in its Inform is done: that is how a
restarted server resumes without applying anything twice.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.connreq.methods import XmppRequester
from acs_security.files.offers import FileOffers
from acs_security.fleet.cluster import ClusterMode, ClusterOptions
from acs_security.fleet.joblog import job_event, maybe_progress
from acs_security.fleet.limits import EngineLimits
from acs_security.fleet.live import PARAMETER_KEY_PREFIX, JobOptions, LiveJob, LiveTask
from acs_security.fleet.plancache import PlanCache
from acs_security.fleet.requests import RequestSide
from acs_security.fleet.selector import Selector
from acs_security.fleet.session_side import SessionSide
from acs_security.fleet.tasks import ACTIVE, TaskEvent, TaskState
from acs_security.fleet.waves import WaveOptions, assign_waves, halt_reason, job_verdict
from acs_security.fleet.writes import TaskWriter
from acs_security.mapping import Catalogue, load_catalogue
from acs_security.policy.document import Policy
from acs_security.policy.plan import DevicePlan, plan_device
from acs_security.store.errors import StoreUnavailable
from acs_security.store.jobs import TargetDevice

__all__ = ["FleetEngine", "EngineLimits", "PARAMETER_KEY_PREFIX"]

log = Logger(namespace="acs_security.fleet")


class FleetEngine(SessionSide, RequestSide):
    def __init__(
        self,
        *,
        store: Any,
        clock: IReactorTime,
        http_requester: Any = None,
        udp_requester: Any = None,
        xmpp_requester: XmppRequester | None = None,
        cr_credentials: Callable[[str], Deferred[Any]] | None = None,
        default_cr_credential: tuple[str, str] | None = None,
        catalogue: Catalogue | None = None,
        limits: EngineLimits | None = None,
        random: Callable[[], float] | None = None,
        cluster: ClusterOptions | None = None,
        node: str | None = None,
        files: FileOffers | None = None,
        store_available: Callable[[], bool] | None = None,
    ) -> None:
        """``files``: how the engine offers cfg.xml Downloads and Uploads (files/offers.py);
        None: settings that need a file fault with that reason, backups cannot run.
        ``store_available()``: False while the store's database cannot be used (the
        server's StoreHealth, store/health.py); None: always taken as available."""
        self._store = store
        self._files = files
        self._clock = clock
        self._http = http_requester
        self._udp = udp_requester
        self._xmpp = xmpp_requester
        # Public UDP address -> when the STUN server last saw it (RequestSide.note_udp_binding).
        self._udp_seen: dict[str, float] = {}
        # Public UDP address -> the task that waits for the phone's next STUN keep-alive.
        self._waiting_binding: dict[str, LiveTask] = {}
        self._cr_credentials = cr_credentials
        self._default_cr = default_cr_credential
        self._catalogue = catalogue or load_catalogue()
        self.limits = limits or EngineLimits()
        self._random = random or random_module.Random().random
        self.jobs: dict[int, LiveJob] = {}
        self.devices: dict[str, TargetDevice] = {}
        self._by_device: dict[str, list[LiveTask]] = {}
        self._writer = TaskWriter(store, clock=clock)
        # Per job: its devices' plans, memoised (plancache.py: planning is most of a push
        # session's CPU, and a fleet's devices mostly share a plan).
        self._plans: dict[int, PlanCache] = {}
        self._cr_in_flight = 0
        self._loop: LoopingCall | None = None
        self._ticking = False
        # Several nodes on one store (fleet/cluster.py); None: this process is the only one.
        self._cluster = ClusterMode(self, cluster, store=store, clock=clock) if cluster is not None else None
        self.node = cluster.node if cluster is not None else node
        self._session_tasks: dict[str, list[LiveTask]] = {}
        # Job id -> when its last progress line was logged (joblog.py).
        self._progress_logged: dict[int, float] = {}
        # Memos of the transfers (transfers.py): rendered files by plan, files' values.
        self._rendered: dict[Any, bytes] = {}
        self._known_of: dict[Any, list[tuple[str, str, str]]] = {}
        # While start() loads the jobs: the Deferreds of the sessions that wait for it.
        self._starting: list[Deferred[None]] | None = None
        # Transfers that went quiet are looked for every transfer_check seconds (transfers.py).
        self.transfer_check = 5.0
        self._transfers_checked = 0.0
        self._checking_transfers = False
        # Jobs whose state must still be saved (a save failed), those being saved, and when
        # the tick saves them again (_persist_job).
        self._unsaved: dict[int, LiveJob] = {}
        self._saving: set[int] = set()
        self._save_at: float | None = None
        # The store's outages (_watch_store): whether one lasts, and when one was last seen.
        self._store_available = store_available or (lambda: True)
        self._store_down = False
        self._store_down_at = float("-inf")

    @property
    def clustered(self) -> bool:
        return self._cluster is not None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load unfinished jobs from the store and start ticking. Sessions that begin while
        this runs wait for it (session_side.py): a session handled by an engine that has not
        loaded its jobs yet would decide on a task the load then brings back as it was."""
        self._starting = []
        try:
            await self._start()
        finally:
            waiters, self._starting = self._starting, None
            for d in waiters:
                d.callback(None)

    async def _start(self) -> None:
        if self._cluster is not None:
            await self._cluster.start()
            if self._cluster.options.run_jobs:
                self._start_ticking()
            return
        records = await self._store.call("list_jobs", limit=10_000, states=["running", "halted"])
        if records:
            targets = {d.device_id: d for d in await self._store.call("target_devices")}
            tasks = await self._store.call("active_tasks")
            for rec in records:
                self.jobs[rec.id] = LiveJob.from_record(rec)
            for task_rec in tasks:
                job = self.jobs.get(task_rec.job_id)
                if job is None:
                    continue
                task = job.add(task_rec)
                self._index(task)
                if task.device_id in targets:
                    self.devices[task.device_id] = targets[task.device_id]
            # Counts of tasks already final come from the store.
            for job in self.jobs.values():
                counts = await self._store.call("task_counts", job.id, by_wave=True)
                for (wave, state), n in counts.items():
                    st = TaskState(state)
                    if st in ACTIVE:  # counted as their tasks were added
                        continue
                    job.counts[st] += n
                    job.wave_counts.setdefault(wave, type(job.counts)())[st] += n
            log.info("resumed {n} job(s) with {t} unfinished task(s)", n=len(self.jobs), t=len(tasks))
        for job in self.jobs.values():
            job.node = self.node
        self._start_ticking()

    def _start_ticking(self) -> None:
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self.limits.tick, now=False)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        await self._writer.flush()
        if self._cluster is not None:
            await self._cluster.stop()

    def flush(self) -> Deferred[None]:
        """Fires once every task change so far is in the store."""
        return self._writer.flush()

    def _watch_store(self, now: float) -> None:
        """Every tick: whether the store's database is available (server/outages.py). While
        it is not, no connection request goes out (a phone woken now would only be answered
        503) and no device is judged for not calling in; when it is back, the task changes
        kept meanwhile and the job states not saved are written at once, not after their
        back-off, and the devices that wait are requested at once (the outage, not the
        devices, kept them waiting)."""
        down = not self._store_available()
        if down:
            self._store_down_at = now
        elif self._store_down:
            for job in self.jobs.values():
                if job.state == "running":
                    for task in job.queue:
                        if task.state is TaskState.PENDING and task.next_attempt > now:
                            task.next_attempt = now
            self._writer.retry_now()
            self._save_jobs()
            if self._cluster is not None:
                self._cluster.sync_now()
        self._store_down = down

    def _index(self, task: LiveTask) -> None:
        self._by_device.setdefault(task.device_id, []).append(task)

    # -- submitting ---------------------------------------------------------------------

    async def targets(self, selector: Selector) -> list[TargetDevice]:
        devices = await self._store.call("target_devices")
        return [d for d in devices if selector.matches(
            product_class=d.product_class, firmware=d.software_version, serial=d.serial_number,
            tags=d.tags, device_id=d.device_id)]

    async def submit(self, policy: Policy, selector: Selector, options: JobOptions, *,
                     deadline: timedelta, targets: list[TargetDevice] | None = None, kind: str = "push",
                     extra_options: dict[str, Any] | None = None) -> LiveJob:
        """Create the job durably, then start working on it. ``kind`` push or audit;
        ``extra_options`` go into the job's options JSON (an audit's spec). Raises
        ValueError when no device matches."""
        devices = targets if targets is not None else await self.targets(selector)
        if not devices:
            raise ValueError(f"no registered device matches {selector.text!r}")
        waves = assign_waves(len(devices), WaveOptions(options.canary, options.wave_size, options.max_fault_rate))
        now = datetime.fromtimestamp(self._clock.seconds(), UTC)
        rec = await self._store.call(
            "create_job", name=policy.name, policy=policy.to_json(), selector=selector.text,
            options={**options.to_json(), **(extra_options or {})}, parameter_key_prefix=PARAMETER_KEY_PREFIX,
            deadline=now + deadline, tasks=[(d.device_id, w) for d, w in zip(devices, waves, strict=True)],
            kind=kind,
        )
        job = LiveJob.from_record(rec)
        job.created = self._clock.seconds()
        job.node = self.node
        if self._cluster is not None:
            # The job runners claim its tasks from the store (any node, this one included).
            self.jobs[job.id] = job
            job_event(job, "submitted", detail=f"{len(devices)} device(s) in {job.wave_count} wave(s), "
                                              f"ParameterKey {job.parameter_key}")
            return job
        for i, (d, w) in enumerate(zip(devices, waves, strict=True)):
            task = LiveTask(job, d.device_id, i, w)
            job.tasks[d.device_id] = task
            job.counts[TaskState.PENDING] += 1
            job.wave_counts.setdefault(w, type(job.counts)())[TaskState.PENDING] += 1
            job.queue.append(task)
            self._index(task)
            self.devices[d.device_id] = d
        self.jobs[job.id] = job
        job_event(job, "submitted", detail=f"{len(devices)} device(s) in {job.wave_count} wave(s), "
                                          f"ParameterKey {job.parameter_key}")
        return job

    # -- for other session sides (audit jobs, acs_security/desired/audit_side.py) ---------

    async def session_tasks_of(self, device_id: str, token: str) -> list[LiveTask]:
        """The device's tasks this session may work on: from the store with several nodes
        (read once per session, shared with the push side), else the engine's own."""
        if self._cluster is not None:
            tasks = self._session_tasks.get(token)
            if tasks is None:
                tasks = self._session_tasks[token] = await self._cluster.session_tasks(device_id)
            return tasks
        return list(self._by_device.get(device_id, ()))

    def task_in_session(self, task: LiveTask) -> None:
        """The device is in a session and the task's work starts (TaskEvent.SESSION)."""
        task.job.apply(task, TaskEvent.SESSION, self._clock.seconds())

    def record_outcome(self, task: LiveTask, event: TaskEvent, *, detail: str | None = None,
                       fault: tuple[int, str] | None = None) -> Deferred[None]:
        """A task's outcome, durable when the Deferred fires (as the push side's)."""
        return self._outcome(task, event, detail=detail, fault=fault)

    def task_session_lost(self, task: LiveTask, outcome: str) -> None:
        """The session ended before the device answered: the task is pending again, retried
        after the backoff (as the push side does)."""
        if task.state is TaskState.IN_SESSION:
            now = self._clock.seconds()
            task.job.apply(task, TaskEvent.SESSION_LOST, now)
            task.detail = f"session ended ({outcome}) before the device answered"
            task.next_attempt = now + self.limits.backoff.delay(1, self._random())
            self._writer.mark(task.update(now))
        self.settle(task)

    def settle(self, task: LiveTask) -> None:
        """With several nodes, forget a task this node holds no claim on once its session is done."""
        if self._cluster is not None and task.state is not TaskState.IN_SESSION:
            self._cluster.settled(task)

    def _batch_size(self, device: TargetDevice | None) -> int | None:
        if device is None:
            return None
        try:
            return self._catalogue.model(device.product_class).spv_batch_size
        except Exception:  # noqa: BLE001 - unknown model: the plan already said so
            return None

    def plan_for(self, policy: Policy, device: TargetDevice, known: dict[str, str] | None,
                 *, force_all: bool = False, method: str = "auto") -> DevicePlan:
        return plan_device(policy, product_class=device.product_class,
                           software_version=device.software_version, known=known,
                           force_all=force_all, catalogue=self._catalogue, method=method)

    def _plan_cache(self, job: LiveJob) -> PlanCache:
        cache = self._plans.get(job.id)
        if cache is None:
            policy, method = job.policy, job.options.method

            def plan(product_class: str, software_version: str | None,
                     known: Any, force_all: bool) -> DevicePlan:
                return plan_device(policy, product_class=product_class,
                                   software_version=software_version, known=known,
                                   force_all=force_all, catalogue=self._catalogue, method=method)

            cache = self._plans[job.id] = PlanCache(plan)
        return cache

    # -- operator actions ---------------------------------------------------------------

    async def cancel(self, job: LiveJob) -> None:
        now = self._clock.seconds()
        for task in job.tasks.values():
            if task.state in (TaskState.PENDING, TaskState.REQUESTED):
                job.apply(task, TaskEvent.CANCEL, now)
                self._writer.mark(task.update(now))
        job.state = "cancelled"
        job_event(job, "cancelled", detail="cancelled by operator")
        self._plans.pop(job.id, None)
        await self._writer.flush()
        await self._store.call("set_job_state", job.id, "cancelled", reason="cancelled by operator",
                               finished=True)
        self._forget_if_done(job)

    async def cancel_job(self, job_id: int) -> bool:
        """Cancel by id from any node (several nodes); False when the job is not running/halted."""
        if self._cluster is not None:
            return await self._cluster.cancel(job_id)
        job = self.jobs.get(job_id)
        if job is None or job.state not in ("running", "halted"):
            return False
        await self.cancel(job)
        return True

    async def resume_job(self, job_id: int) -> bool:
        """Resume by id from any node; False when the job is not halted."""
        if self._cluster is not None:
            return await self._cluster.resume(job_id)
        job = self.jobs.get(job_id)
        if job is None or job.state != "halted":
            return False
        await self.resume(job)
        return True

    async def resume(self, job: LiveJob) -> None:
        job.state, job.reason = "running", None
        # The halted wave is accepted as it is: its brake is released (it must not halt the
        # job again, which would loop on the last wave), and the next wave opens.
        job.brake_released = job.current_wave
        if job.current_wave + 1 < job.wave_count:
            job.current_wave += 1
        await self._store.call("transition_job", job.id, from_states=["halted"], state="running",
                               current_wave=job.current_wave, brake_released=job.brake_released,
                               clear_reason=True)
        job_event(job, "resumed", detail=f"wave {job.current_wave + 1}/{job.wave_count}")

    # -- the tick -----------------------------------------------------------------------

    def _tick(self) -> None:
        if self._ticking:
            return
        self._ticking = True
        try:
            now = self._clock.seconds()
            self._watch_store(now)
            for job in list(self.jobs.values()):
                if job.state != "running":
                    self._progress_logged.pop(job.id, None)
                    continue
                if self._cluster is None or self._cluster.options.run_jobs:
                    maybe_progress(job, now, self._progress_logged)
                if self._cluster is not None:
                    self._cluster.drive(job, now)
                else:
                    self._drive(job, now)
            if self._cluster is None:
                self._check_transfers_soon(now)
            self._writer.kick()
            if self._save_at is not None and self._clock.seconds() >= self._save_at:
                self._save_jobs()
        finally:
            self._ticking = False

    def _check_transfers_soon(self, now: float) -> None:
        """Every transfer_check seconds, while a job has a transfer out (transfers.py)."""
        if self._files is None or self._checking_transfers or now - self._transfers_checked < self.transfer_check:
            return
        if not any(j.counts[TaskState.TRANSFERRING] for j in self.jobs.values()):
            return
        self._transfers_checked = now
        self._checking_transfers = True
        d = Deferred.fromCoroutine(self.check_transfers())
        d.addErrback(lambda f: log.warn("checking file transfers failed: {error}", error=f.getErrorMessage()))
        d.addBoth(lambda _: setattr(self, "_checking_transfers", False))

    def _drive(self, job: LiveJob, now: float) -> None:
        if now >= job.deadline:
            for task in job.tasks.values():
                if task.state in (TaskState.PENDING, TaskState.REQUESTED):
                    job.apply(task, TaskEvent.DEADLINE, now)
                    task.detail = "no session before the job's deadline"
                    self._writer.mark(task.update(now))
        self.check_requested(job, now)
        if job.active == 0:
            self._finish(job, "completed")
            return
        counts = job.wave_state_counts()
        busy = (counts.get(TaskState.REQUESTED, 0) + counts.get(TaskState.IN_SESSION, 0)
                + counts.get(TaskState.TRANSFERRING, 0))
        # With devices requested or in session the wave is open whatever else it holds: the
        # O(tasks) count of contactable ones is needed only once nothing is in flight.
        verdict = job_verdict(job, 0 if busy else job.contactable(job.current_wave, self.devices))
        if verdict.state == "halt":
            job.state = "halted"
            job.reason = halt_reason(job, verdict)
            job_event(job, "halted", detail=job.reason or "", warn=True)
            self._persist_job(job)
            return
        if verdict.state == "settled" and job.current_wave + 1 < job.wave_count:
            job.current_wave += 1
            job_event(job, "wave_started", detail=f"wave {job.current_wave + 1}/{job.wave_count}")
            self._persist_job(job)
        self.send_requests(job, now)

    def check_requested(self, job: LiveJob, now: float) -> None:
        """Devices that accepted a connection request but did not call in. Not judged while
        the store is unavailable (they called, and were answered 503); one requested before
        an outage is requested again without counting an attempt."""
        if self._store_down:
            return
        for task in list(job.requested):
            if (task.state is TaskState.REQUESTED and task.requested_at is not None
                    and now - task.requested_at > self.limits.cr_session_wait):
                job.apply(task, TaskEvent.CR_LOST, now)
                if task.requested_at <= self._store_down_at:
                    task.detail = "requested again: the store was unavailable when the device called"
                    task.next_attempt = now
                    self._writer.mark(task.update(now))
                else:
                    self._failed_attempt(task, now, "accepted the connection request but did not call in")

    def _persist_job(self, job: LiveJob) -> None:
        """Save the job's state, wave and reason (a completed job's once its tasks' changes
        are in). Should the store fail, the job is saved again a second later (or as soon as
        the store is back): a job decided in memory but not in the store would be resumed as
        it was after a restart. One save per job at a time; a change made meanwhile is saved
        right after it."""
        self._unsaved[job.id] = job
        if job.id in self._saving:
            return
        self._saving.add(job.id)
        del self._unsaved[job.id]
        final = job.state in ("completed", "cancelled")
        d = self._writer.flush() if final else Deferred.fromCoroutine(_nothing())
        d.addCallback(lambda _: self._store.call("set_job_state", job.id, job.state, current_wave=job.current_wave,
                                                 reason=job.reason, finished=final))

        def saved(_: Any) -> None:
            self._saving.discard(job.id)
            if job.id in self._unsaved:
                self._persist_job(job)

        def failed(failure: Failure) -> None:
            self._saving.discard(job.id)
            self._unsaved[job.id] = job
            if self._save_at is None:
                self._save_at = self._clock.seconds() + 1.0
            if not failure.check(StoreUnavailable):  # an outage is logged once (server/outages.py)
                log.warn("saving job {id} failed: {error}; it is saved again later", id=job.id,
                         error=failure.getErrorMessage())

        d.addCallbacks(saved, failed)

    def _save_jobs(self) -> None:
        """Save again the jobs whose last save failed (at a tick a second later, or at once
        when the store is back)."""
        self._save_at = None
        for job in list(self._unsaved.values()):
            if job.id not in self._saving:
                self._persist_job(job)

    def _finish(self, job: LiveJob, state: str) -> None:
        job.state = state
        self._plans.pop(job.id, None)
        job_event(job, state)
        self._persist_job(job)
        self._forget_if_done(job)

    def _forget_if_done(self, job: LiveJob) -> None:
        for task in job.tasks.values():
            lst = self._by_device.get(task.device_id)
            if lst and task in lst and task.state not in (TaskState.IN_SESSION,):
                lst.remove(task)
                if not lst:
                    del self._by_device[task.device_id]
        self.forget_finished()

    def forget_finished(self) -> None:
        # A long-running server must not keep every finished job's tasks in memory: the
        # most recent ones stay (their summaries have rates and percentiles), older ones
        # are answered from the store.
        finished = sorted(j.id for j in self.jobs.values() if j.state in ("completed", "cancelled"))
        for job_id in finished[: max(0, len(finished) - self.limits.keep_finished_jobs)]:
            del self.jobs[job_id]
            self._plans.pop(job_id, None)


async def _nothing() -> None:
    return None
