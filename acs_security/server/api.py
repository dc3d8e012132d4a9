"""The management API (JSON over HTTP, default port 7557): a thin adapter over FleetService.

Routes are a table of (method, path pattern, handler); each handler is a coroutine that
takes the request and the path's named groups and returns JSON-able data. Errors are
RFC 9457 problem details, the same shape everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from acs_security.service import FleetService, ServiceError

__all__ = ["ApiResource", "Route"]

log = Logger(namespace="acs_security.api")
Handler = Callable[[IRequest, dict[str, str]], Awaitable[Any]]


class Route:
    __slots__ = ("method", "pattern", "handler", "status")

    def __init__(self, method: str, pattern: str, handler: Handler, status: int = 200) -> None:
        self.method = method
        self.pattern = re.compile("^" + pattern + "$")
        self.handler = handler
        self.status = status


def query_int(request: IRequest, name: str, default: int) -> int:
    raw = request.args.get(name.encode())
    if not raw:
        return default
    try:
        return int(raw[-1])
    except ValueError:
        raise ServiceError(400, "invalid query parameter",
                           f"{name} must be an integer, got {raw[-1][:40]!r}") from None


def query_str(request: IRequest, name: str) -> str | None:
    raw = request.args.get(name.encode())
    return raw[-1].decode("utf-8", "replace") if raw else None


def read_json(request: IRequest, *, limit: int = 1024 * 1024) -> Any:
    raw = request.content.read(limit + 1)
    if len(raw) > limit:
        raise ServiceError(413, "body too large", f"the JSON body exceeds {limit} bytes")
    try:
        return json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceError(400, "malformed JSON", str(exc)) from None


class ApiResource(Resource):
    """Dispatches ``/api/v1/...`` and ``/healthz`` by the route table."""

    isLeaf = True

    def __init__(self, service: FleetService, *, health: Callable[[], Awaitable[Any]] | None = None) -> None:
        super().__init__()
        self.service = service
        self._health = health
        self.routes: list[Route] = [
            Route("GET", r"/healthz", self._healthz),
            Route("GET", r"/api/v1/devices", self._list_devices),
            Route("GET", r"/api/v1/devices/(?P<device_id>[^/]+)", self._show_device),
            Route("POST", r"/api/v1/jobs", self._submit_job, status=201),
            Route("GET", r"/api/v1/jobs", self._list_jobs),
            Route("GET", r"/api/v1/jobs/(?P<job_id>[0-9]+)", self._show_job),
            Route("GET", r"/api/v1/jobs/(?P<job_id>[0-9]+)/devices", self._job_devices),
            Route("POST", r"/api/v1/jobs/(?P<job_id>[0-9]+)/cancel", self._cancel_job),
            Route("POST", r"/api/v1/jobs/(?P<job_id>[0-9]+)/resume", self._resume_job),
            Route("GET", r"/api/v1/jobs/(?P<job_id>[0-9]+)/report", self._job_report),
        ]

    def add_routes(self, routes: list[Route]) -> None:
        self.routes.extend(routes)

    def render(self, request: IRequest) -> Any:
        path = request.path.decode("latin-1")
        method = request.method.decode("latin-1").upper()
        allowed = []
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            d = Deferred.fromCoroutine(self._run(route, request, params))
            d.addErrback(self._crashed, request)
            return server.NOT_DONE_YET
        if allowed:
            request.setHeader(b"Allow", ", ".join(sorted(set(allowed))).encode())
            return self._problem(request, ServiceError(405, "method not allowed",
                                                       f"{method} is not allowed on {path}"))
        return self._problem(request, ServiceError(404, "not found", f"no route for {path}"))

    async def _run(self, route: Route, request: IRequest, params: dict[str, str]) -> None:
        try:
            result = await route.handler(request, params)
        except ServiceError as exc:
            if not request.finished:
                request.write(self._problem(request, exc))
                request.finish()
            return
        if request.finished or getattr(request, "_disconnected", False):
            return
        status = getattr(request, "acs_status", route.status)
        if isinstance(result, RawBody):
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", result.content_type.encode())
            request.write(result.body)
        else:
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", b"application/json")
            request.write(json.dumps(result, indent=None, separators=(",", ":")).encode() + b"\n")
        request.finish()

    def _problem(self, request: IRequest, exc: ServiceError) -> bytes:
        request.setResponseCode(exc.status)
        request.setHeader(b"Content-Type", b"application/problem+json")
        body = {"type": "about:blank", "title": exc.title, "status": exc.status}
        if exc.detail:
            body["detail"] = exc.detail
        if getattr(exc, "findings", None) is not None:
            body["findings"] = exc.findings  # guardrail findings (secrets already masked)
        return json.dumps(body).encode() + b"\n"

    def _crashed(self, failure: Failure, request: IRequest) -> None:
        log.failure("API request failed", failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(self._problem(request, ServiceError(500, "internal error")))
            request.finish()

    # -- handlers -----------------------------------------------------------------------

    async def _healthz(self, request: IRequest, params: dict[str, str]) -> Any:
        if self._health is not None:
            await self._health()
        return {"status": "ok"}

    async def _list_devices(self, request: IRequest, params: dict[str, str]) -> Any:
        filters: dict[str, Any] = {}
        for name in ("product_class", "software_version", "tag"):
            value = query_str(request, name)
            if value is not None:
                filters[name] = value
        serials = query_str(request, "serial")
        if serials:
            filters["serial_numbers"] = [s for s in serials.split(",") if s]
        return await self.service.list_devices(
            limit=query_int(request, "limit", 100),
            offset=query_int(request, "offset", 0),
            filters=filters,
        )

    async def _show_device(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.get_device(params["device_id"])

    async def _submit_job(self, request: IRequest, params: dict[str, str]) -> Any:
        body = read_json(request)
        if not isinstance(body, dict):
            raise ServiceError(400, "invalid body", "the body must be a JSON object")
        result = await self.service.submit_job(body)
        if result.get("dry_run"):
            request.acs_status = 200  # a plan, nothing created
        return result

    async def _list_jobs(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.list_jobs(limit=query_int(request, "limit", 50),
                                            offset=query_int(request, "offset", 0),
                                            state=query_str(request, "state"))

    async def _show_job(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.job_summary(int(params["job_id"]))

    async def _job_devices(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.job_devices(int(params["job_id"]), state=query_str(request, "state"),
                                              limit=query_int(request, "limit", 100),
                                              offset=query_int(request, "offset", 0))

    async def _cancel_job(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.cancel_job(int(params["job_id"]))

    async def _resume_job(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.service.resume_job(int(params["job_id"]))

    async def _job_report(self, request: IRequest, params: dict[str, str]) -> Any:
        fmt = query_str(request, "format") or "json"
        report = await self.service.job_report(int(params["job_id"]), fmt=fmt)
        if isinstance(report, bytes):
            return RawBody(report, "text/csv; charset=utf-8")
        return report


class RawBody:
    """A non-JSON answer (CSV reports, cfg.xml)."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
