"""The service layer: fleet operations as one Python API.

The CLI (through the management API), the REST API and the SOAP API are thin adapters
over this class, so a rule lives in one place. Methods return plain data (dicts and
lists ready for JSON) and raise :class:`ServiceError` with an HTTP-like status for what
the caller asked wrongly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from acs_security.store.errors import InvalidArgument
from acs_security.store.records import parse_device_id

__all__ = ["ServiceError", "FleetService", "device_json", "parse_duration", "MAX_POLICY_BYTES"]

MAX_PAGE = 1000
#: Largest offset of a page (the store's integers are 64-bit; no list is this long).
MAX_OFFSET = 1_000_000_000
#: Job ids are the store's 64-bit row ids.
MAX_JOB_ID = 2**63 - 1
#: Largest policy document accepted by lint and export (the CLI refuses larger files too).
MAX_POLICY_BYTES = 256 * 1024


class ServiceError(Exception):
    """A request the service refuses; ``status`` maps to HTTP (400, 404, 409).
    ``findings`` (guardrail findings as JSON) goes into the problem details when given."""

    def __init__(self, status: int, title: str, detail: str = "", *,
                 findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.findings = findings


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _identity(device_id: str) -> dict[str, str | None]:
    """What a person recognises a phone by (its label: serial number and model, and the
    OUI), taken from the device id, which is built from them (TR-069 3.4.4)."""
    try:
        oui, product_class, serial = parse_device_id(device_id)
    except InvalidArgument:
        return {"serial_number": None, "product_class": None, "oui": None}
    return {"serial_number": serial, "product_class": product_class or None, "oui": oui}


def device_json(device: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in asdict(device).items()}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str | float | int) -> timedelta:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d``. Raises ServiceError(400)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ServiceError(400, "invalid duration", f"{text!r} is not a duration such as 90s, 30m, 2h, 1d")
        seconds = float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    if not 0 < seconds <= 90 * 86400:
        raise ServiceError(400, "invalid duration", f"{text!r} must be between 1 second and 90 days")
    return timedelta(seconds=seconds)


# The phone as a person finds it (serial, model, OUI) first; the device id for programs.
REPORT_COLUMNS = ("serial_number", "product_class", "oui", "device_id", "state", "wave", "attempts", "sent",
                  "reached_by", "fault_code", "fault_string", "faults", "detail", "conflicts", "finished_at", "node")
# Task states in which the device has had its session (fleet/tasks.py).
_HAD_SESSION = frozenset({"in_session", "transferring", "applied", "applied_pending_reboot", "faulted"})


def reached_by(state: str, method: str | None) -> str | None:
    """How the device was reached (connreq/methods.py ReachMethod values): the method of the
    last connection request sent before its session; ``periodic`` when it called in with no
    request sent; None while it has had no session."""
    if state not in _HAD_SESSION:
        return method
    return method or "periodic"



class FleetService:
    """Fleet operations over a DeferredStore and the job engine (every method is a coroutine)."""

    def __init__(self, store: Any, *, engine: Any = None, clock: Any = None,
                 acs_context: Any = None) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock
        # What the guardrails know of this ACS (policy/guardrails.py AcsContext); None: nothing
        # (the checks that need ACS facts then stay silent, the others still refuse).
        self._acs_context = acs_context
        # Assignments, audits and compliance (acs_security/desired/service.py), the same layer's
        # other half; set by the server (None: desired state not served here).
        self.desired: Any = None

    async def list_devices(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        filters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(400, "invalid limit", f"limit must be 1-{MAX_PAGE}")
        if not 0 <= offset <= MAX_OFFSET:
            raise ServiceError(400, "invalid offset", f"offset must be 0-{MAX_OFFSET}")
        allowed = {"product_class", "software_version", "serial_numbers", "tag"}
        filters = dict(filters or {})
        unknown = set(filters) - allowed
        if unknown:
            raise ServiceError(
                400, "unknown filter", f"unknown filter(s) {sorted(unknown)}; use {sorted(allowed)}"
            )
        devices = await self._store.call("list_devices", limit=limit, offset=offset, **filters)
        total = await self._store.call("count_devices", **filters)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "devices": [device_json(d) for d in devices],
        }

    async def get_device(self, device_id: str, *, with_parameters: bool = True) -> dict[str, Any]:
        device = await self._store.call("get_device", device_id)
        if device is None:
            raise ServiceError(404, "no such device", f"device {device_id!r} is not known")
        out = device_json(device)
        if with_parameters:
            params = await self._store.call("device_parameters", device_id)
            out["parameters"] = {
                name: {"value": self.mask(name, value), "type": xsi_type}
                for name, (value, xsi_type) in sorted(params.items())
            }
        return out

    def mask(self, name: str, value: str) -> str:
        """Secrets are shown as ``********`` (or empty when empty) in every output."""
        # One rule for what is secret, the data model's (acs_security.secrets).
        from acs_security.mapping import load_catalogue
        from acs_security.secrets import is_secret_parameter

        if is_secret_parameter(name, load_catalogue()):
            return "********" if value else ""
        return value

    # -- jobs -----------------------------------------------------------------------------

    def _need_engine(self) -> Any:
        if self._engine is None:
            raise ServiceError(503, "no job engine", "this node does not run the job engine")
        return self._engine

    async def submit_job(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a policy and targets, then create the job (or only plan it: dry_run).

        ``request``: policy (TOML or cfg.xml text), select, canary ("10" or "5%"), wave,
        max_fault_rate, deadline ("2h"), dry_run, force_all, readback, max_in_progress,
        force (guardrail rule ids to override), method (auto, spv, download: how settings
        travel, docs/files.md), file_content (policy or full: what a cfg.xml holds). The
        guardrails run once the policy parses: an error not forced refuses the job before
        anything is planned or sent (dry runs report the findings instead). Raises
        ServiceError(400) with every problem of the policy, and with ``findings`` when the
        guardrails refuse it."""
        from acs_security.fleet.live import FILE_CONTENTS, JobOptions
        from acs_security.fleet.selector import SelectorError, parse_selector
        from acs_security.fleet.waves import WaveOptions, parse_canary
        from acs_security.policy.document import PolicyError, parse_policy
        from acs_security.policy.plan import METHODS

        engine = self._need_engine()
        allowed = {"policy", "policy_name", "select", "canary", "wave", "max_fault_rate", "deadline",
                   "dry_run", "force_all", "readback", "max_in_progress", "force", "method", "file_content"}
        unknown = set(request) - allowed
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        data = self._policy_bytes(request.get("policy"))
        try:
            policy = parse_policy(data, source=str(request.get("policy_name") or "policy"))
        except PolicyError as exc:
            raise self._invalid_policy(exc) from None
        findings, refused = self._guardrails(policy, request.get("force"))
        if refused and not request.get("dry_run"):
            raise ServiceError(
                400, "policy refused by guardrails",
                "; ".join(f.line() for f in refused)
                + ". Nothing was sent. Fix the policy, or override a rule with force (push --force RULE).",
                findings=[f.to_json() for f in findings])
        try:
            selector = parse_selector(str(request.get("select", "")))
            canary = parse_canary(str(request.get("canary", "0")))
            wave = request.get("wave")
            options = JobOptions(
                canary=canary, wave_size=int(wave) if wave not in (None, "", 0) else None,
                max_fault_rate=float(request.get("max_fault_rate", 0.2)),
                force_all=bool(request.get("force_all", False)),
                readback=bool(request.get("readback", False)),
                max_in_progress=int(request.get("max_in_progress", 1000)),
                method=str(request.get("method") or "auto"),
                file_content=str(request.get("file_content") or "policy"),
            )
            WaveOptions(options.canary, options.wave_size, options.max_fault_rate)
            if options.method not in METHODS:
                raise ValueError(f"method {options.method!r} is not one of {', '.join(METHODS)}")
            if options.file_content not in FILE_CONTENTS:
                raise ValueError(f"file_content {options.file_content!r} is not one of "
                                 f"{', '.join(FILE_CONTENTS)}")
            if not 1 <= options.max_in_progress <= 100_000:
                raise ValueError(f"max_in_progress must be 1-100000, got {options.max_in_progress}")
        except SelectorError as exc:
            raise ServiceError(400, "invalid selector", str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise ServiceError(400, "invalid option", str(exc)) from None
        deadline = parse_duration(request.get("deadline", "24h"))
        targets = await engine.targets(selector)
        if not targets:
            raise ServiceError(400, "no target", f"no registered device matches {selector.text!r}")
        if request.get("dry_run"):
            plan = await self._dry_run(engine, policy, options, targets)
            plan["findings"] = [f.to_json() for f in findings]
            plan["refused_by"] = sorted({f.rule for f in refused})
            return plan
        job = await engine.submit(policy, selector, options, deadline=deadline, targets=targets)
        summary = await self.job_summary(job.id)
        summary["findings"] = [f.to_json() for f in findings]
        return summary

    def guardrails(self, policy: Any, force: Any) -> tuple[list[Any], list[Any]]:
        """(every finding, the errors that refuse it) of a policy, as a push gets them
        (assignments are checked the same way). Raises ServiceError(400) for a bad force."""
        return self._guardrails(policy, force)

    def policy_bytes(self, text: Any) -> bytes:
        """A policy document given as text, bounded. Raises ServiceError(400/413)."""
        return self._policy_bytes(text)

    def _guardrails(self, policy: Any, force: Any) -> tuple[list[Any], list[Any]]:
        """(every finding, the errors that refuse the job). Raises ServiceError(400) for a
        force list that is not a list of forceable rule ids."""
        from acs_security.policy.guardrails import AcsContext, UnknownRuleError, blocking, check_force, lint_policy

        if force is None:
            force = []
        if isinstance(force, str) or not isinstance(force, list) or not all(isinstance(r, str) for r in force):
            raise ServiceError(400, "invalid force", "force must be a list of guardrail rule ids")
        try:
            forced = check_force(force)
        except UnknownRuleError as exc:
            raise ServiceError(400, "unknown guardrail rule", str(exc)) from None
        findings = lint_policy(policy, context=self._acs_context or AcsContext())
        return findings, blocking(findings, forced)

    async def _dry_run(self, engine: Any, policy: Any, options: Any, targets: Sequence[Any]) -> dict[str, Any]:
        devices = []
        totals = {"change": 0, "compliant": 0, "skipped": 0, "error": 0}
        for device in targets:
            known = None
            if not options.force_all:
                params = await self._store.call("device_parameters", device.device_id)
                known = {name: value for name, (value, _t) in params.items()}
            plan = engine.plan_for(policy, device, known, force_all=options.force_all, method=options.method)
            verdict = ("error" if plan.error else "change" if plan.params or plan.download
                       else "skipped" if plan.skipped and not plan.unchanged else "compliant")
            in_file = plan.download_paths
            totals[verdict] += 1
            devices.append({
                "device_id": device.device_id,
                **_identity(device.device_id),
                "product_class": device.product_class,
                "verdict": verdict,
                "changes": [{"path": p, "known": self.mask(p, k) if k is not None else None,
                             "new": self.mask(p, n), "via": "download" if p in in_file else "spv"}
                            for p, k, n in plan.changes],
                "skipped": [{"setting": key, "reason": why} for key, why in plan.skipped],
                "error": plan.error,
            })
        return {"dry_run": True, "policy": policy.name, "targets": len(targets), "totals": totals,
                "devices": devices}

    def _live(self, job_id: int) -> Any:
        """The engine's working copy of the job, when it has the whole job: with several
        nodes each holds a share, and the store answers."""
        if self._engine is None or getattr(self._engine, "clustered", False):
            return None
        return self._engine.jobs.get(job_id)

    async def _job_record(self, job_id: int) -> Any:
        if isinstance(job_id, bool) or not isinstance(job_id, int) or not 1 <= job_id <= MAX_JOB_ID:
            # The SOAP face passes any integer through; the store's ids are 64-bit.
            raise ServiceError(404, "no such job", f"job ids are 1-{MAX_JOB_ID}")
        rec = await self._store.call("get_job", job_id)
        if rec is None:
            raise ServiceError(404, "no such job", f"job {job_id} does not exist")
        return rec

    async def job_summary(self, job_id: int) -> dict[str, Any]:
        rec = await self._job_record(job_id)
        live = self._live(job_id)
        now = self._clock.seconds() if self._clock is not None else datetime.now(UTC).timestamp()
        if live is not None:
            stats = live.summary(now)
            state, wave, reason = live.state, live.current_wave, live.reason
        else:
            from acs_security.fleet.tasks import TaskState
            from acs_security.store.schema import ACTIVE_TASK_STATES

            counts = await self._store.call("task_counts", job_id)
            stats = {"counts": {s.value: counts.get(s.value, 0) for s in TaskState},
                     "total": rec.total, "rate_per_s": None, "eta_s": None}
            done, last, p50, p99 = await self._store.call("job_timing", job_id, rec.created_at)
            if done:
                active = sum(counts.get(s, 0) for s in ACTIVE_TASK_STATES)
                end = last.timestamp() if last is not None and rec.state != "running" else now
                rate = done / max(1e-9, end - rec.created_at.timestamp())
                stats.update(done=done, rate_per_s=round(rate, 2), p50_s=round(p50, 3), p99_s=round(p99, 3),
                             eta_s=round(active / rate, 1) if rate and rec.state == "running" else None)
            state, wave, reason = rec.state, rec.current_wave, rec.reason
        out = {
            "id": rec.id, "name": rec.name, "kind": rec.kind, "state": state, "selector": rec.selector,
            "parameter_key": rec.parameter_key, "options": rec.options,
            "current_wave": wave, "wave_count": rec.wave_count, "reason": reason,
            "created_at": _jsonable(rec.created_at), "deadline": _jsonable(rec.deadline),
            "finished_at": _jsonable(rec.finished_at),
        }
        out.update(stats)
        # Counts under the state names at the top level too ("applied": 498, ...).
        out.update(stats["counts"])
        return out

    async def list_jobs(self, *, limit: int = 50, offset: int = 0, state: str | None = None) -> dict[str, Any]:
        if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise ServiceError(400, "invalid page", f"limit must be 1-{MAX_PAGE} and offset 0-{MAX_OFFSET}")
        states = [state] if state else None
        records = await self._store.call("list_jobs", limit=limit, offset=offset, states=states)
        total = await self._store.call("count_jobs", states=states)
        return {"total": total, "limit": limit, "offset": offset,
                "jobs": [await self.job_summary(r.id) for r in records]}

    async def job_devices(self, job_id: int, *, state: str | None = None, limit: int = 100,
                          offset: int = 0) -> dict[str, Any]:
        from acs_security.fleet.tasks import TaskState

        await self._job_record(job_id)
        if state is not None and state not in {s.value for s in TaskState}:
            raise ServiceError(400, "invalid state", f"{state!r} is not one of {[s.value for s in TaskState]}")
        if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise ServiceError(400, "invalid page", f"limit must be 1-{MAX_PAGE} and offset 0-{MAX_OFFSET}")
        await self._flush_engine()
        states = [state] if state else None
        tasks = await self._store.call("list_tasks", job_id, states=states, limit=limit, offset=offset)
        total = await self._store.call("count_tasks", job_id, states=states)
        live = self._live(job_id)
        rows = []
        for t in tasks:
            row = {k: _jsonable(v) for k, v in asdict(t).items() if k not in ("job_id", "position", "updated_at")}
            row.update(_identity(t.device_id))
            lt = live.tasks.get(t.device_id) if live is not None else None
            if lt is not None:  # the engine's copy is newer than the last batch written
                row.update(state=lt.state.value, attempts=lt.attempts, sent=lt.sent, detail=lt.detail,
                           reached_by=lt.reached_by or t.reached_by)
            row["reached_by"] = reached_by(row["state"], row.get("reached_by"))
            rows.append(row)
        return {"total": total, "limit": limit, "offset": offset, "devices": rows}

    async def _flush_engine(self) -> None:
        if self._engine is not None:
            await self._engine.flush()

    async def cancel_job(self, job_id: int) -> dict[str, Any]:
        await self._job_record(job_id)
        if not await self._need_engine().cancel_job(job_id):
            raise ServiceError(409, "job is over", f"job {job_id} is not running")
        return await self.job_summary(job_id)

    async def resume_job(self, job_id: int) -> dict[str, Any]:
        await self._job_record(job_id)
        if not await self._need_engine().resume_job(job_id):
            raise ServiceError(409, "job is not halted", f"job {job_id} is not halted")
        return await self.job_summary(job_id)

    async def job_report(self, job_id: int, *, fmt: str = "json") -> dict[str, Any] | bytes:
        """Every device's outcome: JSON (summary + devices) or CSV (one row per device)."""
        if fmt not in ("json", "csv"):
            raise ServiceError(400, "invalid format", "format must be json or csv")
        summary = await self.job_summary(job_id)
        devices: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.job_devices(job_id, limit=MAX_PAGE, offset=offset)
            devices.extend(page["devices"])
            offset += MAX_PAGE
            if offset >= page["total"]:
                break
        # Sessions where this job won against an assignment (desired state, decision 0009):
        # the conflict shows in the job's report as in the assignment's history.
        conflicts: dict[str, list[dict[str, Any]]] = {}
        for line in await self._store.call("job_conflicts", job_id):
            conflicts.setdefault(line.device_id, []).append(
                {"assignment": line.assignment_name, "setting": line.setting, "path": line.path,
                 "job_value": line.new_value, "assignment_value": line.old_value})
        for d in devices:
            d["conflicts"] = conflicts.get(d["device_id"], [])
        if fmt == "json":
            return {"job": summary, "devices": devices}
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for d in devices:
            row = dict(d)
            row["faults"] = ";".join(f"{f['name']}={f['code']}" for f in d.get("faults") or [])
            row["conflicts"] = ";".join(f"{c['assignment']}:{c['setting']}" for c in d.get("conflicts") or [])
            writer.writerow(row)
        return buf.getvalue().encode("utf-8")

    # -- policies, cfg.xml, data model (thin calls into policy/ and mapping/) ---------------

    def _invalid_policy(self, exc: Any) -> ServiceError:
        """The answer to a PolicyError: every problem in the detail, and as findings with
        what the guardrails find in the rest of the document (policy/guardrails.py)."""
        from acs_security.policy.guardrails import AcsContext, refused_findings

        findings = refused_findings(exc, context=self._acs_context or AcsContext())
        return ServiceError(400, "invalid policy", "; ".join(exc.errors),
                            findings=[f.to_json() for f in findings])

    def _policy_bytes(self, text: Any) -> bytes:
        if not isinstance(text, str) or not text.strip():
            raise ServiceError(400, "no policy", "give the policy document (TOML or cfg.xml) as text")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, from a caller other than the JSON API
            raise ServiceError(400, "invalid policy",
                               f"the text holds a lone surrogate at character {exc.start}") from None
        if len(data) > MAX_POLICY_BYTES:
            raise ServiceError(413, "policy too large", f"the policy exceeds {MAX_POLICY_BYTES} bytes")
        return data

    def lint_policy(self, text: Any, *, name: str = "policy") -> dict[str, Any]:
        """Guardrail findings of a policy document, as ``acs-security policy lint`` gives
        them: ``exit`` is 0 clean, 1 warnings, 2 errors. Raises ServiceError(400/413) for a
        missing or oversized document (content problems are findings, not errors)."""
        from acs_security.policy.guardrails import AcsContext, exit_code, lint_document

        data = self._policy_bytes(text)
        policy, findings = lint_document(data, source=str(name or "policy"),
                                         context=self._acs_context or AcsContext())
        return {"policy": policy.name if policy is not None else None,
                "findings": [f.to_json() for f in findings], "exit": exit_code(findings)}

    def policy_cfgxml(self, text: Any, *, name: str = "policy", extensions: int = 1) -> bytes:
        """The policy as a cfg.xml ``<flat-profile>`` (per-extension settings written for
        extensions 1..``extensions``). Settings without a cfg.xml element (web page or
        TR-069 only) are left out. Raises ServiceError(400) for an invalid policy."""
        from acs_security.mapping import load_catalogue
        from acs_security.policy.document import PolicyError, parse_policy

        if isinstance(extensions, bool) or not isinstance(extensions, int) or not 1 <= extensions <= 16:
            raise ServiceError(400, "invalid extensions", "extensions must be 1-16")
        data = self._policy_bytes(text)
        cat = load_catalogue()
        try:
            policy = parse_policy(data, source=str(name or "policy"), catalogue=cat)
        except PolicyError as exc:
            raise self._invalid_policy(exc) from None
        return self._render(cat, policy.sample_values(extensions))

    @staticmethod
    def _render(cat: Any, values: Mapping[str, str]) -> bytes:
        from acs_security.mapping.cfgxml import render_cfgxml
        from acs_security.mapping.errors import MappingError

        keep = {}
        for key, value in values.items():
            found = cat.find(key)
            if found is not None and found[0].element is not None:
                keep[key] = value
        try:
            return render_cfgxml(keep, catalogue=cat)
        except MappingError as exc:
            raise ServiceError(400, "cannot write cfg.xml", str(exc)) from None

    async def device_cfgxml(self, device_id: str) -> bytes:
        """The device's known values of catalogue settings as cfg.xml. Secret settings are
        left out (a cfg.xml export is not a way to read passwords back). Raises
        ServiceError(404) for an unknown device."""
        from acs_security.mapping import load_catalogue
        from acs_security.mapping.errors import MappingError

        device = await self._store.call("get_device", device_id)
        if device is None:
            raise ServiceError(404, "no such device", f"device {device_id!r} is not known")
        params = await self._store.call("device_parameters", device_id)
        cat = load_catalogue()
        view = cat.view(device.product_class, device.software_version)
        values: dict[str, str] = {}
        for path, (value, _type) in sorted(params.items()):
            try:
                setting, n = view.resolve_path(path)
            except (MappingError, ValueError):
                continue  # not a setting of the catalogue
            element = setting.element_for(n)
            if element is None or setting.secret:
                continue
            values[element] = value
        from acs_security.mapping.cfgxml import render_cfgxml

        try:
            return render_cfgxml(values, catalogue=cat)
        except MappingError:
            # A reported value the phone's own rules refuse: write what is valid.
            good = {}
            for element, value in values.items():
                try:
                    render_cfgxml({element: value}, catalogue=cat)
                except MappingError:
                    continue
                good[element] = value
            return render_cfgxml(good, catalogue=cat)

    def catalogue(self, *, limit: int = 100, offset: int = 0, query: str | None = None) -> dict[str, Any]:
        """The data-model catalogue (one row per setting), filtered by a case-insensitive
        substring of name, element or path, paginated. Raises ServiceError(400)."""
        from acs_security.mapping import load_catalogue

        if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise ServiceError(400, "invalid page", f"limit must be 1-{MAX_PAGE} and offset 0-{MAX_OFFSET}")
        cat = load_catalogue()
        rows = []
        needle = (query or "").lower()
        for s in cat.settings:
            if needle and not any(needle in (v or "").lower() for v in (s.name, s.element, s.path)):
                continue
            rows.append({"name": s.name, "element": s.element, "path": s.path, "format": s.format,
                         "tr069_type": s.tr069_type, "values": list(s.values), "default": s.default,
                         "min": s.minimum, "max": s.maximum, "max_length": s.max_length,
                         "secret": s.secret, "writable": s.writable, "feature": s.feature})
        return {"total": len(rows), "limit": limit, "offset": offset, "settings": rows[offset:offset + limit]}
