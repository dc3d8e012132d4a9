"""REST routes of desired state (assignments, audits, compliance, drift): a thin adapter
over :class:`~acs_security.desired.service.DesiredService`, added to the management API's
route table (api.py) by the server. docs/northbound.md and openapi.py describe them.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from acs_security.server.api import ApiResource, RawBody, Route, query_int, query_str, read_json
from acs_security.service import ServiceError

__all__ = ["desired_routes"]

_REF = r"(?P<ref>[^/]+)"
_ASSIGNMENT = r"/api/v1/assignments/" + _REF


def desired_routes(api: ApiResource) -> list[Route]:
    """The routes, for ``api.add_routes``."""

    def svc() -> Any:
        desired = getattr(api.service, "desired", None)
        if desired is None:
            raise ServiceError(404, "not found", "desired state is not served here")
        return desired

    def body_object(request: IRequest) -> dict[str, Any]:
        body = read_json(request)
        if not isinstance(body, dict):
            raise ServiceError(400, "invalid body", "the body must be a JSON object")
        return body

    async def assign(request: IRequest, params: dict[str, str]) -> Any:
        result = await svc().assign(body_object(request))
        if result.get("dry_run") or not result.get("created"):
            request.acs_status = 200  # type: ignore[attr-defined]  # a plan, or a new revision
        return result

    async def list_assignments(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().list_assignments()

    async def show(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().get_assignment(params["ref"])

    async def delete(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().delete_assignment(params["ref"])

    async def enable(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().set_enabled(params["ref"], True)

    async def disable(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().set_enabled(params["ref"], False)

    async def compliance(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().compliance(params["ref"])

    async def devices(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().assignment_devices(params["ref"], state=query_str(request, "state"),
                                              limit=query_int(request, "limit", 100),
                                              offset=query_int(request, "offset", 0))

    async def drift(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().device_drift(params["device_id"], limit=query_int(request, "limit", 100),
                                        offset=query_int(request, "offset", 0))

    async def desired_view(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().device_desired(params["device_id"])

    async def audit(request: IRequest, params: dict[str, str]) -> Any:
        return await svc().submit_audit(body_object(request))

    async def audit_report(request: IRequest, params: dict[str, str]) -> Any:
        report = await svc().audit_report(int(params["job_id"]), fmt=query_str(request, "format") or "json")
        if isinstance(report, bytes):
            return RawBody(report, "text/csv; charset=utf-8")
        return report

    device = r"/api/v1/devices/(?P<device_id>[^/]+)"
    return [
        Route("POST", r"/api/v1/assignments", assign, status=201, role="operator"),
        Route("GET", r"/api/v1/assignments", list_assignments),
        Route("GET", _ASSIGNMENT, show),
        Route("DELETE", _ASSIGNMENT, delete, role="operator"),
        Route("POST", _ASSIGNMENT + "/enable", enable, role="operator"),
        Route("POST", _ASSIGNMENT + "/disable", disable, role="operator"),
        Route("GET", _ASSIGNMENT + "/compliance", compliance),
        Route("GET", _ASSIGNMENT + "/devices", devices),
        Route("GET", device + "/drift", drift),
        Route("GET", device + "/desired", desired_view),
        Route("POST", r"/api/v1/audits", audit, status=201, role="operator"),
        Route("GET", r"/api/v1/audits/(?P<job_id>[0-9]{1,9})/report", audit_report),
    ]
