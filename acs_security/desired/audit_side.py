"""Audit jobs in the session: read the controlled settings, judge them (Twisted edge).

An audit is a job of kind ``audit`` (decision 0009): the job engine sends its connection
requests in waves within the push limits, with the same retries and deadline; when the
device is in a session, this side sends GetParameterValues of every setting the audited
assignments control on the device's model and firmware (TR-069 A.3.2.2), judges what comes
back (acs_security.desired.audit) and records the reading, the values read (so the ACS's
known values are right again) and a drift line per setting found changed, in one
transaction, before the task's outcome. The assignments' side runs next in the same session
and, for assignments in enforce mode, corrects what the audit found.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from acs_security.cwmp import messages as m
from acs_security.cwmp.values import format_value
from acs_security.desired.audit import audit_items
from acs_security.desired.compiled import Desired
from acs_security.desired.live import LiveAssignments
from acs_security.fleet.tasks import TaskEvent, TaskState
from acs_security.store.desiredrecords import DriftRecord

__all__ = ["AuditSide"]

SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"


class _Audit:
    __slots__ = ("task", "stage", "desired", "only", "product_class", "firmware")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.stage = "start"
        self.desired: Desired | None = None
        self.only: set[int] | None = None
        self.product_class = ""
        self.firmware: str | None = None


class AuditSide:
    """The session side of audit jobs (a part of the composite provisioner)."""

    def __init__(self, engine: Any, live: LiveAssignments, desired_side: Any, *, store: Any, clock: Any,
                 node: str | None = None) -> None:
        self._engine = engine
        self._live = live
        self._side = desired_side  # for secret() and setting_name()
        self._store = store
        self._clock = clock
        self._node = node

    async def session_started(self, ctx: Any) -> None:
        ctx.provisioner_state = None
        if not ctx.device_id or ctx.inform is None:
            return
        tasks = await self._engine.session_tasks_of(ctx.device_id, ctx.token)
        chosen = None
        for task in tasks:
            job = task.job
            if job.kind != "audit":
                continue
            if (chosen is None and job.state == "running" and job.open_wave(task.wave)
                    and task.state in (TaskState.PENDING, TaskState.REQUESTED)):
                chosen = task
            elif task.state is not TaskState.IN_SESSION:
                self._engine.settle(task)
        if chosen is not None:
            ctx.provisioner_state = _Audit(chosen)

    async def next_request(self, ctx: Any) -> Any | None:
        work: _Audit | None = ctx.provisioner_state
        if work is None or work.stage != "start":
            return None
        task = work.task
        if task.state not in (TaskState.PENDING, TaskState.REQUESTED) or task.job.state != "running":
            ctx.provisioner_state = None
            return None
        self._engine.task_in_session(task)
        inform = ctx.inform
        ident = inform.device_id
        values = inform.parameter_map
        firmware = values.get(SOFTWARE_VERSION)
        work.product_class, work.firmware = ident.product_class, str(firmware) if firmware else None
        aset = self._live.current
        spec = task.job.audit or {}
        only = spec.get("assignments")
        work.only = {int(i) for i in only} if only else None
        tags = self._live.tags.get(ctx.device_id, ()) if aset.uses_tags else ()
        selection = tuple(a for a in aset.select(product_class=work.product_class, firmware=work.firmware,
                                                 serial=ident.serial_number, tags=tags, device_id=ctx.device_id)
                          if work.only is None or a.id in work.only)
        if not selection:
            work.stage = "done"
            await self._engine.record_outcome(task, TaskEvent.NOTHING_TO_DO,
                                              detail="no enabled assignment selects this device now")
            return None
        # Only the audited assignments: their settings, merged as enforcement merges them.
        work.desired = aset.desired(work.product_class, work.firmware, selection)
        paths = list(dict.fromkeys(p.path for part in work.desired.parts for p in part.every))
        if not paths:
            work.stage = "done"
            await self._store.call("record_audit", task.job.id, ctx.device_id, items=self._items(work, {}),
                                   read_at=self._now())
            await self._engine.record_outcome(task, TaskEvent.NOTHING_TO_DO,
                                              detail="every audited setting is absent on this model/firmware")
            return None
        work.stage = "sent"
        return m.GetParameterValues(tuple(paths))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    def _items(self, work: _Audit, read: dict[str, str] | None, why: str = "not read") -> list[dict[str, Any]]:
        assert work.desired is not None
        pc, fw = work.product_class, work.firmware
        return audit_items(work.desired, read, only=work.only, secret=self._side.secret,
                           setting_of=lambda path: self._side.setting_name(path, pc, fw), why_unknown=why)

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        work: _Audit | None = ctx.provisioner_state
        if work is None or work.stage != "sent" or not isinstance(request, m.GetParameterValues):
            return
        work.stage = "done"
        task, job = work.task, work.task.job
        device_id = ctx.device_id
        now = self._now()
        if not isinstance(response, m.GetParameterValuesResponse):
            code, string = getattr(response, "code", 0), getattr(response, "string", "")
            why = f"GetParameterValues refused: fault {code} {string}".strip()
            await self._store.call("record_audit", job.id, device_id, items=self._items(work, None, why),
                                   read_at=now)
            await self._engine.record_outcome(task, TaskEvent.FAULT, detail=why, fault=(code, string))
            return
        read = {p.name: (p.value if isinstance(p.value, str) else format_value(p.type, p.value))
                for p in response.parameters}
        items = self._items(work, read)
        known, _rows, _last = await self._store.call("desired_device_state", device_id)
        events = []
        for item in items:
            if item["verdict"] != "drifted" or item["path"] is None:
                continue
            if work.desired is not None and work.desired.owner.get(item["path"]) != item["assignment_id"]:
                continue  # a shadowed assignment's line: the owner's says it
            a = self._live.current.by_id.get(item["assignment_id"])
            previous = known.get(item["path"], (None, ""))[0]
            if previous is not None and self._side.secret(item["path"]):
                previous = "********" if previous else ""
            events.append(DriftRecord(
                device_id=device_id, assignment_id=item["assignment_id"], assignment_name=item["assignment"],
                kind="drift", event=f"audit job {job.id}",
                action="corrected" if a is not None and a.enforce else "reported", detected_at=now,
                setting=item["setting"], path=item["path"], old_value=previous, new_value=item["value"],
                node=self._node))
        # What was read is what the device holds now; a secret read back empty is not a value.
        params = [(p.name, read[p.name], p.type.removeprefix("xsd:")) for p in response.parameters
                  if not (self._side.secret(p.name) and read[p.name] == "")]
        await self._store.call("record_audit", job.id, device_id, items=items, read_at=now, events=events,
                               params=params)
        counts = Counter(i["verdict"] for i in items)
        detail = "read {n} setting(s): {c} compliant, {d} drifted, {mi} missing, {u} unknown".format(
            n=len(read), c=counts["compliant"], d=counts["drifted"], mi=counts["missing"], u=counts["unknown"])
        await self._engine.record_outcome(task, TaskEvent.APPLIED, detail=detail)

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        work: _Audit | None = ctx.provisioner_state
        ctx.provisioner_state = None
        if work is not None:
            self._engine.task_session_lost(work.task, outcome)
