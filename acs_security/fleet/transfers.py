"""The job engine's file transfers: cfg.xml Downloads and configuration Uploads.

A mixin of the engine's session half (fleet/session_side.py). For a task whose plan has
settings for the file (policy/plan.py), or a backup job's task, the session offers the
transfer (files/offers.py: the file row is committed first) and sends the Download or
Upload. Its CommandKey is the job's key and a tag of that transfer (``acs-sec-job-7.3fa9c1``):
the TransferComplete names exactly one file, so a late report of an old transfer is never
taken for a newer one. Then:

- Status 0 (done at once): the outcome now;
- Status 1: the task is ``transferring`` until the phone's TransferComplete (TR-069
  A.3.3.2), sent in a later session: after its reboot when the file needs one, which is how
  the engine follows a rebooting phone to its next Inform; a fault 9010-9019 becomes the
  task's fault, except that a transfer that failed on the way (9010 download failure, 9015,
  9016, 9017: nothing was installed) is offered again, up to three transfers per task; no
  TransferComplete within ``transfer_timeout``: faulted; a file not fetched within
  ``fetch_wait`` (the phone never got the Download): withdrawn and offered again;
- a CWMP fault to the RPC itself (9000 not supported, 9013 protocol ...): faulted.

Nothing is installed twice across a restart or a lost session: a TransferComplete is acted
on before it is acknowledged (the phone repeats it until it is); before a new transfer
goes out the engine looks for one of this job that may still be out: a file already fetched
is waited for, one not fetched for ``fetch_wait`` is withdrawn (its URL then answers 410,
so a phone that got that Download late cannot install it), a recent one is waited for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from acs_security.cwmp import messages as m
from acs_security.files.offers import OfferError
from acs_security.files.render import render_device_file
from acs_security.fleet.live import PARAMETER_KEY_PREFIX, LiveTask
from acs_security.fleet.tasks import TaskEvent, TaskState
from acs_security.mapping import MappingError, cfgxml_to_tr069, parse_cfgxml
from acs_security.server.sessions import SessionContext
from acs_security.store.jobrecords import TaskUpdate

if TYPE_CHECKING:
    from acs_security.files.offers import FileOffers

__all__ = ["TransferSide"]

log = Logger(namespace="acs_security.fleet")
_BOOT = "1 BOOT"
#: TransferComplete faults of a transfer that failed on the way (TR-069 Table 59): nothing
#: was installed, so the transfer is offered again.
_RETRIED = frozenset({9010, 9015, 9016, 9017})
#: Transfers offered per task at most (the first and two more after failures on the way).
MAX_TRANSFERS = 3
#: Entries of each memo at most (a fleet has a handful of models, firmwares and plans).
_MEMO = 1024


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class TransferSide:
    """Transfer methods of the engine's session half (state lives in FleetEngine)."""

    _store: Any
    _clock: Any
    _catalogue: Any
    _files: FileOffers | None
    _writer: Any
    _cluster: Any
    _by_device: dict[str, list[LiveTask]]
    _session_tasks: dict[str, list[LiveTask]]
    jobs: dict[int, Any]
    devices: dict[str, Any]
    _outcome: Any  # SessionSide._outcome
    # Memos (engine.py creates them): a plan's rendered file; a file's values as TR-069.
    _rendered: dict[Any, bytes]
    _known_of: dict[tuple[str | None, str, str | None], list[tuple[str, str, str]]]

    # -- offering -------------------------------------------------------------------------

    async def offer_transfer(self, ctx: SessionContext, work: Any) -> Any | None:
        """The Download or Upload this task needs now, or None when its outcome was recorded
        instead (a transfer that may still be out, or no way to offer one)."""
        task, job = work.task, work.task.job
        kind = "upload" if job.kind == "backup" else "download"
        files = self._files
        if files is None:
            await self._outcome(task, TaskEvent.FAULT, detail="this server offers no files (no file URL)")
            return None
        out = await self._store.call("device_file", task.device_id, kind=kind, job_id=job.id, live=True)
        if out is not None:
            age = self._clock.seconds() - out.created_at.timestamp()
            if out.state == "offered" and age >= files.fetch_wait:
                # Never fetched: the phone did not get that Download (a lost session, a
                # restart). Withdrawn first, so its URL can no longer be used.
                await self._store.call("finish_file", out.id, state="expired", detail="withdrawn: never fetched")
            else:
                await self._outcome(task, TaskEvent.TRANSFER_STARTED,
                                    detail=f"a {'Download' if kind == 'download' else 'Upload'} of this job may "
                                           f"still be out (file {out.id}): waiting for its TransferComplete")
                return None
        device = self.devices.get(task.device_id)
        serial = device.serial_number if device is not None else ""
        try:
            if kind == "upload":
                return await files.upload(device_id=task.device_id, serial=serial, job_id=job.id,
                                          job_key=job.parameter_key)
            assert work.plan is not None and device is not None
            return await files.download(device_id=task.device_id, serial=serial, job_id=job.id,
                                        job_key=job.parameter_key, content=self._file_of(work, device))
        except (OfferError, MappingError) as exc:
            await self._outcome(task, TaskEvent.FAULT, detail=f"cannot offer the file: {exc}")
            return None

    def _file_of(self, work: Any, device: Any) -> bytes:
        """The phone's cfg.xml. A file of the policy's settings depends only on the plan, which
        the plan cache shares among the phones of a model and firmware: rendered once per plan
        (checking every value, cipher lists through OpenSSL, is most of a rendering's cost)."""
        full = work.task.job.options.file_content == "full"
        key = None if full else work.plan
        if key is not None and key in self._rendered:
            return self._rendered[key]
        content = render_device_file(work.plan.download, product_class=device.product_class,
                                     software_version=device.software_version, known=work.known,
                                     full=full, catalogue=self._catalogue).content
        if key is not None:
            if len(self._rendered) >= _MEMO:
                self._rendered.clear()
            self._rendered[key] = content
        return content

    async def transfer_answered(self, ctx: SessionContext, work: Any, request: Any, response: Any) -> None:
        """The phone's answer to the Download/Upload the session sent."""
        task = work.task
        if not isinstance(response, m.Fault) and getattr(response, "status", 1) == 1:
            what = "file" if isinstance(request, m.Download) else "upload"
            await self._outcome(task, TaskEvent.TRANSFER_STARTED,
                                detail=f"{what} transfer started; waiting for the TransferComplete")
            return
        file_row = await self._store.call("device_file", task.device_id,
                                          kind="upload" if isinstance(request, m.Upload) else "download",
                                          command_key=request.command_key)
        if isinstance(response, m.Fault):
            if file_row is not None:
                await self._store.call("finish_file", file_row.id, state="failed", fault_code=response.code,
                                       detail=response.string[:200])
            await self._outcome(task, TaskEvent.FAULT, fault=(response.code, response.string),
                                detail=f"the phone refused the {type(request).__name__}")
            return
        # Status 0: the phone says the transfer is complete (and applied) already.
        await self._transfer_outcome(task, 0, "", file_row, rebooted=False)

    # -- TransferComplete -----------------------------------------------------------------

    async def transfer_complete(self, ctx: SessionContext, message: Any) -> None:
        """A TransferComplete (the session's CPE request): the outcome of the transfer whose
        CommandKey it carries, committed before the endpoint acknowledges it. One that names
        no file of a job, or a file whose transfer is over (a repeated or late report), is
        only recorded (cwmp_resource.py does that)."""
        device_id = ctx.device_id or ""
        key = getattr(message, "command_key", "")
        if not key.startswith(PARAMETER_KEY_PREFIX) or not device_id:
            return
        file_row = await self._store.call("device_file", device_id, kind=_kind(message), command_key=key)
        if file_row is None or file_row.job_id is None or file_row.state not in ("offered", "fetched"):
            return
        tasks = (self._session_tasks.get(ctx.token) if self._cluster is not None
                 else self._by_device.get(device_id)) or []
        task = next((t for t in tasks if t.job.id == file_row.job_id), None)
        record = None
        fault = message.fault
        if task is None:
            recs = await self._store.call("list_tasks", file_row.job_id, device_id=device_id, limit=1)
            record = recs[0] if recs else None
            decided = record is None or record.state not in ("pending", "requested", "in_session", "transferring")
        else:
            decided = task.state not in (TaskState.PENDING, TaskState.REQUESTED, TaskState.IN_SESSION,
                                         TaskState.TRANSFERRING)
        if decided:
            # The task's outcome was committed, the file's end not (a crash between the two):
            # the repeated report ends the file now.
            await self._store.call("finish_file", file_row.id, state="failed" if fault.code else "completed",
                                   fault_code=fault.code or None)
            return
        if fault.code in _RETRIED and (task is None or task.state is TaskState.TRANSFERRING):
            transfers = await self._store.call("count_files", device_id, job_id=file_row.job_id, kind=file_row.kind)
            if transfers < MAX_TRANSFERS:
                await self._retry(task, record, file_row, fault.code, fault.string)
                return
        events = ctx.inform.event_codes if ctx.inform is not None else ()
        await self._transfer_outcome(task, fault.code, fault.string, file_row, rebooted=_BOOT in events,
                                     record=record)

    async def _retry(self, task: LiveTask | None, record: Any, file_row: Any, code: int, text: str) -> None:
        """A transfer that failed on the way: nothing was installed, so it is offered again
        (the task first, then the file's end: see _transfer_outcome)."""
        detail = f"transfer failed on the way ({code} {text[:80]}); offered again"
        now = self._clock.seconds()
        if task is not None:
            task.job.apply(task, TaskEvent.TRANSFER_LOST, now)
            task.detail = detail
            task.next_attempt = 0.0
            await self._writer.durable(task.update(now))
        else:
            await self._writer.durable(TaskUpdate(
                job_id=record.job_id, device_id=record.device_id, state=TaskState.PENDING.value,
                attempts=record.attempts, sent=record.sent, cr_exhausted=record.cr_exhausted,
                updated_at=_dt(now), detail=detail, node=getattr(self, "node", None)))
        await self._store.call("finish_file", file_row.id, state="failed", fault_code=code, detail=text[:200] or None)

    async def _transfer_outcome(self, task: LiveTask | None, code: int, text: str, file_row: Any, *,
                                rebooted: bool, record: Any = None) -> None:
        """The task's outcome, then the file's end, in that order: a crash between the two
        leaves the file live, so the phone's repeated TransferComplete finds it and ends it
        (a file ended before its task would make that report find nothing to do)."""
        detail: str | None
        file_state, file_fault, file_detail = "completed", None, None
        if code:
            event, detail = TaskEvent.TRANSFER_FAILED, (file_row.detail if file_row is not None else None)
            file_state, file_fault, file_detail = "failed", code, text[:200] or None
        elif file_row is not None and file_row.kind == "upload":
            fresh = await self._store.call("get_file", file_row.id)
            if fresh is None or fresh.backup_id is None:
                event, detail = TaskEvent.TRANSFER_FAILED, "the phone reported its upload complete, but no file arrived"
                code, text = 9011, "Upload failure"
                file_state, file_fault, file_detail = "failed", code, detail
            else:
                backup = await self._store.call("list_backups", device_id=file_row.device_id, limit=1)
                version = backup[0].version if backup else "?"
                event, detail = TaskEvent.TRANSFER_DONE, f"backup version {version}"
        else:
            event = TaskEvent.TRANSFER_DONE
            detail = "applied by a cfg.xml Download" + (" after a reboot" if rebooted else "")
            if file_row is not None:
                await self._record_known(file_row)
        fault = (code, text or "") if code else None
        if task is not None:
            await self._outcome(task, event, detail=detail, fault=fault)
        else:
            # The task is not in this node's memory (another node's claim, a cancelled job):
            # its outcome goes straight to the store, under the same "final is final" guard.
            now = self._clock.seconds()
            state = TaskState.APPLIED if event is TaskEvent.TRANSFER_DONE else TaskState.FAULTED
            await self._writer.durable(TaskUpdate(
                job_id=record.job_id, device_id=record.device_id, state=state.value, attempts=record.attempts,
                sent=record.sent, cr_exhausted=record.cr_exhausted, updated_at=_dt(now),
                fault_code=fault[0] if fault else None, fault_string=fault[1] if fault else None,
                detail=detail, finished_at=_dt(now), node=getattr(self, "node", None)))
        if file_row is not None:
            await self._store.call("finish_file", file_row.id, state=file_state, fault_code=file_fault,
                                   detail=file_detail)

    async def _record_known(self, file_row: Any) -> None:
        """The values of a Download the phone applied become what the ACS knows of it (the
        translation memoised per content, model and firmware: most phones share a file)."""
        device = self.devices.get(file_row.device_id) or await self._device(file_row.device_id)
        if device is None:
            return
        key = (file_row.sha256, device.product_class, device.software_version)
        params = self._known_of.get(key)
        if params is None:
            full = await self._store.call("get_file", file_row.id)
            if full is None or full.content is None:
                return
            try:
                translated = cfgxml_to_tr069(parse_cfgxml(full.content.encode("utf-8"), catalogue=self._catalogue),
                                             model=device.product_class, software_version=device.software_version,
                                             catalogue=self._catalogue)
            except MappingError as exc:  # pragma: no cover - the ACS rendered and checked it
                log.warn("cannot record the values of file {file}: {error}", file=file_row.id,
                         error=str(exc)[:200])
                return
            params = [(p.path, p.value, p.xsi_type) for p in translated]
            if len(self._known_of) >= _MEMO:
                self._known_of.clear()
            self._known_of[key] = params
        await self._store.call("set_device_parameters", file_row.device_id, params)

    async def _device(self, device_id: str) -> Any:
        found = await self._store.call("target_devices", [device_id])
        return found[0] if found else None

    # -- transfers that went quiet --------------------------------------------------------

    async def check_transfers(self) -> None:
        """End the transfers whose file was never fetched (offered again) or whose
        TransferComplete never came (faulted); the store changes the tasks, this node's
        working copies follow."""
        if self._files is None:
            return
        now = self._clock.seconds()
        changed = await self._store.call("overdue_transfers", now=_dt(now),
                                         transfer_timeout=self._files.transfer_timeout,
                                         fetch_wait=self._files.fetch_wait)
        for job_id, device_id, event, detail in changed:
            job = self.jobs.get(job_id)
            task = job.tasks.get(device_id) if job is not None else None
            if task is None or task.state is not TaskState.TRANSFERRING:
                continue
            task.job.apply(task, TaskEvent(event), now)
            task.detail = detail
            if task.state is TaskState.PENDING:
                task.next_attempt = 0.0
            self._writer.mark(task.update(now))
            log.info("job {job}: {device}: {detail}", job=job_id, device=device_id, detail=detail)


def _kind(message: Any) -> str | None:
    """download or upload, as an AutonomousTransferComplete says; None for a TransferComplete."""
    flag = getattr(message, "is_download", None)
    return None if flag is None else ("download" if flag else "upload")
