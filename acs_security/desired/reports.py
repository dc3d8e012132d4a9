"""Reports of desired state, from the store (a mixin of DesiredService): compliance per
assignment by model and firmware, an assignment's devices, a device's drift history and its
desired-vs-known view, audit reports, the Prometheus gauges' counts.

Compliance of a device for an assignment is its row when the row is of the assignment's
current revision, else ``unknown`` (not yet seen since that revision). ``compliant`` counts
applied and compliant rows; the ratio is over the selected devices less those skipped (a
model that has none of the settings cannot comply or not).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from acs_security.desired.audit import summarise, unknown_items
from acs_security.desired.compiled import AssignmentSet, same_value
from acs_security.service import ServiceError

__all__ = ["ReportsMixin", "jsonable", "COMPLIANCE_STATES", "AUDIT_COLUMNS", "state_of"]

#: The states a compliance report counts (device_assignments states, applied folded into
#: compliant, and unknown for devices not judged at the current revision).
COMPLIANCE_STATES = ("compliant", "drifted", "faulted", "skipped", "overridden", "unknown")
AUDIT_COLUMNS = ("serial_number", "product_class", "software_version", "device_id", "assignment", "setting", "path",
                 "verdict", "value", "desired", "detail")
_PAGE = 10_000
_WORST_FIRST = ("drifted", "faulted", "unknown", "overridden", "skipped", "compliant")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def state_of(row: Any, revision: int) -> str:
    if row is None or row.revision != revision:
        return "unknown"
    return "compliant" if row.state in ("applied", "compliant") else row.state


def _matches(a: Any, d: Any) -> bool:
    return bool(a.selector.matches(product_class=d.product_class, firmware=d.software_version,
                                   serial=d.serial_number, tags=d.tags, device_id=d.device_id))


def _ratios(counts: Mapping[str, int]) -> dict[str, Any]:
    total = sum(counts.values())
    judged = total - counts.get("skipped", 0)
    return {"selected": total, **{s: counts.get(s, 0) for s in COMPLIANCE_STATES},
            "compliant_ratio": round(counts.get("compliant", 0) / judged, 4) if judged else None,
            "drifted_ratio": round(counts.get("drifted", 0) / judged, 4) if judged else None}


def _owner_note(owner: Any, a: Any) -> str | None:
    if owner is None or owner.id == a.id:
        return None
    if owner.priority == a.priority:
        # Refused at creation for the devices registered then; a later device settles it by age.
        return f"tie at priority {a.priority} with {owner.name}: the older assignment's value wins"
    return f"{owner.name} has priority"


class ReportsMixin:
    _store: Any
    _engine: Any
    _fleet: Any
    _catalogue: Any
    _live: Any

    # DesiredService's (service.py):
    _record: Callable[[str | int], Awaitable[Any]]
    _fresh_set: Callable[[], Awaitable[AssignmentSet]]
    mask: Callable[[str, str], str]
    setting_name: Callable[[str, str | None, str | None], str]

    async def _device(self, device_id: str) -> Any:
        device = await self._store.call("get_device", device_id)
        if device is None:
            raise ServiceError(404, "no such device", f"device {device_id!r} is not known")
        return device

    # -- compliance -----------------------------------------------------------------------

    async def compliance(self, ref: str | int) -> dict[str, Any]:
        """Counts and ratios of an assignment's selected devices by state, overall, by model
        and by model and firmware."""
        from acs_security.desired.compiled import compile_assignment

        rec = await self._record(ref)
        a = compile_assignment(rec)
        rows = {r.device_id: r for r in await self._store.call("assignment_rows", rec.id)}
        overall: Counter[str] = Counter()
        by_model: dict[str, Counter[str]] = {}
        by_firmware: dict[tuple[str, str], Counter[str]] = {}
        for d in await self._store.call("target_devices"):
            if not _matches(a, d):
                continue
            state = state_of(rows.get(d.device_id), rec.revision)
            overall[state] += 1
            by_model.setdefault(d.product_class, Counter())[state] += 1
            by_firmware.setdefault((d.product_class, d.software_version or ""), Counter())[state] += 1
        return {
            "assignment": rec.name, "id": rec.id, "revision": rec.revision, "mode": rec.mode, "enabled": rec.enabled,
            "selector": rec.selector, **_ratios(overall),
            "by_model": [{"product_class": m, **_ratios(c)} for m, c in sorted(by_model.items())],
            "by_firmware": [{"product_class": m, "software_version": fw or None, **_ratios(c)}
                            for (m, fw), c in sorted(by_firmware.items())],
        }

    async def assignment_devices(self, ref: str | int, *, state: str | None = None, limit: int = 100,
                                 offset: int = 0) -> dict[str, Any]:
        """The selected devices of an assignment with their state (``state`` filters)."""
        from acs_security.desired.compiled import compile_assignment

        if state is not None and state not in COMPLIANCE_STATES:
            raise ServiceError(400, "invalid state", f"{state!r} is not one of {list(COMPLIANCE_STATES)}")
        if not 1 <= limit <= 1000 or offset < 0:
            raise ServiceError(400, "invalid page", "limit must be 1-1000 and offset >= 0")
        rec = await self._record(ref)
        a = compile_assignment(rec)
        rows = {r.device_id: r for r in await self._store.call("assignment_rows", rec.id)}
        out = []
        for d in await self._store.call("target_devices"):
            if not _matches(a, d):
                continue
            row = rows.get(d.device_id)
            st = state_of(row, rec.revision)
            if state is not None and st != state:
                continue
            out.append({"device_id": d.device_id, "serial_number": d.serial_number, "product_class": d.product_class,
                        "software_version": d.software_version, "state": st,
                        "row_state": row.state if row is not None else None,
                        "revision": row.revision if row is not None else None,
                        "detail": row.detail if row is not None else None,
                        "skipped": list(row.skipped) if row is not None else [],
                        "faults": list(row.faults) if row is not None else [],
                        "job_id": row.job_id if row is not None else None,
                        "notified": bool(row is not None and row.notified_revision == rec.revision),
                        "updated_at": jsonable(row.updated_at) if row is not None else None,
                        "node": row.node if row is not None else None})
        return {"assignment": rec.name, "total": len(out), "limit": limit, "offset": offset,
                "devices": out[offset:offset + limit]}

    async def gauges(self) -> dict[tuple[str, str], int]:
        """{(assignment name, state): devices} over every enabled assignment (the
        acs_desired_devices gauges): its rows at the current revision, and the selected
        devices without one as unknown."""
        records = [r for r in await self._store.call("list_assignments") if r.enabled]
        if not records:
            return {}
        counts = await self._store.call("assignment_state_counts")
        aset = await self._fresh_set()
        devices = await self._store.call("target_devices")
        out: dict[tuple[str, str], int] = {}
        for rec in records:
            a = aset.by_id.get(rec.id)
            if a is None:
                continue
            selected = sum(1 for d in devices if _matches(a, d))
            judged = 0
            for state in ("applied", "compliant", "drifted", "faulted", "skipped", "overridden", "unknown"):
                n = counts.get((rec.id, state), 0)
                key = "compliant" if state == "applied" else state
                out[(rec.name, key)] = out.get((rec.name, key), 0) + n
                judged += n
            # Rows of devices no longer selected are not subtracted: selection is now.
            out[(rec.name, "unknown")] = out.get((rec.name, "unknown"), 0) + max(0, selected - judged)
            out[(rec.name, "selected")] = selected
        return out

    # -- a device -------------------------------------------------------------------------

    async def device_states(self, device_ids: Sequence[str]) -> dict[str, str]:
        """{device id: its compliance over the enabled assignments that select it}, the worst
        first: drifted, faulted, unknown, overridden, skipped, compliant; ``none`` when no
        assignment selects it (a page of devices: the web console's fleet list)."""
        aset = await self._fresh_set()
        out: dict[str, str] = {}
        for d in await self._store.call("target_devices", list(device_ids)):
            selection = aset.select(product_class=d.product_class, firmware=d.software_version,
                                    serial=d.serial_number, tags=d.tags, device_id=d.device_id)
            if not selection:
                out[d.device_id] = "none"
                continue
            rows = {r.assignment_id: r for r in await self._store.call("device_rows", d.device_id)}
            states = {state_of(rows.get(a.id), a.revision) for a in selection}
            out[d.device_id] = next(s for s in _WORST_FIRST if s in states)
        return out

    async def device_drift(self, device_id: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """The device's desired-state history, newest first: drift (when, setting, old, new,
        source event, action), sessions a job won, factory resets."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise ServiceError(400, "invalid page", "limit must be 1-1000 and offset >= 0")
        device = await self._device(device_id)
        lines = await self._store.call("drift_history", device_id, limit=limit, offset=offset)
        total = await self._store.call("count_drift", device_id)
        return {"device_id": device_id, "serial_number": device.serial_number, "product_class": device.product_class,
                "total": total, "limit": limit, "offset": offset,
                "events": [{"id": e.id, "at": jsonable(e.detected_at), "kind": e.kind, "assignment": e.assignment_name,
                            "assignment_id": e.assignment_id, "setting": e.setting, "path": e.path,
                            "old": e.old_value, "new": e.new_value, "event": e.event, "action": e.action,
                            "job_id": e.job_id, "node": e.node} for e in lines]}

    async def device_desired(self, device_id: str) -> dict[str, Any]:
        """What the device should hold and what the ACS knows it holds, per controlled
        setting, and its state per selecting assignment (secrets masked)."""
        device = await self._device(device_id)
        aset = await self._fresh_set()
        pc, fw = device.product_class, device.software_version
        selection = aset.select(product_class=pc, firmware=fw, serial=device.serial_number, tags=device.tags,
                                device_id=device_id)
        params = await self._store.call("device_parameters", device_id)
        rows = {r.assignment_id: r for r in await self._store.call("device_rows", device_id)}
        settings: list[dict[str, Any]] = []
        assignments: list[dict[str, Any]] = []
        if selection:
            desired = aset.desired(pc, fw, selection)
            for part in desired.parts:
                a = part.assignment
                row = rows.get(a.id)
                assignments.append({"name": a.name, "id": a.id, "revision": a.revision, "mode": a.mode,
                                    "priority": a.priority, "state": state_of(row, a.revision),
                                    "detail": row.detail if row is not None else part.error,
                                    "notified": bool(row is not None and row.notified_revision == a.revision),
                                    "updated_at": jsonable(row.updated_at) if row is not None else None})
                for key, reason in part.skipped:
                    settings.append({"assignment": a.name, "setting": key, "path": None, "desired": None,
                                     "known": None, "verdict": "missing", "owner": None, "detail": reason})
                in_file = [(f.param, True) for f in part.every_file]
                for p, by_file in [(p, False) for p in part.every] + in_file:
                    won = desired.file_values[p.path].param if p.path in desired.file_values else None
                    want = desired.values.get(p.path) or won or p
                    owner = aset.by_id.get(desired.owner.get(p.path, a.id))
                    known = params.get(p.path, (None, ""))[0]
                    verdict = ("unknown" if known is None else
                               "compliant" if same_value(want.xsi_type, known, want.value) else "differs")
                    note = _owner_note(owner, a)
                    if by_file:  # known from the last cfg.xml Download the phone installed
                        note = "cfg.xml only (sent by Download)" + (f"; {note}" if note else "")
                    settings.append({
                        "assignment": a.name, "setting": self.setting_name(p.path, pc, fw), "path": p.path,
                        "desired": self.mask(p.path, want.value),
                        "known": self.mask(p.path, known) if known is not None else None, "verdict": verdict,
                        "owner": owner.name if owner is not None else a.name,
                        "detail": note})
        return {"device_id": device_id, "serial_number": device.serial_number, "product_class": pc,
                "software_version": fw, "parameter_key": device.parameter_key, "assignments": assignments,
                "settings": settings}

    # -- audits ---------------------------------------------------------------------------

    async def audit_report(self, job_id: int, *, fmt: str = "json") -> dict[str, Any] | bytes:
        """An audit's verdicts per setting and model (counts, ratios, the values found) and
        per device; CSV: one row per device and setting. Devices not read are ``unknown``
        with the reason (unreachable, refused, not yet reached)."""
        if fmt not in ("json", "csv"):
            raise ServiceError(400, "invalid format", "format must be json or csv")
        job = await self._store.call("get_job", job_id)
        if job is None:
            raise ServiceError(404, "no such job", f"job {job_id} does not exist")
        if job.kind != "audit":
            raise ServiceError(400, "not an audit", f"job {job_id} is a {job.kind}, not an audit")
        if self._engine is not None:
            await self._engine.flush()
        summary = await self._fleet.job_summary(job_id)
        readings = {r.device_id: r for r in await self._store.call("audit_readings", job_id)}
        tasks: list[Any] = []
        offset = 0
        while True:
            page = await self._store.call("list_tasks", job_id, limit=_PAGE, offset=offset)
            tasks.extend(page)
            offset += _PAGE
            if len(page) < _PAGE:
                break
        facts = {d.device_id: d for d in await self._store.call("target_devices", [t.device_id for t in tasks])} \
            if len(tasks) <= _PAGE else {d.device_id: d for d in await self._store.call("target_devices")}
        only = (job.options.get("audit") or {}).get("assignments")
        aset = await self._fresh_set()
        pairs: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        devices = []
        for task in tasks:
            d = facts.get(task.device_id)
            info = {"device_id": task.device_id, "serial_number": d.serial_number if d else None,
                    "product_class": d.product_class if d else None,
                    "software_version": d.software_version if d else None, "state": task.state,
                    "detail": task.detail}
            reading = readings.get(task.device_id)
            if reading is not None:
                items = [dict(i) for i in reading.items]
                info["read_at"] = jsonable(reading.read_at)
            elif d is not None:
                why = {"unreachable": "not reachable before the audit's deadline", "pending": "not reached yet",
                       "requested": "not reached yet", "in_session": "being read",
                       "cancelled": "audit cancelled"}.get(task.state, task.detail or task.state)
                items = self._unknown_items(aset, d, only, why)
            else:
                items = []
            info["items"] = items
            pairs.append((info, items))
            devices.append(info)
        report = summarise(pairs)
        if fmt == "json":
            return {"job": summary, **report, "devices": devices}
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=AUDIT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for info, items in pairs:
            for item in items:
                writer.writerow({**{k: info.get(k) for k in ("serial_number", "product_class", "software_version",
                                                             "device_id")}, **item})
        return buf.getvalue().encode("utf-8")

    def _unknown_items(self, aset: AssignmentSet, d: Any, only: Iterable[int] | None, why: str) -> list[dict[str, Any]]:
        selection = tuple(a for a in aset.select(product_class=d.product_class, firmware=d.software_version,
                                                 serial=d.serial_number, tags=d.tags, device_id=d.device_id)
                          if only is None or a.id in set(only))
        if not selection:
            return []
        desired = aset.desired(d.product_class, d.software_version, selection)
        return unknown_items(desired, why, only=only,
                             setting_of=lambda path: self.setting_name(path, d.product_class, d.software_version),
                             secret=lambda path: self.mask(path, "x") != "x")

