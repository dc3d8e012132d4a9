"""The job engine when several nodes share one database (scale-out, docs/deploy.md).

The store is the truth; each node keeps only what it works on:
- its job runner *claims* batches of a job's pending tasks (store/claims.py: ``FOR UPDATE
  SKIP LOCKED``, a lease renewed at every sync) and sends those devices connection
  requests; a node that dies stops renewing and, after ``claim_lease``, other nodes claim
  its devices;
- a CWMP session, on whichever node the phone reached (the load balancer picks), reads the
  device's active tasks from the store and applies them; the device session lease
  (server/leases.py) keeps a device in one session across nodes, and outcomes are durable
  before a session goes on, so the next session, anywhere, sees them;
- every ``sync_interval`` a job runner reads job states and task counts from the store and
  makes the job's decisions (next wave, halt, deadline, completed) as conditional updates:
  the first node to decide wins, the others' identical decision changes nothing.

Nothing is applied twice: a final task state is never overwritten in the store, a session
takes a task only under the device's session lease, and a device reporting the job's
ParameterKey is done (TR-069 A.3.2.1), whichever node sent the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.fleet.joblog import job_event
from acs_security.fleet.live import LiveJob, LiveTask
from acs_security.fleet.tasks import ACTIVE, TERMINAL, TaskState
from acs_security.fleet.waves import halt_reason, job_verdict
from acs_security.store.errors import StoreUnavailable
from acs_security.store.jobrecords import TargetDevice

__all__ = ["ClusterMode", "ClusterOptions", "EngineCore"]

log = Logger(namespace="acs_security.fleet")


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    node: str
    claim_lease: float = 30.0
    claim_batch: int = 200
    sync_interval: float = 1.0
    # Whether this node runs jobs (claims, connection requests, waves): roles all and jobs.
    run_jobs: bool = True


class EngineCore(Protocol):
    """What cluster mode needs of the job engine (fleet/engine.py): its working copies and
    its per-tick work on this node's claimed tasks."""

    jobs: dict[int, LiveJob]
    devices: dict[str, TargetDevice]

    def flush(self) -> Deferred[None]: ...

    def check_requested(self, job: LiveJob, now: float) -> None: ...

    def send_requests(self, job: LiveJob, now: float) -> None: ...

    def forget_finished(self) -> None: ...

    async def check_transfers(self) -> None: ...


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class ClusterMode:
    """The engine's shared-store half: job adoption, claims, sync and session lookup."""

    def __init__(self, engine: EngineCore, options: ClusterOptions, *, store: Any, clock: Any) -> None:
        self.engine = engine
        self.options = options
        self._store = store
        self._clock = clock
        self._loop: LoopingCall | None = None
        self._syncing = False

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        # Claims this node held in a previous life (same node_id) are stale: its working
        # copy is gone, so they go back to the pool at once instead of after the lease.
        released = await self._store.call("release_claims", self.options.node)
        for rec in await self._store.call("list_jobs", limit=10_000, states=["running", "halted"]):
            self._adopt(rec)
        log.info("node {node}: {n} unfinished job(s) in the store, {r} stale claim(s) released",
                 node=self.options.node, n=len(self.engine.jobs), r=released)
        # A job runner syncs everything; a CWMP-only or API-only node keeps the list of
        # unfinished jobs current, so that its sessions skip the store when none runs.
        self._loop = LoopingCall(self._sync_soon)
        self._loop.clock = self._clock
        self._loop.start(self.options.sync_interval, now=True)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.options.run_jobs:
            await self.engine.flush()
            # A clean stop hands the devices to the other nodes now, not after the lease.
            await self._store.call("release_claims", self.options.node)

    def _adopt(self, rec: Any) -> LiveJob:
        job = self.engine.jobs.get(rec.id)
        if job is None:
            job = self.engine.jobs[rec.id] = LiveJob.from_record(rec)
            job.node = self.options.node
        else:
            job.refresh(rec)
        return job

    async def job(self, job_id: int) -> LiveJob | None:
        job = self.engine.jobs.get(job_id)
        if job is None:
            rec = await self._store.call("get_job", job_id)
            if rec is None:
                return None
            job = self._adopt(rec)
        return job

    # -- sessions (any role that serves CWMP) -------------------------------------------

    async def session_tasks(self, device_id: str, rows: Any = None) -> list[LiveTask]:
        """The device's active tasks, from the store: the session may be on any node.
        ``rows``: ``device_tasks`` as read with the Inform (fleet/session_side.py
        inform_reads), else it is read now. With no unfinished job known here (refreshed
        every sync), the store is not asked: periodic sessions of a quiet fleet cost no query."""
        if rows is None:
            if not any(j.state in ("running", "halted") for j in self.engine.jobs.values()):
                return []
            rows = await self._store.call("device_tasks", device_id)
        out: list[LiveTask] = []
        for rec, job_state, wave, brake in rows:
            job = await self.job(rec.job_id)
            if job is None:
                continue
            job.state, job.current_wave, job.brake_released = job_state, wave, brake
            task = job.tasks.get(device_id)
            if task is None or task.gone:
                task = job.add(rec, count=False, queue=False, claimed=False)
            out.append(task)
        return out

    def settled(self, task: LiveTask) -> None:
        """A task this node does not hold a claim on is forgotten once its session is over
        (its outcome is in the store), so a node's memory follows its sessions, not the fleet."""
        if not task.claimed:
            task.job.forget(task)

    # -- the job runner -----------------------------------------------------------------

    def drive(self, job: LiveJob, now: float) -> None:
        """Every tick: this node's share of connection requests (the decisions are made at
        sync, from the store's counts)."""
        self.engine.check_requested(job, now)
        self.engine.send_requests(job, now)

    def in_progress(self, job: LiveJob) -> int:
        return len(job.requested)

    def sync_now(self) -> None:
        """Sync at once (the store is back after an outage), unless a sync is under way."""
        if self._loop is not None and self._loop.running:
            self._sync_soon()

    def _sync_soon(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        d = Deferred.fromCoroutine(self.sync())

        def done(result: Any) -> None:
            self._syncing = False
            if isinstance(result, Failure):
                # A store outage is logged once when it begins and once when it ends
                # (server/outages.py), not at every sync in between.
                emit = log.debug if result.check(StoreUnavailable) else log.warn
                emit("node {node}: sync with the store failed: {error}", node=self.options.node,
                     error=result.getErrorMessage())

        d.addBoth(done)

    async def sync(self) -> None:
        """Read job states and counts, renew claims, decide, claim more work."""
        store, node = self._store, self.options.node
        await self.engine.flush()
        now = self._clock.seconds()
        records = {r.id: r for r in await store.call("list_jobs", limit=10_000, states=["running", "halted"])}
        for job_id, job in list(self.engine.jobs.items()):
            if job_id not in records and job.state in ("running", "halted"):
                # Finished or cancelled elsewhere.
                rec = await store.call("get_job", job_id)
                if rec is not None:
                    job.refresh(rec)
                for task in list(job.tasks.values()):
                    if task.state is not TaskState.IN_SESSION:
                        job.forget(task)
        for rec in records.values():
            self._adopt(rec)
        if not self.options.run_jobs:
            self.engine.forget_finished()
            return
        # Transfers that went quiet: the store changes their tasks (every job runner may
        # ask; the changes are conditional, so two nodes do each at most once).
        await self.engine.check_transfers()
        held = await store.call("renew_claims", node, until=_dt(now + self.options.claim_lease))
        for job in list(self.engine.jobs.values()):
            for task in list(job.tasks.values()):
                if task.state is TaskState.IN_SESSION:
                    continue
                if (task.state in TERMINAL or (task.claimed and (job.id, task.device_id) not in held)
                        or (task.state is TaskState.PENDING and task.cr_exhausted)):
                    # Finished (and written), finished or taken by another node, or waiting
                    # for a periodic Inform that any node may receive.
                    job.forget(task)
        for job in list(self.engine.jobs.values()):
            if job.state == "running":
                await self._judge(job, now)
            if job.state == "running":
                await self._claim(job, now)
        self.engine.forget_finished()

    async def _judge(self, job: LiveJob, now: float) -> None:
        store = self._store
        job.set_counts(await store.call("task_counts", job.id, by_wave=True))
        if now >= job.deadline:
            n = await store.call("end_tasks", job.id, state=TaskState.UNREACHABLE.value,
                                 detail="no session before the job's deadline", now=_dt(now))
            for task in list(job.tasks.values()):
                if task.state in (TaskState.PENDING, TaskState.REQUESTED):
                    job.forget(task)
            if n:
                job.set_counts(await store.call("task_counts", job.id, by_wave=True))
        if job.active == 0:
            if await store.call("transition_job", job.id, from_states=["running"], state="completed",
                                finished=True):
                job.state = "completed"
                job_event(job, "completed", node=self.options.node)
            job.state = "completed"
            return
        counts = job.wave_state_counts()
        busy = (counts.get(TaskState.REQUESTED, 0) + counts.get(TaskState.IN_SESSION, 0)
                + counts.get(TaskState.TRANSFERRING, 0))
        contactable = 0 if busy else await store.call("contactable_tasks", job.id, job.current_wave)
        verdict = job_verdict(job, contactable)
        wave = job.current_wave
        if verdict.state == "halt":
            reason = halt_reason(job, verdict)
            if await store.call("transition_job", job.id, from_states=["running"], expect_wave=wave,
                                state="halted", reason=reason):
                job.state, job.reason = "halted", reason
                job_event(job, "halted", detail=reason, warn=True, node=self.options.node)
            job.state, job.reason = "halted", reason
        elif verdict.state == "settled" and wave + 1 < job.wave_count:
            if await store.call("transition_job", job.id, from_states=["running"], expect_wave=wave,
                                current_wave=wave + 1):
                job.current_wave = wave + 1
                job_event(job, "wave_started", detail=f"wave {wave + 2}/{job.wave_count}", node=self.options.node)
            job.current_wave = wave + 1

    async def _claim(self, job: LiveJob, now: float) -> None:
        opts = self.options
        waiting = sum(1 for t in job.queue if t.state is TaskState.PENDING and not t.gone and not t.cr_exhausted)
        if waiting >= opts.claim_batch // 2 + 1:
            return
        recs = await self._store.call("claim_tasks", job.id, opts.node, max_wave=job.current_wave,
                                      limit=opts.claim_batch, until=_dt(now + opts.claim_lease), now=_dt(now))
        if not recs:
            return
        unknown = [r.device_id for r in recs if r.device_id not in self.engine.devices]
        if unknown:
            for d in await self._store.call("target_devices", unknown):
                self.engine.devices[d.device_id] = d
        for rec in recs:
            task = job.tasks.get(rec.device_id)
            if task is not None and not task.gone:
                if task.state in ACTIVE and not task.claimed:
                    task.claimed = True  # in a session here; the claim keeps it here after
                continue
            job.add(rec, count=False)

    # -- operator actions (any node) ----------------------------------------------------

    async def cancel(self, job_id: int) -> bool:
        store = self._store
        if not await store.call("transition_job", job_id, from_states=["running", "halted"],
                                state="cancelled", reason="cancelled by operator", finished=True):
            return False
        await store.call("end_tasks", job_id, state=TaskState.CANCELLED.value, detail="cancelled by operator",
                         now=_dt(self._clock.seconds()))
        job = self.engine.jobs.get(job_id)
        if job is not None:
            job.state, job.reason = "cancelled", "cancelled by operator"
            job_event(job, "cancelled", detail="cancelled by operator", node=self.options.node)
            for task in list(job.tasks.values()):
                if task.state is not TaskState.IN_SESSION:
                    job.forget(task)
        return True

    async def resume(self, job_id: int) -> bool:
        store = self._store
        rec = await store.call("get_job", job_id)
        if rec is None or rec.state != "halted":
            return False
        wave = rec.current_wave
        nxt = wave + 1 if wave + 1 < rec.wave_count else wave
        if not await store.call("transition_job", job_id, from_states=["halted"], expect_wave=wave,
                                state="running", current_wave=nxt, brake_released=wave, clear_reason=True):
            return False
        job = await self.job(job_id)
        if job is not None:
            job.state, job.reason, job.current_wave, job.brake_released = "running", None, nxt, wave
            job_event(job, "resumed", detail=f"wave {nxt + 1}/{job.wave_count}", node=self.options.node)
        return True
