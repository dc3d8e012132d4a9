"""The fleet as a person looks at it: devices by selector with how each is reached, a
device's catalogued settings (known value next to the desired one) and jobs, a job's
outcomes over time and its per-phone faults with their meaning.

Part of the service layer (the web console reads through it; every action goes through
:class:`~acs_security.service.FleetService`). The rules it applies live in one place each:
selectors in fleet/selector.py, secrets in acs_security/secrets.py (through
FleetService.mask), fault meanings in cwmp/faults.py, settings in the data model.
Methods return plain data and raise ServiceError.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from acs_security.cwmp.faults import fault_string
from acs_security.fleet.selector import SelectorError, parse_selector
from acs_security.mapping import load_catalogue
from acs_security.mapping.errors import MappingError
from acs_security.service import MAX_OFFSET, FleetService, ServiceError, device_json

__all__ = ["FleetOverview", "reachability", "fault_rows", "OUTCOME_STATES", "bucket_size"]

#: Final task states, in the order charts and tables show them.
OUTCOME_STATES = ("applied", "applied_pending_reboot", "skipped", "faulted", "unreachable", "cancelled")
#: Largest device page.
MAX_DEVICE_PAGE = 500


def reachability(device: Any) -> str:
    """How the ACS can make a phone call in now (TR-069 3.2.2 connection requests): over
    HTTP (ConnectionRequestURL), over UDP through NAT (Annex G, UDPConnectionRequestAddress),
    or not at all, when it waits for the phone's next periodic Inform."""
    http = bool(getattr(device, "connection_request_url", None))
    udp = bool(getattr(device, "udp_connection_request_address", None))
    if http and udp:
        return "HTTP + UDP"
    if http:
        return "HTTP"
    if udp:
        return "UDP (NAT)"
    return "periodic Inform only"


def fault_rows(task: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's faults as rows of parameter, code and meaning: the SetParameterValuesFault
    entries (TR-069 A.5.1.1) when the phone named parameters, else the fault itself."""
    rows = []
    for f in task.get("faults") or []:
        code = f.get("code")
        meaning = fault_string(int(code)) if isinstance(code, int) else ""
        rows.append({"parameter": f.get("name"), "code": code, "meaning": meaning,
                     "string": f.get("string") or ""})
    if not rows and task.get("fault_code") is not None:
        code = int(task["fault_code"])
        rows.append({"parameter": None, "code": code, "meaning": fault_string(code),
                     "string": task.get("fault_string") or ""})
    return rows


def bucket_size(seconds: float, *, buckets: int = 30) -> int:
    """A round bucket width (s) that spreads ``seconds`` over about ``buckets`` bars."""
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if seconds / width <= buckets:
            return width
    return 86400 * max(1, math.ceil(seconds / 86400 / buckets))


class FleetOverview:
    """Reads over a DeferredStore (``call``) and the FleetService (masking, job summaries).
    ``desired``: the desired-state service when it runs here (compliance, desired values),
    else None."""

    def __init__(self, store: Any, service: FleetService, *, clock: Any = None, desired: Any = None) -> None:
        self._store = store
        self._service = service
        self._clock = clock
        self.desired = desired

    def _now(self) -> datetime:
        seconds = self._clock.seconds() if self._clock is not None else datetime.now(UTC).timestamp()
        return datetime.fromtimestamp(seconds, UTC)

    # -- the fleet --------------------------------------------------------------------------

    async def devices(self, select: str = "all", *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Devices matching a selector (the CLI's syntax), one page, with a count by model
        and firmware of the whole selection. Raises ServiceError(400) for a bad selector or
        page."""
        if not 1 <= limit <= MAX_DEVICE_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise ServiceError(400, "invalid page", f"limit must be 1-{MAX_DEVICE_PAGE} and offset 0-{MAX_OFFSET}")
        try:
            selector = parse_selector(select or "all")
        except SelectorError as exc:
            raise ServiceError(400, "invalid selector", str(exc)) from None
        if selector.everything:
            # The whole fleet: a page and counts from the database, whatever its size.
            total = await self._store.call("count_devices")
            records = await self._store.call("list_devices", limit=limit, offset=offset)
            models = Counter({(pc, fw or ""): n for (pc, fw), n in
                              (await self._store.call("device_models")).items()})
        else:
            # The identity columns of every device (what the job engine targets with, too); the
            # selector's globs and firmware ranges are not SQL.
            targets = [d for d in await self._store.call("target_devices")
                       if selector.matches(product_class=d.product_class, firmware=d.software_version,
                                           serial=d.serial_number, tags=d.tags, device_id=d.device_id)]
            total = len(targets)
            models = Counter((d.product_class, d.software_version or "") for d in targets)
            page = [d.device_id for d in targets[offset:offset + limit]]
            records = await self._store.call("devices_by_ids", page) if page else []
        rows = []
        for device in records:
            row = device_json(device)
            row["reachability"] = reachability(device)
            rows.append(row)
        return {"selector": selector.text, "total": total, "limit": limit, "offset": offset,
                "devices": rows,
                "models": [{"product_class": pc, "software_version": fw or None, "devices": n}
                           for (pc, fw), n in sorted(models.items())]}

    # -- a device ---------------------------------------------------------------------------

    async def device(self, device_id: str) -> dict[str, Any]:
        """The device, how it is reached, every catalogued setting of its model and firmware
        with the known value (secrets masked) and the desired one, and its assignments, when
        desired state runs (else ``assignments`` is None), and its jobs with their outcome
        and faults. Raises ServiceError(404)."""
        device = await self._store.call("get_device", device_id)
        if device is None:
            raise ServiceError(404, "no such device", f"device {device_id!r} is not known")
        out = device_json(device)
        out["reachability"] = reachability(device)
        params = await self._store.call("device_parameters", device_id)
        view = await self.desired.device_desired(device_id) if self.desired is not None else None
        desired = {s["path"]: s for s in view.get("settings", []) if s.get("path")} if view else {}
        out["assignments"] = view.get("assignments", []) if view is not None else None
        out["settings"], out["other_parameters"] = self._settings(device, params, desired)
        out["jobs"] = await self._jobs_of(device_id)
        return out

    def _settings(self, device: Any, params: dict[str, tuple[str, str]],
                  desired: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        cat = load_catalogue()
        try:
            specs = cat.parameters_for(device.product_class, device.software_version)
        except MappingError:
            specs = []  # a model the data model does not know: only its raw parameters exist
        rows = []
        seen = set()
        for spec in specs:
            seen.add(spec.path)
            setting = cat.setting(spec.setting_key)
            known = params.get(spec.path)
            want = desired.get(spec.path)
            rows.append({
                "setting": spec.element or setting.name, "name": setting.name, "path": spec.path,
                "feature": setting.feature, "extension": spec.extension, "secret": spec.secret,
                "known": self._service.mask(spec.path, known[0]) if known is not None else None,
                "default": self._service.mask(spec.path, spec.default) if spec.default else spec.default,
                "desired": want.get("desired") if want else None,
                "assignment": want.get("owner") if want else None,
                "verdict": want.get("verdict") if want else None,
            })
        return rows, sum(1 for p in params if p not in seen)

    async def _jobs_of(self, device_id: str) -> list[dict[str, Any]]:
        jobs = []
        for entry in await self._store.call("device_job_history", device_id, limit=50):
            task = {k: v for k, v in asdict(entry.task).items() if k not in ("job_id", "device_id")}
            for key in ("updated_at", "finished_at", "next_attempt"):
                value = task.get(key)
                task[key] = value.isoformat().replace("+00:00", "Z") if value is not None else None
            task["faults"] = list(task["faults"])
            jobs.append({"job_id": entry.job_id, "job_name": entry.job_name, "job_state": entry.job_state,
                         "job_created_at": entry.job_created_at.isoformat().replace("+00:00", "Z"),
                         **task, "fault_rows": fault_rows(task)})
        return jobs

    # -- a job ------------------------------------------------------------------------------

    async def outcomes_over_time(self, job_id: int, *, buckets: int = 30) -> dict[str, Any]:
        """The job's finished tasks per time bucket and outcome, from its creation to its end
        (or now): ``bucket_seconds`` and ``rows`` of {start_s, counts}. Raises
        ServiceError(404)."""
        summary = await self._service.job_summary(job_id)
        created = datetime.fromisoformat(summary["created_at"].replace("Z", "+00:00"))
        end = (datetime.fromisoformat(summary["finished_at"].replace("Z", "+00:00"))
               if summary.get("finished_at") else self._now())
        span = max(1.0, (end - created).total_seconds())
        width = bucket_size(span, buckets=buckets)
        counts = await self._store.call("task_outcomes_over_time", job_id, origin=created, bucket_seconds=width)
        # At least a dozen bars: a job that took seconds is not drawn as two slabs.
        last = max([b for b, _ in counts] + [int(span // width), 11])
        rows = [{"start_s": b * width,
                 "counts": {s: counts.get((b, s), 0) for s in OUTCOME_STATES}} for b in range(last + 1)]
        return {"job_id": job_id, "bucket_seconds": width, "rows": rows}

    async def job_devices(self, job_id: int, *, state: str | None = None, limit: int = 100,
                          offset: int = 0) -> dict[str, Any]:
        """FleetService.job_devices with each phone's faults as parameter, code, meaning."""
        page = await self._service.job_devices(job_id, state=state, limit=limit, offset=offset)
        for row in page["devices"]:
            row["fault_rows"] = fault_rows(row)
        return page
