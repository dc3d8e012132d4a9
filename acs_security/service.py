"""The service layer: fleet operations as one Python API.

The CLI (through the management API), the REST API and the SOAP API are thin adapters
over this class, so a rule lives in one place. Methods return plain data (dicts and
lists ready for JSON) and raise :class:`ServiceError` with an HTTP-like status for what
the caller asked wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

__all__ = ["ServiceError", "FleetService", "device_json"]

MAX_PAGE = 1000


class ServiceError(Exception):
    """A request the service refuses; ``status`` maps to HTTP (400, 404, 409)."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def device_json(device: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in asdict(device).items()}


class FleetService:
    """Fleet operations over a DeferredStore (every method is a coroutine)."""

    def __init__(self, store: Any, *, secret_names: Sequence[str] = ()) -> None:
        self._store = store
        # Parameter names whose values are secrets (passwords): masked in every output.
        self._secret_suffixes = tuple(secret_names) or ("Password", "Passphrase", "Secret")

    async def list_devices(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        filters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(400, "invalid limit", f"limit must be 1-{MAX_PAGE}, got {limit}")
        if offset < 0:
            raise ServiceError(400, "invalid offset", f"offset must be >= 0, got {offset}")
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
        if any(name.endswith(suffix) for suffix in self._secret_suffixes):
            return "********" if value else ""
        return value
