"""Assignments enforced in every session: the desired-state provisioner (Twisted edge).

On every Inform of a device an enabled assignment selects (any event: BOOTSTRAP, BOOT,
PERIODIC, VALUE CHANGE, CONNECTION REQUEST ...), the device's desired values on its model
and firmware are compared with what the ACS knows of it, and the differences are sent in
that session (TR-069 A.3.2.1 SetParameterValues, one per assignment, its ParameterKey naming
assignment and revision), followed once per device and revision by SetParameterAttributes
Notification=2 on the controlled parameters (A.3.2.4), so that a change made on the phone
arrives as ``4 VALUE CHANGE``. What :mod:`acs_security.desired.decide` decides is carried
out here; every outcome is durable before the session goes on.

A device the node remembers as settled for this desired state (live.py) and whose Inform
reports the same ParameterKey, no boot and no controlled value changed costs no store read:
that is the periodic session of a compliant phone, the common case. Anything else reads the
device's known values and rows once (``desired_device_state``).

Runs after the job engine in the same session (composite.py): a job's SetParameterValues is
observed (:meth:`DesiredSide.observe`), its paths win for the session, and the device is
judged again with the values it now has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from twisted.logger import Logger

from acs_security.cwmp import messages as m
from acs_security.cwmp.values import format_value, parse_value
from acs_security.desired.compiled import Compiled, Desired, same_value
from acs_security.desired.decide import BOOT, BOOTSTRAP, Decision, Situation, decide
from acs_security.desired.keys import assignment_key, job_of_key
from acs_security.desired.live import LiveAssignments
from acs_security.display import device_label
from acs_security.mapping import Catalogue, MappingError
from acs_security.secrets import is_secret_parameter
from acs_security.store.desiredrecords import DeviceAssignment

__all__ = ["DesiredSide", "PARAMETER_KEY", "SOFTWARE_VERSION"]

log = Logger(namespace="acs_security.desired")
PARAMETER_KEY = "Device.ManagementServer.ParameterKey"
SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"


class _Work:
    """What the desired side keeps for one session."""

    __slots__ = ("desired", "product_class", "firmware", "serial", "events", "key", "reported", "check",
                 "job_values", "decision", "queue", "outstanding", "rows", "unsettled", "retry_at")

    def __init__(self, desired: Desired, product_class: str, firmware: str | None, serial: str,
                 events: frozenset[str], key: str | None, reported: dict[str, str]) -> None:
        self.desired = desired
        self.product_class = product_class
        self.firmware = firmware
        self.serial = serial
        self.events = events
        self.key = key
        self.reported = reported
        self.check = True
        self.job_values: dict[str, tuple[str, int | None]] = {}
        self.decision: Decision | None = None
        self.queue: list[tuple[str, Any, Any]] | None = None
        self.outstanding: tuple[str, Any, Any] | None = None
        self.rows: dict[int, DeviceAssignment] = {}
        self.unsettled = False
        self.retry_at = math.inf


class DesiredSide:
    """The provisioner of assignments (a part of the composite provisioner)."""

    def __init__(self, live: LiveAssignments, *, store: Any, clock: Any, node: str | None = None,
                 job_key_prefix: str = "acs-sec-job-", observe_event: Callable[[str, str], None] | None = None
                 ) -> None:
        """``observe_event(counter, label)`` feeds metrics: ("check", fast|full),
        ("set", applied|faulted), ("drift", corrected|reported|...)."""
        self.live = live
        self._store = store
        self._clock = clock
        self._node = node
        self._job_prefix = job_key_prefix
        self._count = observe_event or (lambda counter, label: None)
        self._catalogue: Catalogue = live.catalogue
        self._secret: dict[str, bool] = {}
        self._names: dict[tuple[str, str | None, str], str] = {}

    # -- helpers ------------------------------------------------------------------------

    def secret(self, path: str) -> bool:
        found = self._secret.get(path)
        if found is None:
            found = self._secret[path] = is_secret_parameter(path, self._catalogue)
        return found

    def setting_name(self, path: str, product_class: str, firmware: str | None) -> str:
        """The path as the operator knows it: its cfg.xml element, else the setting's name."""
        key = (product_class, firmware, path)
        found = self._names.get(key)
        if found is None:
            try:
                setting, n = self._catalogue.view(product_class, firmware).resolve_path(path)
                found = setting.element_for(n) if setting.element else setting.name
            except (MappingError, ValueError):
                found = path
            if len(self._names) < 50_000:
                self._names[key] = found or path
        return found or path

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    # -- the provisioner ----------------------------------------------------------------

    async def session_started(self, ctx: Any) -> None:
        ctx.provisioner_state = None
        inform, device_id = ctx.inform, ctx.device_id
        aset = self.live.current
        if inform is None or not device_id or not aset.assignments:
            return
        ident = inform.device_id
        firmware = None
        key = None
        for p in inform.parameters:
            if p.name == SOFTWARE_VERSION:
                firmware = str(p.value) if p.value not in (None, "") else None
            elif p.name == PARAMETER_KEY:
                key = str(p.value)
        tags = self.live.tags.get(device_id, ()) if aset.uses_tags else ()
        selection = aset.select(product_class=ident.product_class, firmware=firmware, serial=ident.serial_number,
                                tags=tags, device_id=device_id)
        if not selection:
            self.live.forget(device_id)
            return
        desired = aset.desired(ident.product_class, firmware, selection)
        events = frozenset(inform.event_codes)
        reported: dict[str, str] = {}
        drifted = False
        for p in inform.parameters:
            want = desired.values.get(p.name)
            if want is not None:
                text = format_value(p.type, p.value) if not isinstance(p.value, str) else p.value
                reported[p.name] = text
                drifted = drifted or not same_value(want.xsi_type, text, want.value)
        work = _Work(desired, ident.product_class, firmware, ident.serial_number, events, key, reported)
        memory = self.live.recall(device_id)
        if (memory is not None and memory[0] == desired.stamp and memory[1] == key
                and self._clock.seconds() < memory[2] and not drifted and BOOT not in events
                and BOOTSTRAP not in events):
            work.check = False
            self._count("check", "fast")
        else:
            # Until this session settles it, the device is not remembered: a session lost half
            # way (after a VALUE CHANGE Inform, say) must not let the next one take the fast path.
            self.live.forget(device_id)
        ctx.provisioner_state = work

    def observe(self, ctx: Any, request: Any, response: Any) -> None:
        """Another part of the session exchanged ``request``/``response`` with the device."""
        work: _Work | None = ctx.provisioner_state
        if work is None:
            return
        if isinstance(request, m.SetParameterValues) and isinstance(response, m.SetParameterValuesResponse):
            work.key = request.parameter_key  # TR-069 A.3.2.1: the key of the last success
            job = job_of_key(request.parameter_key, self._job_prefix)
            for p in request.parameters:
                text = format_value(p.type, p.value) if not isinstance(p.value, str) else p.value
                work.job_values[p.name] = (text, job)
            work.check = True
            self.live.forget(ctx.device_id)
        elif isinstance(request, m.GetParameterValues) and isinstance(response, m.GetParameterValuesResponse):
            work.check = True  # an audit read the device: the store's values moved
            self.live.forget(ctx.device_id)

    async def next_request(self, ctx: Any) -> Any | None:
        work: _Work | None = ctx.provisioner_state
        if work is None or not work.check:
            return None
        if work.queue is None:
            await self._decide(ctx, work)
        assert work.queue is not None
        if work.queue:
            work.outstanding = work.queue[0]
            kind, what, params = work.outstanding
            if kind == "spv":
                send, batch, last = what
                key = send.part.assignment.key if last else assignment_key(
                    send.part.assignment.id, send.part.assignment.revision, batch + 1)
                return m.SetParameterValues(tuple(
                    m.ParameterValue(p.path, parse_value(p.xsi_type, p.value), p.xsi_type) for p in params), key)
            return m.SetParameterAttributes(tuple(
                m.SetParameterAttributesStruct(path, True, 2) for path in params))
        self._finish(ctx, work)
        return None

    async def _decide(self, ctx: Any, work: _Work) -> None:
        device_id = ctx.device_id
        self._count("check", "full")
        params, rows, last = await self._store.call("desired_device_state", device_id)
        pc, fw = work.product_class, work.firmware
        sit = Situation(
            device_id=device_id, software_version=fw, events=work.events,
            known={name: value for name, (value, _t) in params.items()}, rows=rows, now=self._now(),
            reported=work.reported, job_values=work.job_values, last_drift=last, node=self._node,
            secret=self.secret, setting_of=lambda path: self.setting_name(path, pc, fw))
        decision = work.decision = decide(work.desired, sit)
        work.rows = dict(rows)
        for row in decision.rows:
            work.rows[row.assignment_id] = row
        if decision.rows or decision.events:
            await self._store.call("record_desired", device_id, rows=decision.rows, events=decision.events)
            self._log_history(ctx, work, decision.events)
        work.unsettled = not decision.settled
        if decision.retry_at is not None:
            work.retry_at = decision.retry_at.timestamp()
        queue: list[tuple[str, Any, Any]] = []
        size = self._batch_size(pc)
        for send in decision.sends:
            params_ = list(send.params)
            step = size or len(params_)
            batches = [tuple(params_[i:i + step]) for i in range(0, len(params_), step)]
            for i, batch in enumerate(batches):
                queue.append(("spv", (send, i, i == len(batches) - 1), batch))
        paths = decision.notify_paths
        if paths:
            queue.append(("spa", tuple(decision.notify), paths))
        work.queue = queue

    def _batch_size(self, product_class: str) -> int | None:
        try:
            return self._catalogue.model(product_class).spv_batch_size
        except MappingError:
            return None

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        work: _Work | None = ctx.provisioner_state
        if work is None or work.outstanding is None or work.queue is None:
            return
        kind, what, params = work.outstanding
        work.outstanding = None
        if work.queue:
            work.queue.pop(0)
        device_id = ctx.device_id
        now = self._now()
        if kind == "spv":
            send, batch, last = what
            a: Compiled = send.part.assignment
            values = [(p.path, p.value, p.xsi_type) for p in params]
            if isinstance(response, m.SetParameterValuesResponse):
                work.key = request.parameter_key
                if not last:
                    await self._store.call("record_desired", device_id, params=values)
                    return
                row = replace(send.row, updated_at=now)
                work.rows[a.id] = row
                await self._store.call("record_desired", device_id, rows=[row], events=list(send.events),
                                       params=values)
                self._count("set", "applied")
                self._log_history(ctx, work, send.events)
                log.debug("{label}: assignment {name} r{rev} applied ({n} setting(s))",
                          label=device_label(work.serial, work.product_class), name=a.name, rev=a.revision,
                          n=len(send.params))
                return
            faults = tuple({"name": f.name, "code": f.code, "string": f.string}
                           for f in getattr(response, "set_parameter_values_faults", ()))
            code = getattr(response, "code", 0)
            row = replace(send.row, state="faulted", updated_at=now, faults=faults,
                          detail=f"SetParameterValues refused: fault {code} {getattr(response, 'string', '')}"[:500])
            work.rows[a.id] = row
            events = [replace(e, action="correction_failed") for e in send.events]
            # The rest of this assignment's batches are not sent (all or nothing per revision).
            work.queue = [item for item in work.queue if not (item[0] == "spv" and item[1][0] is send)]
            await self._store.call("record_desired", device_id, rows=[row], events=events)
            self._count("set", "faulted")
            self._log_history(ctx, work, events)
            work.retry_at = min(work.retry_at, self._clock.seconds() + 3600.0)
            log.warn("{label}: assignment {name} r{rev} refused: fault {code}",
                     label=device_label(work.serial, work.product_class), name=a.name, rev=a.revision, code=code)
            return
        # SetParameterAttributes
        ok = isinstance(response, m.SetParameterAttributesResponse)
        changed = []
        for part in what:
            a = part.assignment
            row = work.rows.get(a.id)
            if row is None:
                continue
            detail = row.detail
            if not ok:
                note = f"active notification refused: fault {getattr(response, 'code', '?')}"
                detail = f"{detail}; {note}" if detail else note
            changed.append(replace(row, notified_revision=a.revision, updated_at=now, detail=detail))
        for row in changed:
            work.rows[row.assignment_id] = row
        if changed:
            await self._store.call("record_desired", device_id, rows=changed)

    def _finish(self, ctx: Any, work: _Work) -> None:
        """The session is done with the device's assignments: remember it as settled for
        this desired state unless a job won (the next session enforces again)."""
        work.check = False
        if work.unsettled:
            self.live.forget(ctx.device_id)
            return
        self.live.remember(ctx.device_id, work.desired.stamp, work.key, work.retry_at)

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        # An unfinished session is not remembered: the next one checks again.
        ctx.provisioner_state = None

    def _log_history(self, ctx: Any, work: _Work, events: Any) -> None:
        label = device_label(work.serial, work.product_class)
        for e in events:
            if e.kind == "drift":
                self._count("drift", e.action)
                log.info("{label}: drift of {setting} ({assignment}): {old} -> {new} ({event}), {action}",
                         label=label, setting=e.setting, assignment=e.assignment_name, old=e.old_value,
                         new=e.new_value, event=e.event, action=e.action)
            elif e.kind == "job_conflict":
                log.info("{label}: job {job} won against assignment {assignment} for {setting} this session",
                         label=label, job=e.job_id, assignment=e.assignment_name, setting=e.setting)
            else:
                log.info("{label}: factory reset ({event}); assignment {assignment} {action}",
                         label=label, event=e.event, assignment=e.assignment_name,
                         action="re-applied" if e.action == "corrected" else "reported")
