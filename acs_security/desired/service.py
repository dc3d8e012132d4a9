"""The service layer of desired state: assignments, audits, compliance (one API for the CLI,
REST and SOAP faces, like acs_security/service.py, whose FleetService it works with).

Methods return plain data ready for JSON and raise
:class:`~acs_security.service.ServiceError` for what the caller asked wrongly. Assignments
are checked at creation as a push is (the guardrails, with ``force``), and refused when they
conflict with another enabled assignment of the same priority (409, every conflict named
with setting, both assignments and an example device). Reports (compliance per assignment by
model and firmware, a device's drift history, its desired-vs-known view, audit reports) come
from the store, so every node gives the same numbers (reports.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from acs_security.desired.compiled import AssignmentSet, Compiled, compile_assignment
from acs_security.desired.conflicts import find_conflicts
from acs_security.desired.reports import ReportsMixin, jsonable
from acs_security.fleet.selector import SelectorError, parse_selector
from acs_security.mapping import Catalogue, MappingError, load_catalogue
from acs_security.policy.document import Policy, PolicyError, parse_policy
from acs_security.secrets import is_secret_parameter
from acs_security.service import ServiceError, parse_duration
from acs_security.store.desired import DuplicateAssignment
from acs_security.store.desiredrecords import ASSIGNMENT_MODES

__all__ = ["DesiredService", "NAME_RE"]

#: Assignment names: what an operator types and URLs carry without escaping.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$")
_ASSIGN_FIELDS = {"policy", "policy_name", "name", "select", "priority", "mode", "force", "dry_run"}
_AUDIT_FIELDS = {"select", "assignment", "assignments", "wave", "max_in_progress", "deadline", "canary"}


class DesiredService(ReportsMixin):
    """Assignments and audits over a DeferredStore, the job engine and this node's live
    assignments (every method that touches the store is a coroutine)."""

    def __init__(self, store: Any, *, fleet: Any, engine: Any = None, live: Any = None, clock: Any = None,
                 catalogue: Catalogue | None = None) -> None:
        self._store = store
        self._fleet = fleet
        self._engine = engine
        self._live = live
        self._clock = clock
        self._catalogue = catalogue or load_catalogue()

    # -- helpers ------------------------------------------------------------------------

    def mask(self, key: str, value: str) -> str:
        if value and is_secret_parameter(key, self._catalogue):
            return "********"
        return value

    def setting_name(self, path: str, product_class: str | None, firmware: str | None) -> str:
        try:
            setting, n = self._catalogue.view(product_class, firmware).resolve_path(path)
        except (MappingError, ValueError):
            return path
        return (setting.element_for(n) if setting.element else setting.name) or path

    async def _record(self, ref: str | int) -> Any:
        """An assignment by id or name. Raises ServiceError(404)."""
        text = str(ref)
        rec = None
        if text.isdigit() and len(text) <= 9:
            rec = await self._store.call("get_assignment", int(text))
        if rec is None:
            rec = await self._store.call("find_assignment", text)
        if rec is None:
            raise ServiceError(404, "no such assignment", f"no assignment has the name or id {text!r}")
        return rec

    async def _fresh_set(self) -> AssignmentSet:
        """Every assignment compiled from the store (the truth; reports use it)."""
        compiled = []
        for rec in await self._store.call("list_assignments"):
            try:
                compiled.append(compile_assignment(rec))
            except ValueError:
                continue
        return AssignmentSet(compiled, catalogue=self._catalogue)

    async def _changed(self) -> None:
        """This node enforces a change at once (other nodes at their next sync)."""
        if self._live is not None:
            await self._live.refresh(force=True)

    def assignment_json(self, rec: Any, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
        policy = dict(rec.policy)
        for section in ("settings", "extension_settings"):
            policy[section] = {k: self.mask(k, str(v)) for k, v in (policy.get(section) or {}).items()}
        policy.pop("sealed", None)
        out = {"id": rec.id, "name": rec.name, "policy_name": rec.policy_name, "selector": rec.selector,
               "priority": rec.priority, "mode": rec.mode, "enabled": rec.enabled, "revision": rec.revision,
               "parameter_key": f"acs-des-{rec.id}-r{rec.revision}", "policy": policy,
               "created_at": jsonable(rec.created_at), "updated_at": jsonable(rec.updated_at)}
        if counts is not None:
            out["counts"] = dict(counts)
        return out

    # -- assignments --------------------------------------------------------------------

    async def assign(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Create an assignment, or a new revision of the one of that name.

        ``request``: policy (TOML or cfg.xml text), select, name (default: the policy's),
        priority (default 0; higher wins), mode (enforce | audit), force (guardrail rule
        ids), dry_run. Raises ServiceError: 400 (invalid policy, selector, name, priority,
        mode, guardrails: with ``findings``), 409 (conflicts: with ``findings`` listing
        them)."""
        unknown = set(request) - _ASSIGN_FIELDS
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        text = self._fleet.policy_bytes(request.get("policy"))
        source = str(request.get("policy_name") or "policy")
        try:
            policy = parse_policy(text, source=source, catalogue=self._catalogue)
        except PolicyError as exc:
            raise ServiceError(400, "invalid policy", "; ".join(exc.errors)) from None
        name = str(request.get("name") or policy.name)
        if not NAME_RE.match(name):
            raise ServiceError(400, "invalid name", f"{name!r}: an assignment name is 1-64 letters, digits and "
                                                    "._:@+- starting with a letter or digit")
        try:
            selector = parse_selector(str(request.get("select", "")))
        except SelectorError as exc:
            raise ServiceError(400, "invalid selector", str(exc)) from None
        priority = request.get("priority", 0)
        if isinstance(priority, str) and re.fullmatch(r"-?[0-9]{1,7}", priority.strip()):
            priority = int(priority)
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1_000_000 <= priority <= 1_000_000:
            raise ServiceError(400, "invalid priority", f"priority must be an integer from -1000000 to 1000000, "
                                                        f"got {priority!r}")
        mode = str(request.get("mode") or "enforce")
        if mode not in ASSIGNMENT_MODES:
            raise ServiceError(400, "invalid mode", f"mode must be one of {', '.join(ASSIGNMENT_MODES)}, got {mode!r}")
        findings, refused = self._fleet.guardrails(policy, request.get("force"))
        dry_run = bool(request.get("dry_run"))
        if refused and not dry_run:
            raise ServiceError(
                400, "policy refused by guardrails",
                "; ".join(f.line() for f in refused)
                + ". Nothing was assigned. Fix the policy, or override a rule with force (assign --force RULE).",
                findings=[f.to_json() for f in findings])
        existing = await self._store.call("find_assignment", name)
        candidate = Compiled(id=existing.id if existing is not None else -1, name=name, priority=priority,
                             mode=mode, revision=(existing.revision + 1) if existing is not None else 1,
                             policy=policy, selector=selector)
        devices = await self._store.call("target_devices")
        conflicts = await self._conflicts(candidate, devices)
        selected = [d for d in devices if selector.matches(product_class=d.product_class, firmware=d.software_version,
                                                           serial=d.serial_number, tags=d.tags, device_id=d.device_id)]
        by_model: dict[str, int] = {}
        for d in selected:
            by_model[d.product_class] = by_model.get(d.product_class, 0) + 1
        summary = {"selected": len(selected), "selected_by_model": dict(sorted(by_model.items())),
                   "findings": [f.to_json() for f in findings], "conflicts": [c.to_json() for c in conflicts]}
        if dry_run:
            action = "create" if existing is None else f"revision {existing.revision + 1} of {name}"
            return {"dry_run": True, "would": action, "name": name, "refused_by": sorted({f.rule for f in refused}),
                    **summary}
        if conflicts:
            raise ServiceError(
                409, "conflicting assignments",
                "; ".join(c.line() for c in conflicts)
                + ". Nothing was assigned. Give one of them a higher priority (--priority), narrow a selector, "
                  "or make the values agree.", findings=[c.to_json() for c in conflicts])
        policy_json = policy.to_json()
        if existing is None:
            try:
                rec = await self._store.call("create_assignment", name=name, policy=policy_json, policy_name=source,
                                             selector=selector.text, priority=priority, mode=mode)
            except DuplicateAssignment as exc:  # created meanwhile by another request
                raise ServiceError(409, "assignment exists", str(exc)) from None
            created = True
        else:
            if (_same_policy(existing.policy, policy_json) and existing.selector == selector.text
                    and existing.priority == priority and existing.mode == mode):
                return {**self.assignment_json(existing), **summary, "created": False, "unchanged": True}
            rec = await self._store.call("update_assignment", existing.id, policy=policy_json, policy_name=source,
                                         selector=selector.text, priority=priority, mode=mode)
            if rec is None:
                raise ServiceError(409, "assignment deleted", f"assignment {name!r} was deleted meanwhile")
            created = False
        await self._changed()
        return {**self.assignment_json(rec), **summary, "created": created, "unchanged": False}

    async def _conflicts(self, candidate: Compiled, devices: list[Any]) -> list[Any]:
        aset = await self._fresh_set()
        others = [a for a in aset.assignments if a.id != candidate.id]
        plans = AssignmentSet([candidate, *others], catalogue=self._catalogue)
        return find_conflicts(candidate, others, devices, plans=plans, mask=self.mask,
                              setting_of=self.setting_name, max_extensions=self._catalogue.max_extensions)

    async def list_assignments(self) -> dict[str, Any]:
        records = await self._store.call("list_assignments")
        counts = await self._store.call("assignment_state_counts")
        per: dict[int, dict[str, int]] = {}
        for (aid, state), n in counts.items():
            per.setdefault(aid, {})[state] = n
        return {"total": len(records), "assignments": [self.assignment_json(r, per.get(r.id, {})) for r in records]}

    async def get_assignment(self, ref: str | int) -> dict[str, Any]:
        rec = await self._record(ref)
        counts = await self._store.call("assignment_state_counts")
        return self.assignment_json(rec, {state: n for (aid, state), n in counts.items() if aid == rec.id})

    async def set_enabled(self, ref: str | int, enabled: bool) -> dict[str, Any]:
        """Enable (conflicts are checked again, 409) or disable an assignment."""
        rec = await self._record(ref)
        if enabled and not rec.enabled:
            candidate = compile_assignment(rec)
            conflicts = await self._conflicts(candidate, await self._store.call("target_devices"))
            if conflicts:
                raise ServiceError(409, "conflicting assignments",
                                   "; ".join(c.line() for c in conflicts) + ". It stays disabled.",
                                   findings=[c.to_json() for c in conflicts])
        rec = await self._store.call("set_assignment_enabled", rec.id, enabled)
        if rec is None:
            raise ServiceError(404, "no such assignment", f"assignment {ref!r} was deleted meanwhile")
        await self._changed()
        return self.assignment_json(rec)

    async def delete_assignment(self, ref: str | int) -> dict[str, Any]:
        """Delete: devices keep their values (nothing is undone) and their history."""
        rec = await self._record(ref)
        await self._store.call("delete_assignment", rec.id)
        await self._changed()
        return {"deleted": rec.name, "id": rec.id}

    # -- audits -------------------------------------------------------------------------

    async def submit_audit(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Start an audit job: read the controlled settings of the devices that ``select``
        names and enabled assignments select (``assignment``: one name or id; default all),
        in waves within the push limits. Raises ServiceError 400/404/503."""
        from acs_security.fleet.live import JobOptions
        from acs_security.fleet.waves import WaveOptions, parse_canary

        unknown = set(request) - _AUDIT_FIELDS
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        if self._engine is None:
            raise ServiceError(503, "no job engine", "this node does not run the job engine")
        try:
            selector = parse_selector(str(request.get("select") or "all"))
        except SelectorError as exc:
            raise ServiceError(400, "invalid selector", str(exc)) from None
        refs = request.get("assignments") or ([request["assignment"]] if request.get("assignment") else [])
        if isinstance(refs, (str, int)):
            refs = [refs]
        chosen = [await self._record(r) for r in refs]
        only = sorted({r.id for r in chosen}) or None
        aset = await self._fresh_set()
        audited = [a for a in aset.assignments if only is None or a.id in only]
        if not audited:
            raise ServiceError(400, "nothing to audit",
                               "no enabled assignment" + (" among those named" if only else ""))
        try:
            wave = request.get("wave")
            options = JobOptions(canary=parse_canary(str(request.get("canary", "0"))),
                                 wave_size=int(wave) if wave not in (None, "", 0) else 500, max_fault_rate=1.0,
                                 max_in_progress=int(request.get("max_in_progress", 1000)))
            WaveOptions(options.canary, options.wave_size, options.max_fault_rate)
            if not 1 <= options.max_in_progress <= 100_000:
                raise ValueError(f"max_in_progress must be 1-100000, got {options.max_in_progress}")
        except (TypeError, ValueError) as exc:
            raise ServiceError(400, "invalid option", str(exc)) from None
        deadline = parse_duration(request.get("deadline", "2h"))
        targets = [d for d in await self._engine.targets(selector)
                   if any(a.selector.matches(product_class=d.product_class, firmware=d.software_version,
                                             serial=d.serial_number, tags=d.tags, device_id=d.device_id)
                          for a in audited)]
        if not targets:
            raise ServiceError(400, "no target", f"no registered device matches {selector.text!r} and is "
                                                 "selected by an audited assignment")
        name = "audit " + ", ".join(a.name for a in audited) if only else "audit"
        job = await self._engine.submit(Policy(name=name[:64], settings={}), selector, options, deadline=deadline,
                                        targets=targets, kind="audit", extra_options={"audit": {"assignments": only}})
        return await self._fleet.job_summary(job.id)


def _same_policy(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("settings", "extension_settings", "extensions")
    return all(a.get(k) == b.get(k) for k in keys)
