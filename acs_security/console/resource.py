"""The web console's Twisted resource: routes, sign-in, sessions, CSRF, roles, responses.

Served by the management API listener at ``/`` (server/api.py hands it every path that is not
``/api/``, ``/soap``, ``/metrics``, ``/healthz`` or ``/readyz``). Each route names the API
route whose role it needs (``api=("POST", "/api/v1/jobs")``): the console asks the API's own
route table (``role_for``), so a role means the same on both faces, and every action goes
through the same service layer. Every answer carries the security headers of security.py;
every POST needs the session's CSRF token and a same-origin request.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from jinja2 import Environment
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from acs_security.console import security
from acs_security.console.render import make_environment
from acs_security.console.responses import ConsoleRequest, Download, FormError, Page, Redirect
from acs_security.console.sessions import ConsoleSessions
from acs_security.display import printable
from acs_security.server.auth import Unauthorized, role_allows
from acs_security.service import ServiceError
from acs_security.store.errors import InvalidArgument, StoreUnavailable

__all__ = ["ConsoleResource", "ConsoleRoute", "ACTIONS"]

log = Logger(namespace="acs_security.console")
Handler = Callable[[ConsoleRequest], Awaitable[Page | Redirect | Download]]
_STATIC = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png"}
#: Largest console form (the policy editor's document is bounded by the service, 256 KiB).
MAX_FORM_BYTES = 512 * 1024
#: What pages ask about the user's rights, each by the API route it uses.
ACTIONS: dict[str, tuple[str, str]] = {
    "push": ("POST", "/api/v1/jobs"),
    "cancel": ("POST", "/api/v1/jobs/1/cancel"),
    "resume": ("POST", "/api/v1/jobs/1/resume"),
    "lint": ("POST", "/api/v1/policies/lint"),
    "tokens": ("GET", "/api/v1/tokens"),
}


@dataclass(frozen=True)
class ConsoleRoute:
    """``api``: the API route whose role this needs; None for public routes (sign-in, files).
    ``fragment``: part of a page fetched by the console's script (answers without layout,
    and 401 instead of a redirect when the session ended)."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    api: tuple[str, str] | None
    fragment: bool = False


def route(method: str, pattern: str, handler: Handler, api: tuple[str, str] | None, *,
          fragment: bool = False) -> ConsoleRoute:
    return ConsoleRoute(method, re.compile("^" + pattern + "$"), handler, api, fragment)


class ConsoleResource(Resource):
    """The console. ``sessions``: sign-in and session checks; ``role_for(method, path)``: the
    API's role for a route (KeyError for none); ``pages``: objects with ``routes()`` giving
    ConsoleRoutes; ``is_secure(request)``: whether the browser talks TLS to us (directly or
    through a trusted proxy), which makes cookies Secure; ``refusal_log``/``metrics``: as the
    API's."""

    isLeaf = True

    def __init__(self, *, sessions: ConsoleSessions, role_for: Callable[[str, str], str | None],
                 pages: Iterable[Any], clock: Any, is_secure: Callable[[Any], bool] | None = None,
                 refusal_log: Any = None, metrics: Any = None, environment: Environment | None = None,
                 banner: str = "") -> None:
        super().__init__()
        self.sessions = sessions
        self._role_for = role_for
        self._clock = clock
        self._is_secure = is_secure or (lambda request: bool(request.isSecure()))
        self._refusals = refusal_log
        self._metrics = metrics
        self.env = environment or make_environment()
        self.banner = banner
        self._files = {p.name: p.read_bytes() for p in _STATIC.iterdir() if p.suffix in _STATIC_TYPES}
        self.routes: list[ConsoleRoute] = [
            route("GET", r"/static/(?P<name>[A-Za-z0-9_.-]{1,64})", self._static, None),
            route("GET", r"/signin", self._signin_form, None),
            route("POST", r"/signin", self._signin, None),
            route("POST", r"/signout", self._signout, ("GET", "/api/v1/jobs")),
        ]
        for page in pages:
            self.routes.extend(page.routes())
        self.compliance_served = any(r.pattern.pattern == "^/compliance$" for r in self.routes)

    def needs(self, api: tuple[str, str]) -> str:
        """The role an API route needs. Raises KeyError for a route the API lacks (a console
        route must name a real one: tests check every route)."""
        role = self._role_for(*api)
        if role is None:
            raise KeyError(f"{api[0]} {api[1]} needs no role on the API")
        return role

    # -- dispatch ---------------------------------------------------------------------------

    def render(self, iface_request: IRequest) -> Any:
        request = cast(server.Request, iface_request)
        if self._metrics is not None:
            request.notifyFinish().addBoth(lambda _: self._metrics.observe_request("console", request.code))
        for name, value in security.SECURITY_HEADERS:
            request.setHeader(name.encode(), value.encode())
        path = request.path.decode("latin-1")
        if path == "/":
            self._finish(request, Redirect("/fleet"))
            return server.NOT_DONE_YET
        method = request.method.decode("latin-1").upper()
        method = "GET" if method == "HEAD" else method
        allowed = []
        for r in self.routes:
            match = r.pattern.match(path)
            if match is None:
                continue
            if r.method != method:
                allowed.append(r.method)
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            d = Deferred.fromCoroutine(self._run(r, request, params))
            d.addErrback(self._crashed, request)
            return server.NOT_DONE_YET
        if allowed:
            request.setHeader(b"Allow", ", ".join(sorted(set(allowed))).encode())
            return self._error_body(request, ServiceError(405, "method not allowed", f"{method} is not allowed here"))
        return self._error_body(request, ServiceError(404, "not found", f"there is no page {printable(path[:100])}"))

    def secure(self, request: Any) -> bool:
        return bool(self._is_secure(request))

    async def _run(self, r: ConsoleRoute, request: server.Request, params: dict[str, str]) -> None:
        user = None
        try:
            query = _pairs(urlsplit(request.uri.decode("latin-1")).query)
            form = self._form(request) if r.method == "POST" else {}
            if r.api is not None:
                secret = request.getCookie(security.cookie_name("session", secure=self.secure(request)).encode())
                user, verdict = await self.sessions.check(secret.decode("latin-1") if secret else None)
                if user is None:
                    self._finish(request, self._signed_out(request, r, verdict))
                    return
                if r.method == "POST":
                    self._check_post(request, secret.decode("latin-1") if secret else None, form)
                needed = self.needs(r.api)
                if not role_allows(user.role, needed):
                    self._refused(request, f"forbidden: needs {needed}", user.name)
                    raise ServiceError(403, "forbidden",
                                       f"this needs the {needed} role; you are signed in as {user.name} "
                                       f"with the {user.role} role")
            creq = ConsoleRequest(request, user, params, {k: v[-1] for k, v in form.items()},
                                  {k: v[-1] for k, v in query.items()}, self._can(user), form)
            result = await r.handler(creq)
        except ServiceError as exc:
            result = self._error_page(exc, r)
        except InvalidArgument as exc:
            result = self._error_page(ServiceError(400, "invalid argument", str(exc)), r)
        except StoreUnavailable:
            request.setHeader(b"Retry-After", b"10")
            result = self._error_page(ServiceError(
                503, "store unavailable", "the database cannot be used now; retry in a moment"), r)
        if isinstance(result, Page):
            result.context.setdefault("fragment", r.fragment)
            result.context.update(user=user, can=self._can(user), csrf=user.csrf if user else "",
                                  now=self._now(), path=request.path.decode("latin-1"), banner=self.banner)
        self._finish(request, result)

    def _can(self, user: Any) -> dict[str, bool]:
        """What the user's role allows of the actions pages offer (buttons are disabled
        otherwise; the server refuses the request anyway)."""
        return {a: user is not None and role_allows(user.role, self.needs(api)) for a, api in ACTIONS.items()}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    def _form(self, request: server.Request) -> dict[str, list[str]]:
        """The urlencoded body, decoded strictly (UTF-8). Raises FormError."""
        ctype = (request.getHeader(b"content-type") or b"").decode("latin-1").split(";")[0].strip().lower()
        if request.content is None:
            return {}
        request.content.seek(0)
        raw = request.content.read(MAX_FORM_BYTES + 1)
        if len(raw) > MAX_FORM_BYTES:
            raise ServiceError(413, "form too large", f"a console form is at most {MAX_FORM_BYTES} bytes")
        if ctype != "application/x-www-form-urlencoded":
            if raw:
                raise ServiceError(415, "unsupported media type", "console forms are application/x-www-form-urlencoded")
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormError(f"the form is not UTF-8 (byte {exc.start})") from None
        try:
            return _pairs(text)
        except (ValueError, UnicodeDecodeError):
            raise FormError("the form holds a field that is not UTF-8 or too many fields") from None

    def _check_post(self, request: server.Request, secret: str | None, form: dict[str, list[str]]) -> None:
        """CSRF: the session's token (form field or X-CSRF-Token) and a same-origin request.
        Raises ServiceError(403); nothing has been changed then."""
        submitted = (form.get("csrf") or [""])[-1] or (request.getHeader(b"x-csrf-token") or b"").decode("latin-1")
        header = request.getHeader
        same_origin = security.origin_ok(
            origin=_text(header(b"origin")), fetch_site=_text(header(b"sec-fetch-site")),
            host=_text(header(b"host")), secure=self.secure(request))
        if not same_origin or not security.csrf_ok(secret, submitted):
            why = "cross-site request" if not same_origin else "missing or wrong CSRF token"
            self._refused(request, f"forbidden: {why}", None)
            raise ServiceError(403, "forbidden",
                               f"{why}: nothing was changed. Reload the page and submit the form again.")

    def _signed_out(self, request: server.Request, r: ConsoleRoute, verdict: str) -> Page | Redirect:
        why = {"revoked": "your token was revoked", "expired": "your session expired",
               "idle": "your session expired after a period without use"}.get(verdict, "")
        if verdict in ("expired", "idle", "revoked"):
            secure = self.secure(request)
            _cookie(request, security.clear_cookie(security.cookie_name("session", secure=secure), secure=secure))
        if r.fragment or r.method != "GET":
            return Page("_error.html" if r.fragment else "error.html", {"status": 401, "title": "signed out",
                                       "detail": (why or "you are not signed in") + ": sign in again",
                                       "findings": None, "fragment": True}, status=401)
        target = request.uri.decode("latin-1")
        return Redirect("/signin?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in
                                              (("next", target), ("why", verdict)) if v and v != "missing"))

    # -- answers ----------------------------------------------------------------------------

    def _finish(self, request: server.Request, result: Page | Redirect | Download) -> None:
        """Write ``result`` and finish the request."""
        if request.finished or getattr(request, "_disconnected", False):
            return
        if isinstance(result, Redirect):
            request.setResponseCode(303)
            request.setHeader(b"Location", result.location.encode("utf-8"))
            request.setHeader(b"Cache-Control", b"no-store")
            body = b""
        elif isinstance(result, Download):
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", result.content_type.encode())
            request.setHeader(b"Content-Disposition", f'attachment; filename="{result.filename}"'.encode())
            request.setHeader(b"Cache-Control", b"no-store")
            body = result.body
        elif result.template == "<static>":
            request.setResponseCode(result.status)
            request.setHeader(b"Content-Type", result.context["type"].encode())
            request.setHeader(b"Cache-Control", b"no-cache")
            body = result.context["body"]
        else:
            request.setResponseCode(result.status)
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            request.setHeader(b"Cache-Control", b"no-store")
            context = self._base_context()
            context.update(result.context)
            body = self.env.get_template(result.template).render(**context).encode("utf-8")
        request.setHeader(b"Content-Length", str(len(body)).encode())
        request.write(body)
        request.finish()

    def _base_context(self) -> dict[str, Any]:
        return {"user": None, "can": {}, "csrf": "", "now": self._now(), "path": "", "banner": self.banner,
                "fragment": False, "nav": "", "compliance_served": self.compliance_served}

    def _error_page(self, exc: ServiceError, r: ConsoleRoute | None) -> Page:
        return Page("_error.html" if r is not None and r.fragment else "error.html",
                    {"status": exc.status, "title": exc.title, "detail": exc.detail, "findings": exc.findings,
                     "fragment": bool(r and r.fragment)}, status=exc.status)

    def _error_body(self, request: server.Request, exc: ServiceError) -> bytes:
        page = self._error_page(exc, None)
        request.setResponseCode(exc.status)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        context = self._base_context()
        context.update(page.context)
        return self.env.get_template(page.template).render(**context).encode("utf-8")

    def _refused(self, request: server.Request, reason: str, who: str | None) -> None:
        if self._metrics is not None:
            self._metrics.observe_refusal("console", reason.split(":")[0])
        remote = str(getattr(request.getClientAddress(), "host", "") or "") or None
        what = f"{request.method.decode('latin-1')} {printable(request.path.decode('latin-1')[:100])}"
        by = f"{who}: " if who else ""

        def line() -> None:
            log.warn("console {what} from {remote} refused: {by}{reason}", what=what, remote=remote, by=by,
                     reason=reason)

        if self._refusals is None:
            line()
        else:
            self._refusals.refused(remote, reason[:100], line)

    def _crashed(self, failure: Failure, request: server.Request) -> None:
        log.failure("console request failed", failure)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.setResponseCode(500)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.write(b"internal error\n")
            request.finish()

    # -- public routes ----------------------------------------------------------------------

    async def _static(self, req: ConsoleRequest) -> Page:
        name = req.params["name"]
        body = self._files.get(name)
        if body is None:
            raise ServiceError(404, "not found", f"no file {name}")
        return Page("<static>", {"type": _STATIC_TYPES[Path(name).suffix], "body": body})

    def _signin_context(self, req: ConsoleRequest, error: str = "") -> Page:
        secure = self.secure(req.raw)
        secret = security.new_secret(self.sessions.random(32))
        _cookie(req.raw, security.set_cookie(security.cookie_name("signin", secure=secure), secret,
                                             secure=secure, max_age=900))
        nxt = req.arg("next") or req.field("next")
        return Page("signin.html", {"signin_csrf": security.csrf_token(secret), "next": _safe_next(nxt),
                                    "why": req.arg("why"), "error": error}, status=401 if error else 200)

    async def _signin_form(self, req: ConsoleRequest) -> Page:
        return self._signin_context(req)

    async def _signin(self, req: ConsoleRequest) -> Page | Redirect:
        request = req.raw
        secure = self.secure(request)
        pre = request.getCookie(security.cookie_name("signin", secure=secure).encode())
        pre_secret = pre.decode("latin-1") if pre else None
        header = request.getHeader
        if not security.origin_ok(origin=_text(header(b"origin")), fetch_site=_text(header(b"sec-fetch-site")),
                                  host=_text(header(b"host")), secure=secure) \
                or not security.csrf_ok(pre_secret, req.field("csrf")):
            self._refused(request, "forbidden: sign-in form without its CSRF token", None)
            return self._signin_context(req, "the sign-in form was stale or came from another site: try again")
        try:
            secret, user = await self.sessions.sign_in(req.field("token"))
        except Unauthorized as exc:
            self._refused(request, f"unauthorized: {exc.detail}", None)
            return self._signin_context(req, f"sign-in refused: {exc.detail}")
        _cookie(request, security.clear_cookie(security.cookie_name("signin", secure=secure), secure=secure))
        _cookie(request, security.set_cookie(security.cookie_name("session", secure=secure), secret,
                                             secure=secure, max_age=int(self.sessions.max_age)))
        log.info("console sign-in: token {name} ({role})", name=user.name, role=user.role)
        return Redirect(_safe_next(req.field("next")) or "/fleet")

    async def _signout(self, req: ConsoleRequest) -> Redirect:
        request = req.raw
        secure = self.secure(request)
        name = security.cookie_name("session", secure=secure)
        secret = request.getCookie(name.encode())
        await self.sessions.sign_out(secret.decode("latin-1") if secret else None)
        _cookie(request, security.clear_cookie(name, secure=secure))
        return Redirect("/signin?why=signed-out")


def _cookie(request: server.Request, value: str) -> None:
    """Add a Set-Cookie header (Twisted writes each entry of ``cookies`` as one)."""
    request.cookies.append(value.encode("latin-1"))


def _pairs(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in parse_qsl(text, keep_blank_values=True, max_num_fields=200, errors="strict"):
        out.setdefault(k, []).append(v)
    return out


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _safe_next(target: str) -> str:
    """A path of this console to go to after sign-in: never another site (``//host``,
    ``/\\host``, a scheme), never a control character."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 500:
        return ""
    if not target.isprintable() or target.startswith("/signin"):
        return ""
    return target
