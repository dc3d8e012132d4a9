"""The management API (JSON over HTTP, default port 7557): a thin adapter over FleetService.

Routes are a table of (method, path pattern, handler, role); each handler is a coroutine
that takes the request and the path's named groups and returns JSON-able data. Every route
but ``/healthz`` and ``/readyz`` needs a bearer token whose role allows it (auth.py):
401 without one, 403 for a role that may not. Errors are RFC 9457 problem details, the
same shape everywhere. docs/northbound.md and openapi.py describe the routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from acs_security.display import printable
from acs_security.file_service import FileService
from acs_security.server.auth import Forbidden, TokenAdmin, TokenAuthenticator, Unauthorized, role_allows
from acs_security.server.jsonbody import JsonBodyError, parse_json_body
from acs_security.server.refusals import RefusalLog, api_refusal_key
from acs_security.service import FleetService, ServiceError
from acs_security.store.errors import InvalidArgument, StoreUnavailable

__all__ = ["ApiResource", "Route", "RawBody", "is_api_path"]

log = Logger(namespace="acs_security.api")
Handler = Callable[[IRequest, dict[str, str]], Awaitable[Any]]


class Route:
    """One route; ``role`` is the weakest role allowed (None: no authentication)."""

    __slots__ = ("method", "pattern", "handler", "status", "role")

    def __init__(self, method: str, pattern: str, handler: Handler, status: int = 200,
                 role: str | None = "viewer") -> None:
        self.method = method
        self.pattern = re.compile("^" + pattern + "$")
        self.handler = handler
        self.status = status
        self.role = role


def query_int(request: IRequest, name: str, default: int) -> int:
    raw = request.args.get(name.encode())
    if not raw:
        return default
    try:
        if len(raw[-1]) > 18:
            raise ValueError
        return int(raw[-1])
    except ValueError:
        raise ServiceError(400, "invalid query parameter",
                           f"{name} must be an integer, got {raw[-1][:40]!r}") from None


def query_str(request: IRequest, name: str) -> str | None:
    raw = request.args.get(name.encode())
    return raw[-1].decode("utf-8", "replace") if raw else None


def read_json(request: IRequest, *, limit: int = 1024 * 1024) -> Any:
    """The request's JSON body (None when empty), checked by jsonbody.parse_json_body before
    and while parsing. Raises ServiceError: 415 for a Content-Type other than JSON, 413 over
    ``limit`` bytes, 400 for a body that is not strict JSON (too deep, duplicate keys ...)."""
    content_type = request.getHeader(b"content-type")
    if content_type is not None:
        media, _, params = content_type.decode("latin-1").partition(";")
        media = media.strip().lower()
        charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", params, re.IGNORECASE)
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise ServiceError(415, "unsupported media type",
                               f"the body must be application/json, not {printable(media[:60])!r}")
        if charset is not None and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise ServiceError(415, "unsupported media type",
                               f"JSON is UTF-8 (RFC 8259 section 8.1), not {printable(charset.group(1)[:40])!r}")
    raw = request.content.read(limit + 1)
    if len(raw) > limit:
        raise ServiceError(413, "body too large", f"the JSON body exceeds {limit} bytes")
    try:
        return parse_json_body(raw)
    except JsonBodyError as exc:
        raise ServiceError(400, exc.title, exc.detail) from None


class _FileRoutes:
    """The file and backup handlers of ApiResource (a mixin: its ``files`` service)."""

    files: FileService

    async def _render_device(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request), ("policy", "policy_name", "method", "file_content", "force_all"))
        return await self.files.render_device(params["device_id"], body)

    async def _submit_backup(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request), ("select", "canary", "wave", "max_fault_rate", "deadline",
                                            "max_in_progress"))
        return await self.files.submit_backup(body)

    async def _list_backups(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.files.list_backups(device_id=query_str(request, "device"),
                                             limit=query_int(request, "limit", 100),
                                             offset=query_int(request, "offset", 0))

    async def _device_backups(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.files.list_backups(device_id=params["device_id"], limit=query_int(request, "limit", 100),
                                             offset=query_int(request, "offset", 0))

    async def _show_backup(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.files.get_backup(params["device_id"], params["version"])

    async def _diff_backup(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self.files.diff_backups(params["device_id"], params["version"], query_str(request, "against"))

    async def _restore_backup(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request) or {}, ("to", "deadline", "force", "dry_run"))
        result = await self.files.restore_backup(params["device_id"], params["version"], body)
        if result.get("dry_run"):
            request.acs_status = 200  # type: ignore[attr-defined]  # a plan, nothing created
        return result


class ApiResource(_FileRoutes, Resource):
    """Dispatches ``/api/v1/...``, ``/metrics``, ``/healthz`` and ``/readyz`` by the route table.

    ``authenticator`` checks tokens (required: there is no unauthenticated mode);
    ``soap`` answers ``/soap`` (soap.py);
    ``tokens`` enables ``/api/v1/tokens`` (admin); ``metrics`` enables ``/metrics``
    (viewer) and counts requests; ``openapi`` returns the OpenAPI document; ``ready`` is
    the readiness check (raises when not ready); ``refusal_log`` rate-limits the lines of
    401/403 answers (refusals.py; None: a line for each)."""

    isLeaf = True

    def __init__(self, service: FleetService, *, authenticator: TokenAuthenticator,
                 health: Callable[[], Awaitable[Any]] | None = None,
                 ready: Callable[[], Awaitable[Any]] | None = None,
                 tokens: TokenAdmin | None = None, metrics: Any = None,
                 openapi: Callable[[], dict[str, Any]] | None = None,
                 soap: IResource | None = None, ops_only: bool = False,
                 info: dict[str, Any] | None = None, refusal_log: RefusalLog | None = None,
                 files: FileService | None = None, console: IResource | None = None) -> None:
        super().__init__()
        self.service = service
        self.files = files or FileService(service)
        self.authenticator = authenticator
        self._health = health
        self._ready = ready
        self._tokens = tokens
        self._metrics = metrics
        self._openapi = openapi
        self._soap = soap
        self._info = dict(info or {})
        self._refusals = refusal_log
        # The web console (acs_security/console) answers every other path, "/" first.
        self.console = console
        job = r"/api/v1/jobs/(?P<job_id>[0-9]{1,9})"
        device = r"/api/v1/devices/(?P<device_id>[^/]+)"
        backup = device + r"/backups/(?P<version>[0-9]{1,9}|latest)"
        self.routes: list[Route] = [
            Route("GET", r"/healthz", self._healthz, role=None),
            Route("GET", r"/readyz", self._readyz, role=None),
            Route("GET", r"/metrics", self._metrics_text),
            Route("GET", r"/api/v1/openapi\.json", self._openapi_doc),
            Route("GET", r"/api/v1/devices", self._list_devices),
            Route("GET", r"/api/v1/devices/(?P<device_id>[^/]+)/cfgxml", self._device_cfgxml),
            Route("GET", r"/api/v1/devices/(?P<device_id>[^/]+)", self._show_device),
            Route("POST", r"/api/v1/jobs", self._submit_job, status=201, role="operator"),
            Route("GET", r"/api/v1/jobs", self._list_jobs),
            Route("GET", job, self._show_job),
            Route("GET", job + "/devices", self._job_devices),
            Route("POST", job + "/cancel", self._cancel_job, role="operator"),
            Route("POST", job + "/resume", self._resume_job, role="operator"),
            Route("GET", job + "/report", self._job_report),
            Route("POST", r"/api/v1/policies/lint", self._lint_policy),
            Route("POST", r"/api/v1/policies/cfgxml", self._policy_cfgxml),
            Route("GET", r"/api/v1/catalogue", self._catalogue),
            Route("GET", r"/api/v1/tokens", self._list_tokens, role="admin"),
            Route("POST", r"/api/v1/tokens", self._create_token, status=201, role="admin"),
            Route("DELETE", r"/api/v1/tokens/(?P<name>[^/]+)", self._revoke_token, role="admin"),
            # Vendor configuration files and backups (file_service.py, docs/files.md).
            Route("POST", device + "/cfgxml/render", self._render_device),
            Route("POST", r"/api/v1/backups", self._submit_backup, status=201, role="operator"),
            Route("GET", r"/api/v1/backups", self._list_backups),
            Route("GET", device + "/backups", self._device_backups),
            Route("GET", backup, self._show_backup),
            Route("GET", backup + "/diff", self._diff_backup),
            Route("POST", backup + "/restore", self._restore_backup, status=201, role="operator"),
        ]
        if ops_only:
            # A node that runs only the CWMP endpoint or the job runner (serve --role)
            # answers what orchestration needs: health, readiness and metrics.
            self.routes = self.routes[:3]
            self._soap = None
            self.console = None

    def add_routes(self, routes: list[Route]) -> None:
        self.routes.extend(routes)

    def role_for(self, method: str, path: str) -> str | None:
        """The weakest role the route for ``method path`` needs (None: no authentication):
        the web console asks this so that its roles are the API's. Raises KeyError when no
        route matches."""
        for route in self.routes:
            if route.method == method and route.pattern.match(path):
                return route.role
        raise KeyError(f"no API route for {method} {path}")

    def render(self, iface_request: IRequest) -> Any:
        # twisted.web hands resources a server.Request; IRequest lacks code, finished and
        # notifyFinish, which the API reads.
        request = cast(server.Request, iface_request)
        path = request.path.decode("latin-1")
        if self.console is not None and not is_api_path(path):
            return self.console.render(request)
        if self._metrics is not None:
            request.notifyFinish().addBoth(lambda _: self._count(request))
        if path == "/soap" and self._soap is not None:
            # The SOAP face authenticates in its WSGI wrapper (soap.py) with the same tokens.
            return self._soap.render(request)
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

    async def _run(self, route: Route, request: server.Request, params: dict[str, str]) -> None:
        try:
            if route.role is not None:
                principal = await self.authenticator.authenticate(request.getHeader(b"authorization"))
                # The API's own note on Twisted's request, which declares no such attribute.
                request.acs_principal = principal  # type: ignore[attr-defined]
                if not role_allows(principal.role, route.role):
                    raise Forbidden(principal.role, route.role)
            result = await route.handler(request, params)
        except InvalidArgument as exc:
            # The store refused a value (e.g. a NUL in a filter): the caller's fault, not a 500.
            problem = ServiceError(400, "invalid argument", str(exc))
            if not request.finished:
                request.write(self._problem(request, problem))
                request.finish()
            return
        except ServiceError as exc:
            if isinstance(exc, (Unauthorized, Forbidden)):
                self._refused(request, exc)
            if not request.finished:
                request.write(self._problem(request, exc))
                request.finish()
            return
        except StoreUnavailable:
            # A database outage (docs/operations.md): logged once by the store's watch, not
            # once per request; the detail names no database.
            if not request.finished:
                request.setHeader(b"Retry-After", b"10")
                request.write(self._problem(request, ServiceError(
                    503, "store unavailable", "the database cannot be used now; retry later")))
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

    def _refused(self, request: server.Request, exc: ServiceError) -> None:
        """Count a 401/403 and log one line for it, within the shared rate limit (refusals.py):
        without it, every request of a client with a wrong token would make a warning."""
        reason = "unauthorized" if isinstance(exc, Unauthorized) else "forbidden"
        if self._metrics is not None:
            self._metrics.observe_refusal("rest", reason)
        remote = str(getattr(request.getClientAddress(), "host", "") or "") or None
        principal = getattr(request, "acs_principal", None)
        what = f"{(request.method or b'').decode('latin-1')} {printable((request.path or b'').decode('latin-1')[:100])}"
        who = f"token {principal.name}: " if principal is not None else ""
        # No credentials at all is what a client that has not been set up sends: info, as
        # the CWMP endpoint logs a phone's first, unauthenticated Inform.
        quiet = isinstance(exc, Unauthorized) and not request.getHeader(b"authorization")

        def line() -> None:
            (log.info if quiet else log.warn)("API {what} from {remote} refused ({status}): {who}{reason}",
                                              what=what, remote=remote, status=exc.status, who=who,
                                              reason=exc.detail)

        if self._refusals is None:
            line()
        else:
            self._refusals.refused(remote, api_refusal_key(exc), line)

    def _count(self, request: server.Request) -> None:
        if self._metrics is not None:
            self._metrics.observe_request("rest", request.code)

    def _problem(self, request: IRequest, exc: ServiceError) -> bytes:
        request.setResponseCode(exc.status)
        if isinstance(exc, Unauthorized):
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="acs-security"')
        request.setHeader(b"Content-Type", b"application/problem+json")
        body = {"type": "about:blank", "title": exc.title, "status": exc.status}
        if exc.detail:
            body["detail"] = exc.detail
        if getattr(exc, "findings", None) is not None:
            body["findings"] = exc.findings  # guardrail findings (secrets already masked)
        return json.dumps(body).encode() + b"\n"

    def _crashed(self, failure: Failure, request: server.Request) -> None:
        log.failure("API request failed", failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(self._problem(request, ServiceError(500, "internal error")))
            request.finish()

    # -- handlers -----------------------------------------------------------------------

    async def _healthz(self, request: IRequest, params: dict[str, str]) -> Any:
        if self._health is not None:
            await self._health()
        return {"status": "ok", **self._info}

    async def _readyz(self, request: IRequest, params: dict[str, str]) -> Any:
        check = self._ready or self._health
        if check is not None:
            try:
                await check()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is logged
                log.warn("not ready: {error}", error=type(exc).__name__)
                raise ServiceError(503, "not ready", "the store is not reachable") from None
        return {"status": "ready", **self._info}

    async def _metrics_text(self, request: IRequest, params: dict[str, str]) -> Any:
        if self._metrics is None:
            raise ServiceError(404, "not found", "metrics are not enabled")
        from acs_security.server.metrics import CONTENT_TYPE_LATEST

        return RawBody(self._metrics.render(), CONTENT_TYPE_LATEST)

    async def _openapi_doc(self, request: IRequest, params: dict[str, str]) -> Any:
        if self._openapi is None:
            from acs_security.server.openapi import openapi_document

            return openapi_document()
        return self._openapi()

    async def _device_cfgxml(self, request: IRequest, params: dict[str, str]) -> Any:
        return RawBody(await self.service.device_cfgxml(params["device_id"]), "application/xml; charset=utf-8")

    async def _lint_policy(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request), ("policy", "policy_name"))
        return self.service.lint_policy(body.get("policy"), name=str(body.get("policy_name") or "policy"))

    async def _policy_cfgxml(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request), ("policy", "policy_name", "extensions"))
        data = self.service.policy_cfgxml(body.get("policy"), name=str(body.get("policy_name") or "policy"),
                                          extensions=body.get("extensions", 1))
        return RawBody(data, "application/xml; charset=utf-8")

    async def _catalogue(self, request: IRequest, params: dict[str, str]) -> Any:
        return self.service.catalogue(limit=query_int(request, "limit", 100),
                                      offset=query_int(request, "offset", 0), query=query_str(request, "q"))

    def _need_tokens(self) -> TokenAdmin:
        if self._tokens is None:
            raise ServiceError(404, "not found", "token management is not enabled here")
        return self._tokens

    async def _list_tokens(self, request: IRequest, params: dict[str, str]) -> Any:
        return {"tokens": await self._need_tokens().list()}

    async def _create_token(self, request: IRequest, params: dict[str, str]) -> Any:
        body = _object(read_json(request), ("name", "role"))
        return await self._need_tokens().create(body.get("name"), body.get("role"))

    async def _revoke_token(self, request: IRequest, params: dict[str, str]) -> Any:
        return await self._need_tokens().revoke(params["name"])

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
            request.acs_status = 200  # type: ignore[attr-defined]  # a plan, nothing created; read back by _run
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


def is_api_path(path: str) -> bool:
    """Whether a path is the API's (REST, SOAP, metrics, health), not the web console's."""
    return path.startswith("/api/") or path in ("/api", "/soap", "/metrics", "/healthz", "/readyz")


def _object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON body as an object with only ``allowed`` keys. Raises ServiceError(400)."""
    if not isinstance(body, dict):
        raise ServiceError(400, "invalid body", "the body must be a JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise ServiceError(400, "unknown field", f"unknown field(s) {sorted(unknown)}")
    return body


class RawBody:
    """A non-JSON answer (CSV reports, cfg.xml)."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
