"""Console pages of the fleet: the device list (filtered by a selector, the CLI's syntax) and
a device's page (settings known and desired, jobs, faults, assignments, drift)."""

from __future__ import annotations

from typing import Any

from acs_security.console.resource import ConsoleRoute, route
from acs_security.console.responses import ConsoleRequest, Page
from acs_security.overview import FleetOverview
from acs_security.service import ServiceError

__all__ = ["FleetPages"]

PAGE = 100


class FleetPages:
    def __init__(self, overview: FleetOverview) -> None:
        self.overview = overview

    def routes(self) -> list[ConsoleRoute]:
        return [
            route("GET", r"/fleet", self.fleet, ("GET", "/api/v1/devices")),
            route("GET", r"/devices/(?P<device_id>[^/]{1,300})", self.device, ("GET", "/api/v1/devices/x")),
        ]

    async def fleet(self, req: ConsoleRequest) -> Page:
        select = req.arg("select", "all").strip() or "all"
        offset = req.int_arg("offset", 0)
        error = None
        try:
            page = await self.overview.devices(select, limit=PAGE, offset=offset)
        except ServiceError as exc:
            if exc.title != "invalid selector":
                raise
            # The selector is shown back with the reason, and the page stays usable.
            error = exc.detail
            page = {"selector": select, "total": 0, "limit": PAGE, "offset": 0, "devices": [], "models": []}
        compliance = await self._compliance(page["devices"])
        return Page("fleet.html", {"page": page, "select": select, "selector_error": error,
                                   "compliance": compliance, "nav": "fleet"},
                    status=400 if error else 200)

    async def _compliance(self, devices: list[dict[str, Any]]) -> dict[str, str]:
        """{device id: compliance word} when desired state runs here."""
        desired = self.overview.desired
        if desired is None or not devices:
            return {}
        states = await desired.device_states([d["device_id"] for d in devices])
        return {k: v for k, v in states.items()}

    async def device(self, req: ConsoleRequest) -> Page:
        device = await self.overview.device(req.params["device_id"])
        extra: dict[str, Any] = {"assignments": device["assignments"], "drift": None}
        desired = self.overview.desired
        if desired is not None:
            extra["drift"] = (await desired.device_drift(device["device_id"], limit=50))["events"]
        return Page("device.html", {"device": device, "nav": "fleet", **extra})
