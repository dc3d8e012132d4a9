"""The service layer of vendor configuration files: preview a phone's cfg.xml, take
backups, list, show and compare their versions, restore one (docs/files.md).

Like :mod:`acs_security.service`, one Python API under the CLI (through the REST API), the
REST API and the SOAP API: methods return plain data and raise
:class:`~acs_security.service.ServiceError`. What an operator sees of a file or a backup
never holds a password: secret elements are comments (previews), ``********`` (diffs), or
left out; only the file served to the phone holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from acs_security.service import MAX_PAGE, FleetService, ServiceError, _identity, _jsonable, parse_duration

__all__ = ["FileService"]

_BACKUP_FIELDS = {"select", "canary", "wave", "max_fault_rate", "deadline", "max_in_progress"}
_RESTORE_FIELDS = {"to", "deadline", "force", "dry_run"}


def _catalogue() -> Any:
    from acs_security.mapping import load_catalogue

    return load_catalogue()


class FileService:
    """File and backup operations over the store and the job engine of a FleetService."""

    def __init__(self, fleet: FleetService) -> None:
        self._fleet = fleet

    @property
    def _store(self) -> Any:
        return self._fleet._store

    async def _device(self, device_id: str) -> Any:
        device = await self._store.call("get_device", device_id)
        if device is None:
            raise ServiceError(404, "no such device", f"device {device_id!r} is not known")
        return device

    # -- preview ---------------------------------------------------------------------------

    async def render_device(self, device_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """The cfg.xml a push of ``request["policy"]`` would send this phone, for its model,
        firmware and known values (``method``: auto, spv, download; ``file_content``:
        policy, full; ``force_all``). Secrets appear as comments. Raises ServiceError."""
        from acs_security.files.render import render_device_file
        from acs_security.mapping.errors import MappingError
        from acs_security.policy.document import PolicyError, parse_policy
        from acs_security.policy.plan import METHODS, plan_device

        unknown = set(request) - {"policy", "policy_name", "method", "file_content", "force_all"}
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        method = str(request.get("method") or "download")
        content = str(request.get("file_content") or "policy")
        if method not in METHODS or content not in ("policy", "full"):
            raise ServiceError(400, "invalid option", f"method is one of {', '.join(METHODS)}; "
                                                      "file_content is policy or full")
        device = await self._device(device_id)
        data = self._fleet._policy_bytes(request.get("policy"))
        cat = _catalogue()
        try:
            policy = parse_policy(data, source=str(request.get("policy_name") or "policy"), catalogue=cat)
        except PolicyError as exc:
            raise ServiceError(400, "invalid policy", "; ".join(exc.errors)) from None
        params = await self._store.call("device_parameters", device_id)
        known = {name: value for name, (value, _t) in params.items()}
        force_all = bool(request.get("force_all", False))
        plan = plan_device(policy, product_class=device.product_class, software_version=device.software_version,
                           known=None if force_all else known, force_all=force_all, catalogue=cat, method=method)
        if plan.error is not None:
            raise ServiceError(400, "the phone cannot take this policy", plan.error)
        try:
            rendered = render_device_file(plan.download, product_class=device.product_class,
                                          software_version=device.software_version, known=known,
                                          full=content == "full", catalogue=cat)
        except MappingError as exc:
            raise ServiceError(400, "cannot write cfg.xml", str(exc)) from None
        return {
            "device_id": device_id, **_identity(device_id), "product_class": device.product_class,
            "software_version": device.software_version, "method": method, "file_content": content,
            "elements": list(rendered.elements), "secret_elements": sorted(rendered.secret_elements),
            "by_spv": [p.path for p in plan.params],
            "skipped": [{"setting": k, "reason": why} for k, why in list(plan.skipped) + list(rendered.skipped)],
            "unchanged": list(plan.unchanged), "size": rendered.size,
            "cfgxml": rendered.preview().decode("utf-8"),
        }

    # -- backups ---------------------------------------------------------------------------

    async def submit_backup(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A backup job: the selected phones upload their cfg.xml (``select`` and the wave
        options of a push). Raises ServiceError."""
        from acs_security.fleet.live import JobOptions
        from acs_security.fleet.selector import SelectorError, parse_selector
        from acs_security.fleet.waves import WaveOptions, parse_canary
        from acs_security.policy.document import Policy

        engine = self._fleet._need_engine()
        unknown = set(request) - _BACKUP_FIELDS
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        try:
            selector = parse_selector(str(request.get("select", "")))
            wave = request.get("wave")
            options = JobOptions(
                canary=parse_canary(str(request.get("canary", "0"))),
                wave_size=int(wave) if wave not in (None, "", 0) else None,
                max_fault_rate=float(request.get("max_fault_rate", 1.0)),
                max_in_progress=int(request.get("max_in_progress", 1000)))
            WaveOptions(options.canary, options.wave_size, options.max_fault_rate)
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
        job = await engine.submit(Policy(name="backup", settings={}, description="configuration backup"),
                                  selector, options, deadline=deadline, targets=targets, kind="backup")
        return await self._fleet.job_summary(job.id)

    @staticmethod
    def _backup_json(rec: Any) -> dict[str, Any]:
        report = rec.report or {}
        return {
            "device_id": rec.device_id, **_identity(rec.device_id), "version": rec.version,
            "sha256": rec.sha256, "size": rec.size, "created_at": _jsonable(rec.created_at),
            "confirmed_at": _jsonable(rec.confirmed_at), "uploads": rec.uploads, "job_id": rec.job_id,
            "elements": report.get("elements"),
            "problems": sum(len(report.get(k) or ()) for k in ("unknown", "invalid", "absent")),
        }

    async def list_backups(self, *, device_id: str | None = None, limit: int = 100,
                           offset: int = 0) -> dict[str, Any]:
        """Backup versions, newest first (of one device, or of all)."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise ServiceError(400, "invalid page", f"limit must be 1-{MAX_PAGE} and offset >= 0")
        if device_id is not None:
            await self._device(device_id)
        records = await self._store.call("list_backups", device_id=device_id, limit=limit, offset=offset)
        total = await self._store.call("count_backups", device_id=device_id)
        return {"total": total, "limit": limit, "offset": offset,
                "backups": [self._backup_json(r) for r in records]}

    async def _version(self, device_id: str, version: Any) -> Any:
        await self._device(device_id)
        number = _version_number(version)
        rec = await self._store.call("get_backup", device_id, number)
        if rec is None:
            what = f"version {number}" if number is not None else "any backup"
            raise ServiceError(404, "no such backup", f"device {device_id!r} has no {what}")
        return rec

    async def get_backup(self, device_id: str, version: Any = None) -> dict[str, Any]:
        """One version with its report and its content as an operator may see it."""
        from acs_security.files.backups import read_config
        from acs_security.files.render import DeviceFile
        from acs_security.mapping import CfgXmlError, render_cfgxml

        rec = await self._version(device_id, version)
        device = await self._device(device_id)
        cat = _catalogue()
        out = self._backup_json(rec)
        out["report"] = rec.report
        try:
            config = read_config(rec.content.encode("utf-8"), product_class=device.product_class,
                                 software_version=device.software_version, catalogue=cat)
        except CfgXmlError:  # pragma: no cover - unreadable uploads are refused before storing
            out["cfgxml"] = None
            return out
        values = dict(config.values)
        secret = frozenset(e for e in values if (f := cat.find(e)) is not None and f[0].secret)
        shown = DeviceFile(render_cfgxml(values, catalogue=cat), values, secret, (), cat)
        out["cfgxml"] = shown.preview().decode("utf-8")
        return out

    async def diff_backups(self, device_id: str, version: Any = None, against: Any = None) -> dict[str, Any]:
        """What changed from version ``against`` (default: the one before) to ``version``
        (default: the latest); secrets masked."""
        from acs_security.files.backups import diff_configs, read_config

        new = await self._version(device_id, version)
        old_number = _version_number(against) if against is not None else new.version - 1
        if old_number is None or old_number < 1:
            raise ServiceError(404, "no such backup", f"version {new.version} is the first one")
        old = await self._version(device_id, old_number)
        device = await self._device(device_id)
        cat = _catalogue()

        def values(rec: Any) -> dict[str, str]:
            return dict(read_config(rec.content.encode("utf-8"), product_class=device.product_class,
                                    software_version=device.software_version, catalogue=cat).values)

        changes = diff_configs(values(old), values(new), catalogue=cat)
        return {"device_id": device_id, **_identity(device_id), "from": old.version, "to": new.version,
                "changes": [c.to_json() for c in changes]}

    async def restore_backup(self, device_id: str, version: Any, request: Mapping[str, Any]) -> dict[str, Any]:
        """A push job that sends a backup version back with a cfg.xml Download (to the phone
        it came from, or the phones ``to`` selects: a replacement of the same model). Only
        the elements the data model accepted go back. Raises ServiceError."""
        from acs_security.files.backups import read_config
        from acs_security.mapping import render_cfgxml

        unknown = set(request) - _RESTORE_FIELDS
        if unknown:
            raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
        rec = await self._version(device_id, version)
        device = await self._device(device_id)
        cat = _catalogue()
        config = read_config(rec.content.encode("utf-8"), product_class=device.product_class,
                             software_version=device.software_version, catalogue=cat)
        if not config.values:
            raise ServiceError(400, "nothing to restore", f"version {rec.version} holds no setting to send back")
        text = render_cfgxml(dict(config.values), catalogue=cat).decode("utf-8")
        select = str(request.get("to") or f"serial={device.serial_number};product_class={device.product_class}")
        job_request: dict[str, Any] = {
            "policy": text, "policy_name": f"restore-{device.serial_number}-v{rec.version}", "select": select,
            "method": "download", "force_all": True, "max_fault_rate": 1.0,
            "deadline": request.get("deadline", "24h"), "dry_run": bool(request.get("dry_run", False))}
        if request.get("force"):
            job_request["force"] = request["force"]
        result = await self._fleet.submit_job(job_request)
        result["restored"] = {"device_id": device_id, "version": rec.version, "elements": len(config.values)}
        return result


def _version_number(version: Any) -> int | None:
    if version in (None, "", "latest"):
        return None
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise ServiceError(400, "invalid version", f"{version!r} is not a version number or 'latest'") from None
    if not 1 <= number <= 10**9:
        raise ServiceError(400, "invalid version", "a version is a positive number")
    return number
