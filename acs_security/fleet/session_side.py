"""The job engine's session half: what a CWMP session does for a targeted device.

The CWMP endpoint calls these as its :class:`~acs_security.server.provisioning.Provisioner`
(a mixin of :class:`~acs_security.fleet.engine.FleetEngine`, which holds the state): when a
targeted device is in a session and its wave is open, it gets its SetParameterValues (per
model batches, only the last carrying the job's ParameterKey), optionally read back with
GetParameterValues; the response or fault becomes the task's outcome, committed before the
session goes on. A device whose Inform already carries the job's key is done without
another SetParameterValues (TR-069 A.3.2.1). Settings that go in a cfg.xml file, and backup
jobs, end the session with a Download or an Upload (fleet/transfers.py); the ParameterKey
then marks only the SetParameterValues part, never the whole task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from acs_security.cwmp import messages as m
from acs_security.cwmp.values import parse_value
from acs_security.fleet.live import LiveJob, LiveTask
from acs_security.fleet.plancache import PlanCache
from acs_security.fleet.tasks import TaskEvent, TaskState
from acs_security.fleet.transfers import TransferSide
from acs_security.policy.plan import DevicePlan
from acs_security.server.sessions import SessionContext
from acs_security.store.jobrecords import REACH_PARAMETERS, reach_facts
from acs_security.store.jobs import TargetDevice

if TYPE_CHECKING:
    from acs_security.fleet.cluster import ClusterMode
    from acs_security.fleet.writes import TaskWriter

__all__ = ["SessionSide", "device_from_inform"]

#: The job kinds this session side works (store/jobs.py JOB_KINDS): a push, and a backup
#: (an Upload, fleet/transfers.py).
_KINDS = ("push", "backup")


class _Work:
    """What a session does for one task: plan, SetParameterValues, optional read-back, the
    file transfer."""

    __slots__ = ("task", "plan", "stage", "batches", "batch", "known")

    def __init__(self, task: LiveTask) -> None:
        self.task = task
        self.plan: DevicePlan | None = None
        self.stage = "plan"
        self.batches: list[tuple[Any, ...]] = []
        self.batch = 0
        self.known: dict[str, str] | None = None

    def request(self, job: LiveJob, cache: PlanCache) -> m.SetParameterValues:
        """The SetParameterValues of the current batch. Only the last batch carries the
        job's ParameterKey, so that the key in a later Inform means *all* of it landed; when
        a file transfer follows, no batch does (the TransferComplete tells the end).
        Memoised per job (``cache``): the devices of one plan get the same RPC."""
        params = self.batches[self.batch]
        last = self.batch == len(self.batches) - 1 and not (self.plan is not None and self.plan.download)
        key = job.parameter_key if last else f"{job.parameter_key}.{self.batch + 1}"
        result: m.SetParameterValues = cache.rpc(params, key, lambda: m.SetParameterValues(
            tuple(m.ParameterValue(p.path, parse_value(p.xsi_type, p.value), p.xsi_type) for p in params), key))
        return result


class SessionSide(TransferSide):
    """The provisioner methods of the engine (see the module doc)."""

    _cluster: ClusterMode | None
    _starting: list[Deferred[None]] | None
    _writer: TaskWriter
    _session_tasks: dict[str, list[LiveTask]]
    _by_device: dict[str, list[LiveTask]]
    devices: dict[str, TargetDevice]
    jobs: dict[int, LiveJob]
    _store: Any
    _clock: Any
    _random: Any
    limits: Any

    # FleetEngine's: _plan_cache(job) -> PlanCache, _batch_size(device) -> int | None.
    _plan_cache: Any
    _batch_size: Any

    def inform_reads(self, device_id: str) -> tuple[str, ...]:
        """The store reads to run with the device's Inform (server/provisioning.py). Without a
        cluster the engine holds every task: the stored values when a task of a running push
        job waits for this device (its plan compares against them). In cluster mode the tasks
        are in the store: while a job of this node's view is running or halted, the device's
        tasks (session_started), and the stored values too while a push that plans against
        them runs (read for a device without a task as well: one query in the same pool job,
        no hop)."""
        if self._cluster is not None:
            active = [j for j in self.jobs.values() if j.state in ("running", "halted")]
            if not active:
                return ()
            return (("device_tasks", "device_parameters") if any(_plans(j) for j in active)
                    else ("device_tasks",))
        for task in self._by_device.get(device_id, ()):
            if _plans(task.job) and task.state in (TaskState.PENDING, TaskState.REQUESTED):
                return ("device_parameters",)
        return ()

    async def session_started(self, ctx: SessionContext) -> None:
        if self._starting is not None:  # the engine is still loading its jobs (engine.start)
            waiter: Deferred[None] = Deferred()
            self._starting.append(waiter)
            await waiter
        if self._cluster is not None:
            # Read from the store once per session; later calls (after a task is done, for
            # another job's task) go over the same tasks.
            tasks = self._session_tasks.get(ctx.token)
            if tasks is None:
                rows = ctx.inform_reads.get("device_tasks") if ctx.inform_reads else None
                tasks = self._session_tasks[ctx.token] = await self._cluster.session_tasks(
                    ctx.device_id or "", rows)
        else:
            tasks = self._by_device.get(ctx.device_id or "")
        if not tasks:
            return
        inform = ctx.inform
        values = inform.parameter_map if inform is not None else {}
        key = values.get("Device.ManagementServer.ParameterKey")
        if inform is not None and ctx.device_id:
            # What the Inform says is newer than what the engine knew (firmware, URLs).
            self.devices[ctx.device_id] = device_from_inform(ctx.device_id, inform,
                                                             self.devices.get(ctx.device_id), remote=ctx.remote)
        now = self._clock.seconds()
        for task in list(tasks):
            job = task.job
            if job.kind not in _KINDS:
                continue  # audits have their own session side (acs_security/desired/audit_side.py)
            if task.state not in (TaskState.PENDING, TaskState.REQUESTED, TaskState.IN_SESSION):
                continue
            if key is not None and key == job.parameter_key:
                # TR-069 A.3.2.1: the key of the last successful SetParameterValues.
                job.apply(task, TaskEvent.KEY_SEEN, now)
                task.detail = "the device reports the job's ParameterKey"
                if self._cluster is not None:
                    # Durable before another node's session could read the task as pending.
                    await self._writer.durable(task.update(now))
                else:
                    self._writer.mark(task.update(now))
                continue
            if ctx.provisioner_state is None and job.state == "running" and job.open_wave(task.wave) \
                    and task.state is not TaskState.IN_SESSION:
                ctx.provisioner_state = _Work(task)
        if self._cluster is not None:
            chosen = ctx.provisioner_state.task if ctx.provisioner_state is not None else None
            for task in tasks:
                if task is not chosen and task.state is not TaskState.IN_SESSION and task.job.kind in _KINDS:
                    self._cluster.settled(task)

    async def next_request(self, ctx: SessionContext) -> Any | None:
        work: _Work | None = ctx.provisioner_state
        while work is not None:
            task, job = work.task, work.task.job
            if work.stage == "plan":
                if task.state not in (TaskState.PENDING, TaskState.REQUESTED) or job.state != "running":
                    work = ctx.provisioner_state = None
                    break
                now = self._clock.seconds()
                job.apply(task, TaskEvent.SESSION, now)
                if job.kind == "backup":
                    work.stage = "offer"
                    continue
                device = self.devices.get(task.device_id)
                known = None
                if not job.options.force_all or job.options.file_content == "full":
                    # Read with the Inform when this session asked for them (inform_reads): no
                    # store hop of its own. Taken once: a later plan of the session reads afresh.
                    params = ctx.inform_reads.pop("device_parameters", None) if ctx.inform_reads else None
                    if params is None:
                        params = await self._store.call("device_parameters", task.device_id)
                    known = work.known = {name: value for name, (value, _t) in params.items()}
                plan = (self._plan_cache(job).plan(device.product_class, device.software_version,
                                                   None if job.options.force_all else known,
                                                   force_all=job.options.force_all)
                        if device is not None else DevicePlan(params=(), error="device unknown"))
                work.plan = plan
                if plan.error is not None:
                    await self._outcome(task, TaskEvent.FAULT, detail=plan.error)
                elif not plan.params and plan.download:
                    work.stage = "offer"
                    continue
                elif not plan.params:
                    event = TaskEvent.NOTHING_TO_DO if plan.skipped and not plan.unchanged else TaskEvent.APPLIED
                    detail = ("every setting of the policy is absent on this model/firmware"
                              if event is TaskEvent.NOTHING_TO_DO else "already compliant: nothing to change")
                    await self._outcome(task, event, detail=detail)
                else:
                    size = self._batch_size(device) or len(plan.params)
                    work.batches = [plan.params[i:i + size] for i in range(0, len(plan.params), size)]
                    work.stage = "sent"
                    task.sent += 1
                    return work.request(job, self._plan_cache(job))
                work = ctx.provisioner_state = None
            elif work.stage == "next-batch":
                work.stage = "sent"
                return work.request(job, self._plan_cache(job))
            elif work.stage == "readback" and work.plan is not None:
                work.stage = "readback-sent"
                return m.GetParameterValues(tuple(p.path for p in work.plan.params))
            elif work.stage == "offer":
                rpc = await self.offer_transfer(ctx, work)
                if rpc is not None:
                    work.stage = "transfer-sent"
                    task.sent += 1
                    return rpc
                work = ctx.provisioner_state = None
            else:
                work = ctx.provisioner_state = None
        # Another job may have work for this device in the same session.
        await self.session_started(ctx)
        if ctx.provisioner_state is not None:
            return await self.next_request(ctx)
        return None

    async def handle_response(self, ctx: SessionContext, request: Any, response: Any) -> None:
        work: _Work | None = ctx.provisioner_state
        if work is None:
            return
        task = work.task
        if isinstance(request, (m.Download, m.Upload)):
            if work.stage == "transfer-sent":
                await self.transfer_answered(ctx, work, request, response)
                ctx.provisioner_state = None
            return
        plan = work.plan
        if plan is None:
            return
        if isinstance(request, m.SetParameterValues):
            if isinstance(response, m.SetParameterValuesResponse):
                applied = [(p.path, p.value, p.xsi_type) for p in work.batches[work.batch]]
                await self._store.call("set_device_parameters", task.device_id, applied)
                if work.batch + 1 < len(work.batches):
                    work.batch += 1
                    work.stage = "next-batch"
                    ctx.provisioner_state = work
                    return
                if task.job.options.readback:
                    work.stage = "readback"
                    work.task.detail = "applied; reading back"
                    ctx.provisioner_state = work
                    return
                if plan.download:
                    work.stage = "offer"
                    ctx.provisioner_state = work
                    return
                event = TaskEvent.APPLIED if response.status == 0 else TaskEvent.APPLIED_REBOOT
                await self._outcome(task, event, detail=None)
            elif isinstance(response, m.Fault):
                faults = tuple({"name": f.name, "code": f.code, "string": f.string}
                               for f in response.set_parameter_values_faults)
                detail = (f"batch {work.batch + 1} of {len(work.batches)} refused"
                          if len(work.batches) > 1 else None)
                await self._outcome(task, TaskEvent.FAULT, fault=(response.code, response.string),
                                    faults=faults, detail=detail)
            ctx.provisioner_state = work if work.stage in ("readback", "next-batch", "offer") else None
        elif isinstance(request, m.GetParameterValues) and work.stage == "readback-sent":
            if isinstance(response, m.GetParameterValuesResponse):
                got = {p.name: p for p in response.parameters}
                wrong = [p.path for p in plan.params
                         if p.path not in got or not _same(got[p.path], p)]
                if wrong:
                    await self._outcome(task, TaskEvent.FAULT, detail=f"read-back differs: {', '.join(wrong)}")
                    ctx.provisioner_state = None
                    return
                if not plan.download:
                    await self._outcome(task, TaskEvent.APPLIED, detail="applied and read back")
            elif not plan.download:
                await self._outcome(task, TaskEvent.APPLIED, detail="applied; read-back refused")
            if plan.download:
                work.stage = "offer"
                ctx.provisioner_state = work
                return
            ctx.provisioner_state = None

    def _outcome(self, task: LiveTask, event: TaskEvent, *, detail: str | None = None,
                 fault: tuple[int, str] | None = None,
                 faults: tuple[dict[str, Any], ...] = ()) -> Deferred[None]:
        now = self._clock.seconds()
        task.job.apply(task, event, now)
        task.detail = detail
        if fault is not None:
            task.fault_code, task.fault_string = fault
        task.faults = faults
        # Committed before the session goes on: an outcome is never lost to a crash.
        d = self._writer.durable(task.update(now))
        if self._cluster is not None:
            cluster = self._cluster
            d.addCallback(lambda _: cluster.settled(task))
        return d

    def session_refused(self, device_id: str) -> None:
        """The device called in but its session was refused with 503 before the Inform was
        answered, the store being unavailable (server/cwmp_resource.py). TR-069 Table 7 has
        the CPE discard a failed session's "6 CONNECTION REQUEST" event, so a device woken
        by a connection request does not call again by itself: its task waiting for that
        call goes back to pending, without counting an attempt, and is requested again
        (once the store is back: fleet/engine.py holds requests during an outage)."""
        now = self._clock.seconds()
        jobs = ([t.job for t in self._by_device.get(device_id, ())] if self._cluster is None
                else list(self.jobs.values()))
        for job in jobs:
            task = job.tasks.get(device_id)
            if task is None or task.gone or task.state is not TaskState.REQUESTED:
                continue
            job.apply(task, TaskEvent.CR_LOST, now)
            task.detail = "called in while the store was unavailable (answered 503); requested again"
            task.next_attempt = now
            self._writer.mark(task.update(now))

    async def session_ended(self, ctx: SessionContext, outcome: str) -> None:
        self._session_tasks.pop(ctx.token, None)
        work: _Work | None = ctx.provisioner_state
        if work is None:
            return
        task = work.task
        if task.state is TaskState.IN_SESSION:
            now = self._clock.seconds()
            task.job.apply(task, TaskEvent.SESSION_LOST, now)
            task.detail = f"session ended ({outcome}) before the device answered"
            task.next_attempt = now + self.limits.backoff.delay(1, self._random())
            self._writer.mark(task.update(now))
        if self._cluster is not None and task.state is not TaskState.IN_SESSION:
            self._cluster.settled(task)
        ctx.provisioner_state = None


def _plans(job: LiveJob) -> bool:
    """A running push whose plan compares against the device's stored values."""
    return (job.kind == "push" and job.state == "running"
            and (not job.options.force_all or job.options.file_content == "full"))


def _same(got: m.ParameterValue, sent: Any) -> bool:
    """Read-back check: the value the device reports equals the one sent, compared as typed
    values (the codec's), so "true" and "1" agree; an unreadable value does not."""
    try:
        return got.value == parse_value(sent.xsi_type, sent.value)
    except ValueError:
        return False


def device_from_inform(device_id: str, inform: Any, known: TargetDevice | None = None, *,
                       remote: str | None = None) -> TargetDevice:
    """The device as its Inform describes it; values the Inform leaves out (and the tags,
    which the Inform never carries, and when the STUN server last saw it) are taken from
    ``known``. ``remote``: the address the Inform came from (fleet/reach.py compares it with
    the ConnectionRequestURL's host)."""
    values = inform.parameter_map

    def text(name: str, fallback: str | None) -> str | None:
        v = values.get(name)
        return str(v) if v not in (None, "") else fallback

    ms = "Device.ManagementServer."
    reach = reach_facts({k: str(v) for k, v in values.items() if k in REACH_PARAMETERS})
    ident = inform.device_id
    udp = text(ms + "UDPConnectionRequestAddress", known.udp_connection_request_address if known else None)
    return TargetDevice(
        device_id, ident.product_class,
        text("Device.DeviceInfo.SoftwareVersion", known.software_version if known else None),
        ident.serial_number,
        text(ms + "ConnectionRequestURL", known.connection_request_url if known else None),
        udp,
        text(ms + "ParameterKey", known.parameter_key if known else None),
        known.tags if known else (),
        remote_address=remote or (known.remote_address if known else None),
        nat_detected=reach["nat_detected"] if reach["nat_detected"] is not None else (
            known.nat_detected if known else None),
        # When the STUN server saw that address (a new one: the engine's note of it).
        udp_seen=known.udp_seen if known and known.udp_connection_request_address == udp else None,
        keepalive_s=reach["keepalive_s"] or (known.keepalive_s if known else None),
        xmpp_jid=text(ms + "ConnReqJabberID", known.xmpp_jid if known else None),
    )
