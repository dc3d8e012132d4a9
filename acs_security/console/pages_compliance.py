"""Console pages of compliance (desired state): every assignment with its devices'
states, and one assignment by model and firmware as charts and tables linking to the devices,
with enable and disable for operators. Reads and actions are the desired-state service's
(acs_security/desired/service.py), as the API's ``/api/v1/assignments``."""

from __future__ import annotations

from typing import Any

from acs_security.console.charts import stacked_share
from acs_security.console.resource import ConsoleRoute, route
from acs_security.console.responses import ConsoleRequest, Page, Redirect
from acs_security.desired.reports import COMPLIANCE_STATES
from acs_security.service import ServiceError

__all__ = ["CompliancePages"]

_ONE = r"/compliance/(?P<ref>[0-9]{1,9})"
_API_ONE = "/api/v1/assignments/1"
PAGE = 100


class CompliancePages:
    def __init__(self, desired: Any) -> None:
        self.desired = desired

    def routes(self) -> list[ConsoleRoute]:
        return [
            route("GET", r"/compliance", self.overview, ("GET", "/api/v1/assignments")),
            route("GET", _ONE, self.assignment, ("GET", _API_ONE + "/compliance")),
            route("POST", _ONE + r"/enable", self.enable, ("POST", _API_ONE + "/enable")),
            route("POST", _ONE + r"/disable", self.disable, ("POST", _API_ONE + "/disable")),
        ]

    async def overview(self, req: ConsoleRequest) -> Page:
        listing = await self.desired.list_assignments()
        rows = []
        totals: dict[str, int] = dict.fromkeys(COMPLIANCE_STATES, 0)
        for a in listing["assignments"]:
            report = await self.desired.compliance(a["id"])
            for s in COMPLIANCE_STATES:
                totals[s] += int(report.get(s, 0)) if a["enabled"] else 0
            rows.append({**a, "report": report, "bar": stacked_share(report, COMPLIANCE_STATES)})
        return Page("compliance.html", {"assignments": rows, "states": COMPLIANCE_STATES, "totals": totals,
                                        "bar": stacked_share(totals, COMPLIANCE_STATES), "nav": "compliance"})

    async def assignment(self, req: ConsoleRequest) -> Page:
        ref = req.params["ref"]
        state = req.arg("state") or None
        if state is not None and state not in COMPLIANCE_STATES:
            raise ServiceError(400, "invalid state", f"state must be one of {', '.join(COMPLIANCE_STATES)}")
        offset = req.int_arg("offset", 0)
        info = await self.desired.get_assignment(ref)
        report = await self.desired.compliance(ref)
        for row in report["by_model"] + report["by_firmware"]:
            row["bar"] = stacked_share(row, COMPLIANCE_STATES)
        devices = await self.desired.assignment_devices(ref, state=state, limit=PAGE, offset=offset)
        return Page("assignment.html", {
            "a": info, "report": report, "bar": stacked_share(report, COMPLIANCE_STATES),
            "states": COMPLIANCE_STATES, "devices": devices, "state": state or "", "nav": "compliance"})

    async def enable(self, req: ConsoleRequest) -> Redirect:
        await self.desired.set_enabled(req.params["ref"], True)
        return Redirect(f"/compliance/{req.params['ref']}")

    async def disable(self, req: ConsoleRequest) -> Redirect:
        await self.desired.set_enabled(req.params["ref"], False)
        return Redirect(f"/compliance/{req.params['ref']}")
