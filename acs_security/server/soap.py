"""The SOAP 1.1 northbound service (spyne), its WSDL at ``/soap?wsdl``.

Optional: spyne is the ``acs-security[soap]`` extra (it does not import on Python 3.12+,
docs/decisions/0001-lxml-codec.md). Without it :func:`make_soap_resource` gives a resource
that answers 501 with the reason, and the rest of the server works.

spyne runs as a WSGI application in twisted.web's WSGIResource, i.e. in a thread pool;
the service layer lives on the reactor thread, so every operation hops there with
``blockingCallFromThread(reactor, ...)`` (the reactor passed in, never the global one).

Authentication: the same tokens and roles as REST, carried by HTTP, checked before spyne
sees the request: ``Authorization: Bearer <token>``, or HTTP basic with the token's name
as user and the token as password (what most SOAP stacks, zeep included, can send; use it
over TLS). WS-Security UsernameToken was not chosen: spyne 2.14 has no support for it, and
a hand-made header parser would be one more XML surface for the same secret.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource
from twisted.web.wsgi import WSGIResource

from acs_security.display import printable
from acs_security.server.auth import Forbidden, Principal, TokenAuthenticator, Unauthorized, role_allows
from acs_security.server.http import BodyError, decode_body
from acs_security.server.refusals import RefusalLog, api_refusal_key
from acs_security.service import FleetService, ServiceError

__all__ = ["NAMESPACE", "make_soap_resource", "soap_available", "SoapUnavailable"]

log = Logger(namespace="acs_security.soap")
NAMESPACE = "urn:acs-security:nbi:1"
_PRINCIPAL = "acs.principal"


def soap_available() -> str | None:
    """None when spyne imports, else why not (for the 501 answer)."""
    try:
        import spyne  # noqa: F401
    except ImportError as exc:  # spyne missing, or Python 3.12+ where it does not import
        return f"the SOAP interface needs the soap extra (pip install 'acs-security[soap]'): {exc}"
    return None


class SoapUnavailable(Resource):
    """``/soap`` without spyne: 501 Not Implemented with the reason, as problem details."""

    isLeaf = True

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def render(self, request: Any) -> bytes:
        request.setResponseCode(501)
        request.setHeader(b"Content-Type", b"application/problem+json")
        return json.dumps({"type": "about:blank", "title": "SOAP not installed", "status": 501,
                           "detail": self.reason}).encode() + b"\n"


def _build_application(call: Callable[[Any, str, Callable[[FleetService], Any]], Any]) -> Any:
    """The spyne Application; ``call(ctx, role, fn)`` runs ``fn(service)`` on the reactor
    for a caller whose role allows ``role`` and returns its result."""
    from spyne import Application, Array, Boolean, ComplexModel, Double, Integer, ServiceBase, Unicode, rpc
    from spyne.protocol.soap import Soap11

    class StateCount(ComplexModel):
        __namespace__ = NAMESPACE
        state = Unicode
        count = Integer

    class Job(ComplexModel):
        __namespace__ = NAMESPACE
        id = Integer
        name = Unicode
        kind = Unicode
        state = Unicode
        selector = Unicode
        parameter_key = Unicode
        current_wave = Integer
        wave_count = Integer
        total = Integer
        reason = Unicode
        created_at = Unicode
        deadline = Unicode
        finished_at = Unicode
        counts = Array(StateCount)

    class JobPage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        jobs = Array(Job)

    class Task(ComplexModel):
        __namespace__ = NAMESPACE
        device_id = Unicode
        wave = Integer
        state = Unicode
        attempts = Integer
        fault_code = Integer
        fault_string = Unicode
        detail = Unicode

    class TaskPage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        devices = Array(Task)

    class Device(ComplexModel):
        __namespace__ = NAMESPACE
        device_id = Unicode
        product_class = Unicode
        serial_number = Unicode
        software_version = Unicode
        last_inform = Unicode

    class DevicePage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        devices = Array(Device)

    class Finding(ComplexModel):
        __namespace__ = NAMESPACE
        rule = Unicode
        severity = Unicode
        text = Unicode

    class LintResult(ComplexModel):
        __namespace__ = NAMESPACE
        exit = Integer
        findings = Array(Finding)

    class Assignment(ComplexModel):
        __namespace__ = NAMESPACE
        id = Integer
        name = Unicode
        policy_name = Unicode
        selector = Unicode
        priority = Integer
        mode = Unicode
        enabled = Boolean
        revision = Integer
        parameter_key = Unicode
        created_at = Unicode
        updated_at = Unicode
        counts = Array(StateCount)

    class AssignmentPage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        assignments = Array(Assignment)

    class ComplianceRow(ComplexModel):
        __namespace__ = NAMESPACE
        product_class = Unicode
        software_version = Unicode
        selected = Integer
        compliant = Integer
        drifted = Integer
        faulted = Integer
        skipped = Integer
        overridden = Integer
        unknown = Integer
        compliant_ratio = Double

    class Compliance(ComplexModel):
        __namespace__ = NAMESPACE
        assignment = Unicode
        revision = Integer
        total = ComplianceRow
        by_model = Array(ComplianceRow)
        by_firmware = Array(ComplianceRow)

    class DriftEvent(ComplexModel):
        __namespace__ = NAMESPACE
        at = Unicode
        kind = Unicode
        assignment = Unicode
        setting = Unicode
        path = Unicode
        old = Unicode
        new = Unicode
        event = Unicode
        action = Unicode
        job_id = Integer

    class DriftPage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        events = Array(DriftEvent)

    def assignment_model(d: dict[str, Any]) -> Any:
        return Assignment(id=d["id"], name=d["name"], policy_name=d["policy_name"], selector=d["selector"],
                          priority=d["priority"], mode=d["mode"], enabled=d["enabled"], revision=d["revision"],
                          parameter_key=d["parameter_key"], created_at=d["created_at"], updated_at=d["updated_at"],
                          counts=[StateCount(state=k, count=v) for k, v in sorted((d.get("counts") or {}).items())])

    def compliance_row(d: dict[str, Any]) -> Any:
        return ComplianceRow(**{k: d.get(k) for k in ("product_class", "software_version", "selected", "compliant",
                                                      "drifted", "faulted", "skipped", "overridden", "unknown",
                                                      "compliant_ratio")})

    def desired(s: FleetService) -> Any:
        if s.desired is None:
            raise ServiceError(404, "not found", "desired state is not served here")
        return s.desired

    def job(d: dict[str, Any]) -> Any:
        return Job(id=d["id"], name=d["name"], kind=d.get("kind"), state=d["state"], selector=d["selector"],
                   parameter_key=d["parameter_key"], current_wave=d["current_wave"],
                   wave_count=d["wave_count"], total=d["total"], reason=d["reason"],
                   created_at=d["created_at"], deadline=d["deadline"], finished_at=d["finished_at"],
                   counts=[StateCount(state=k, count=v) for k, v in sorted(d["counts"].items())])

    def task(d: dict[str, Any]) -> Any:
        return Task(device_id=d["device_id"], wave=d["wave"], state=d["state"], attempts=d["attempts"],
                    fault_code=d.get("fault_code"), fault_string=d.get("fault_string"), detail=d.get("detail"))

    def finding(d: dict[str, Any]) -> Any:
        text = d.get("reason") or d.get("message") or json.dumps(d, sort_keys=True)
        return Finding(rule=d.get("rule"), severity=d.get("severity"), text=str(text))

    class FleetSoapService(ServiceBase):
        """The fleet operations of the REST API, as SOAP operations."""

        @rpc(Unicode(min_occurs=1), Unicode(min_occurs=1), Unicode, Unicode, Unicode, Integer, Boolean,
             Array(Unicode), _returns=Job)
        def SubmitJob(ctx, policy, select, policy_name, canary, deadline, max_in_progress, readback, force):  # noqa: N802
            request = {"policy": policy, "select": select}  # spyne methods are untyped: mypy skips them
            for key, value in (("policy_name", policy_name), ("canary", canary), ("deadline", deadline),
                               ("max_in_progress", max_in_progress), ("readback", readback)):
                if value is not None:
                    request[key] = value
            if force:
                request["force"] = list(force)
            return job(call(ctx, "operator", lambda s: s.submit_job(request)))

        @rpc(Integer(min_occurs=1), _returns=Job)
        def GetJob(ctx, job_id):  # noqa: N802
            return job(call(ctx, "viewer", lambda s: s.job_summary(job_id)))

        @rpc(Integer, Integer, Unicode, _returns=JobPage)
        def ListJobs(ctx, limit, offset, state):  # noqa: N802
            page = call(ctx, "viewer", lambda s: s.list_jobs(limit=limit or 50, offset=offset or 0, state=state))
            return JobPage(total=page["total"], jobs=[job(j) for j in page["jobs"]])

        @rpc(Integer(min_occurs=1), Unicode, Integer, Integer, _returns=TaskPage)
        def JobDevices(ctx, job_id, state, limit, offset):  # noqa: N802
            page = call(ctx, "viewer", lambda s: s.job_devices(job_id, state=state, limit=limit or 100,
                                                                offset=offset or 0))
            return TaskPage(total=page["total"], devices=[task(t) for t in page["devices"]])

        @rpc(Integer(min_occurs=1), _returns=Job)
        def CancelJob(ctx, job_id):  # noqa: N802
            return job(call(ctx, "operator", lambda s: s.cancel_job(job_id)))

        @rpc(Integer(min_occurs=1), _returns=Job)
        def ResumeJob(ctx, job_id):  # noqa: N802
            return job(call(ctx, "operator", lambda s: s.resume_job(job_id)))

        @rpc(Integer(min_occurs=1), _returns=Unicode)
        def JobReportCsv(ctx, job_id):  # noqa: N802
            data = call(ctx, "viewer", lambda s: s.job_report(job_id, fmt="csv"))
            return data.decode("utf-8")

        @rpc(Integer, Integer, Unicode, Unicode, Unicode, _returns=DevicePage)
        def ListDevices(ctx, limit, offset, product_class, software_version, tag):  # noqa: N802
            filters = {k: v for k, v in (("product_class", product_class), ("software_version", software_version),
                                         ("tag", tag)) if v is not None}
            page = call(ctx, "viewer", lambda s: s.list_devices(limit=limit or 100, offset=offset or 0,
                                                                 filters=filters))
            return DevicePage(total=page["total"], devices=[
                Device(device_id=d["device_id"], product_class=d["product_class"], serial_number=d["serial_number"],
                       software_version=d["software_version"], last_inform=d["last_inform"])
                for d in page["devices"]])

        @rpc(Unicode(min_occurs=1), _returns=LintResult)
        def LintPolicy(ctx, policy):  # noqa: N802
            out = call(ctx, "viewer", lambda s: _done(s.lint_policy(policy)))
            return LintResult(exit=out["exit"], findings=[finding(f) for f in out["findings"]])

        @rpc(Unicode(min_occurs=1), Integer, _returns=Unicode)
        def PolicyCfgXml(ctx, policy, extensions):  # noqa: N802
            data = call(ctx, "viewer", lambda s: _done(s.policy_cfgxml(policy, extensions=extensions or 1)))
            return data.decode("utf-8")

        @rpc(Unicode(min_occurs=1), _returns=Unicode)
        def DeviceCfgXml(ctx, device_id):  # noqa: N802
            return call(ctx, "viewer", lambda s: s.device_cfgxml(device_id)).decode("utf-8")

        # -- desired state (docs/desired-state.md) --

        @rpc(Unicode(min_occurs=1), Unicode(min_occurs=1), Unicode, Integer, Unicode, Unicode, Array(Unicode),
             _returns=Assignment)
        def Assign(ctx, policy, select, name, priority, mode, policy_name, force):  # noqa: N802
            request = {"policy": policy, "select": select}
            for key, value in (("name", name), ("priority", priority), ("mode", mode), ("policy_name", policy_name)):
                if value is not None:
                    request[key] = value
            if force:
                request["force"] = list(force)
            return assignment_model(call(ctx, "operator", lambda s: desired(s).assign(request)))

        @rpc(_returns=AssignmentPage)
        def ListAssignments(ctx):  # noqa: N802
            page = call(ctx, "viewer", lambda s: desired(s).list_assignments())
            return AssignmentPage(total=page["total"], assignments=[assignment_model(a) for a in page["assignments"]])

        @rpc(Unicode(min_occurs=1), _returns=Assignment)
        def GetAssignment(ctx, ref):  # noqa: N802
            return assignment_model(call(ctx, "viewer", lambda s: desired(s).get_assignment(ref)))

        @rpc(Unicode(min_occurs=1), _returns=Assignment)
        def EnableAssignment(ctx, ref):  # noqa: N802
            return assignment_model(call(ctx, "operator", lambda s: desired(s).set_enabled(ref, True)))

        @rpc(Unicode(min_occurs=1), _returns=Assignment)
        def DisableAssignment(ctx, ref):  # noqa: N802
            return assignment_model(call(ctx, "operator", lambda s: desired(s).set_enabled(ref, False)))

        @rpc(Unicode(min_occurs=1), _returns=Unicode)
        def DeleteAssignment(ctx, ref):  # noqa: N802
            return call(ctx, "operator", lambda s: desired(s).delete_assignment(ref))["deleted"]

        @rpc(Unicode(min_occurs=1), _returns=Compliance)
        def AssignmentCompliance(ctx, ref):  # noqa: N802
            d = call(ctx, "viewer", lambda s: desired(s).compliance(ref))
            return Compliance(assignment=d["assignment"], revision=d["revision"], total=compliance_row(d),
                              by_model=[compliance_row(r) for r in d["by_model"]],
                              by_firmware=[compliance_row(r) for r in d["by_firmware"]])

        @rpc(Unicode(min_occurs=1), Integer, Integer, _returns=DriftPage)
        def DeviceDrift(ctx, device_id, limit, offset):  # noqa: N802
            page = call(ctx, "viewer", lambda s: desired(s).device_drift(device_id, limit=limit or 100,
                                                                        offset=offset or 0))
            return DriftPage(total=page["total"], events=[
                DriftEvent(**{k: e.get(k) for k in ("at", "kind", "assignment", "setting", "path", "old", "new",
                                                     "event", "action", "job_id")}) for e in page["events"]])

        @rpc(Unicode, Unicode, Integer, Unicode, _returns=Job)
        def StartAudit(ctx, select, assignment, wave, deadline):  # noqa: N802
            request = {"select": select or "all"}
            for key, value in (("assignment", assignment), ("wave", wave), ("deadline", deadline)):
                if value is not None:
                    request[key] = value
            return job(call(ctx, "operator", lambda s: desired(s).submit_audit(request)))

        @rpc(Integer(min_occurs=1), _returns=Unicode)
        def AuditReportCsv(ctx, job_id):  # noqa: N802
            return call(ctx, "viewer", lambda s: desired(s).audit_report(job_id, fmt="csv")).decode("utf-8")

    return Application([FleetSoapService], tns=NAMESPACE, name="AcsSecurityNbi",
                       in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())


async def _done(value: Any) -> Any:
    return value


class _Refusals:
    """Refusals of the SOAP face, reported from the WSGI threads to the reactor thread: the
    metric (acs_nbi_refusals_total for 401/403), then one log line through the shared rate
    limit (refusals.py), never a traceback."""

    def __init__(self, reactor: Any, refusal_log: RefusalLog | None, metrics: Any) -> None:
        self._reactor = reactor
        self._log = refusal_log
        self._metrics = metrics

    def report(self, source: str | None, key: str, text: str, *, level: str = "warn",
               metric: str | None = None) -> None:
        """``key``: the reason as summaries count it; ``text``: the line; ``metric``: the
        refusal reason label (unauthorized, forbidden) when it is one."""
        self._reactor.callFromThread(self._report, source, key, printable(text), level, metric)

    def _report(self, source: str | None, key: str, text: str, level: str, metric: str | None) -> None:
        if metric is not None and self._metrics is not None:
            self._metrics.observe_refusal("soap", metric)
        emit = log.warn if level == "warn" else log.info

        def line() -> None:
            emit("SOAP request from {remote} refused: {reason}", remote=source, reason=text)

        if self._log is None:
            line()
        else:
            self._log.refused(source, key, line)


def _soap_call(reactor: Any, service: FleetService,
               refusals: _Refusals) -> Callable[[Any, str, Callable[[FleetService], Any]], Any]:
    from spyne import Fault

    def call(ctx: Any, role: str, fn: Callable[[FleetService], Any]) -> Any:
        env = ctx.transport.req_env
        principal = env.get(_PRINCIPAL)
        if principal is None or not role_allows(principal.role, role):
            exc = Forbidden(principal.role if principal else "none", role)
            refusals.report(env.get("REMOTE_ADDR"), api_refusal_key(exc),
                            f"{_operation(ctx)}: token {principal.name if principal else '?'}: {exc.detail}",
                            metric="forbidden")
            raise Fault(faultcode="Client.Forbidden", faultstring=exc.detail)
        try:
            return blockingCallFromThread(reactor, lambda: Deferred.fromCoroutine(fn(service)))
        except ServiceError as exc:
            # SOAP 1.1 section 4.4.1: Client = the request was wrong, Server = it was not.
            code = "Client" if exc.status < 500 else "Server"
            raise Fault(faultcode=f"{code}.{exc.title.title().replace(' ', '')}",
                        faultstring=f"{exc.title}: {exc.detail}" if exc.detail else exc.title) from None

    return call


def _operation(ctx: Any) -> str:
    name = getattr(ctx, "method_request_string", None) or "?"
    return str(name).rpartition("}")[2]


#: Limits of a SOAP request's XML (cwmp/soap.py parse_xml checks them before spyne parses):
#: the operations take a few strings and numbers, 5 elements deep at most (Envelope, Body,
#: operation, array, item).
SOAP_LIMITS = dict(max_depth=16, max_elements=10_000, max_attributes=10_000)


class _Guard:
    """WSGI middleware in front of spyne: the token check (401 + challenge when it fails),
    then the request's form, refused with a SOAP 1.1 Client fault before spyne parses
    anything (WS-I Basic Profile 1.1: R1113 400 for a malformed request, R1115 415 for a
    wrong Content-Type): Content-Type text/xml (SOAP 1.1 section 6.1.1), a supported
    Content-Encoding, a body, and XML without DOCTYPE or entity declarations, within
    :data:`SOAP_LIMITS` (the hostile-XML checks of the CWMP endpoint, cwmp/soap.py)."""

    def __init__(self, app: Any, reactor: Any, authenticator: TokenAuthenticator, *,
                 refusals: _Refusals, max_body_bytes: int) -> None:
        from acs_security.cwmp.soap import Limits

        self._app = app
        self._reactor = reactor
        self._auth = authenticator
        self._refusals = refusals
        self._max_body = max_body_bytes
        self._limits = Limits(max_bytes=max_body_bytes, **SOAP_LIMITS)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        header = environ.get("HTTP_AUTHORIZATION")
        remote = environ.get("REMOTE_ADDR")
        try:
            # Twisted types f as Callable[_P, _R] | Callable[_P, Deferred[_R]]; mypy solves the
            # union as Never.
            principal: Principal = blockingCallFromThread(
                self._reactor, lambda: Deferred.fromCoroutine(self._auth.authenticate(header)))  # type: ignore[arg-type]
        except Unauthorized as exc:
            self._refusals.report(remote, api_refusal_key(exc), exc.detail,
                                  level="info" if header is None else "warn", metric="unauthorized")
            body = json.dumps({"type": "about:blank", "title": exc.title, "status": 401,
                               "detail": exc.detail}).encode() + b"\n"
            start_response("401 Unauthorized", [
                ("Content-Type", "application/problem+json"), ("Content-Length", str(len(body))),
                ("WWW-Authenticate", 'Bearer realm="acs-security"'),
                ("WWW-Authenticate", 'Basic realm="acs-security", charset="UTF-8"')])
            return [body]
        environ[_PRINCIPAL] = principal
        if environ.get("REQUEST_METHOD") == "POST":
            problem = self._check_body(environ)
            if problem is not None:
                status, code, text = problem
                self._refusals.report(remote, f"malformed request ({code})", f"{code}: {text}")
                return _fault_response(start_response, status, code, text)
        return self._app(environ, start_response)

    def _check_body(self, environ: dict[str, Any]) -> tuple[str, str, str] | None:
        """None when the request may go to spyne (its body then rewound, decoded), else
        (HTTP status line, fault code, what is wrong)."""
        from acs_security.cwmp.errors import CwmpProtocolError
        from acs_security.cwmp.soap import parse_xml

        media, _, params = str(environ.get("CONTENT_TYPE") or "").partition(";")
        media = media.strip().lower()
        if media != "text/xml":
            hint = " (SOAP 1.2's type; this service speaks SOAP 1.1)" if media == "application/soap+xml" else ""
            return ("415 Unsupported Media Type", "Client.UnsupportedMediaType",
                    f"Content-Type must be text/xml (SOAP 1.1), not {media[:60] or 'none'!r}{hint}")
        try:
            raw = environ["wsgi.input"].read()
            body = decode_body(raw, environ.get("HTTP_CONTENT_ENCODING"), self._max_body)
        except BodyError as exc:
            return (_STATUS_LINES.get(exc.status, "400 Bad Request"),
                    _FAULT_CODES.get(exc.status, "Client.BadRequest"), str(exc))
        if not body.strip():
            return "400 Bad Request", "Client.BadRequest", "the body is empty: POST a SOAP 1.1 envelope"
        try:
            parse_xml(body, self._limits, what="a SOAP request")
        except CwmpProtocolError as exc:
            status = _STATUS_LINES.get(exc.http_status, "400 Bad Request")
            return status, _FAULT_CODES.get(exc.http_status, "Client.BadRequest"), str(exc)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_CONTENT_ENCODING", None)
        return None


_STATUS_LINES = {400: "400 Bad Request", 413: "413 Payload Too Large", 415: "415 Unsupported Media Type"}
_FAULT_CODES = {413: "Client.RequestTooLarge", 415: "Client.UnsupportedMediaType"}
# What XML 1.0 cannot carry (its Char production), replaced in a fault string.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _fault_response(start_response: Callable[..., Any], status: str, code: str, text: str) -> list[bytes]:
    """A SOAP 1.1 Fault envelope (section 4.4) with ``faultcode`` ``code`` as the answer."""
    from lxml import etree

    from acs_security.cwmp.namespaces import SOAP_ENV

    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap11env": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap11env:{code}"
    etree.SubElement(fault, "faultstring").text = _NOT_XML.sub("?", text)
    body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    start_response(status, [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


class _DropFaults(logging.Filter):
    """spyne logs every Fault it answers with a traceback (application.py: Client faults on
    ``spyne.application.client``, others on ``spyne.application``; server/_base.py and
    wsgi.py log the faults of requests spyne could not read); those are answers, not
    crashes, and the SOAP face logs one line per refusal itself. Unexpected exceptions are
    not Faults and keep spyne's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from spyne import Fault

        return not isinstance(record.msg, Fault)


def _quiet_spyne_faults() -> None:
    # spyne's loggers are module-level in spyne: the filter is installed once per process.
    for name in ("spyne.application", "spyne.application.client", "spyne.server._base", "spyne.server.wsgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropFaults) for f in logger.filters):
            logger.addFilter(_DropFaults())


def make_soap_resource(reactor: Any, threadpool: ThreadPool, service: FleetService,
                       authenticator: TokenAuthenticator, *, refusal_log: RefusalLog | None = None,
                       metrics: Any = None, max_body_bytes: int = 1024 * 1024) -> IResource:
    """The ``/soap`` resource: spyne behind token authentication and the request checks, or
    a 501 resource when spyne is not installed. ``threadpool`` is started and stopped by the
    caller; ``refusal_log`` rate-limits the refusal lines (shared with the other faces),
    ``metrics`` counts refusals (AcsMetrics.observe_refusal)."""
    reason = soap_available()
    if reason is not None:
        return SoapUnavailable(reason)
    from spyne.server.wsgi import WsgiApplication

    _quiet_spyne_faults()
    refusals = _Refusals(reactor, refusal_log, metrics)
    app = WsgiApplication(_build_application(_soap_call(reactor, service, refusals)))

    def answered_fault(ctx: Any) -> None:
        # One line per fault spyne answers (the Forbidden ones are reported by call()).
        error = ctx.out_error or ctx.in_error
        code = str(getattr(error, "faultcode", "Server"))
        if code == "Client.Forbidden":
            return
        text = f"{_operation(ctx)}: {code}: {getattr(error, 'faultstring', '')}"[:300]
        remote = ctx.transport.req_env.get("REMOTE_ADDR")
        if code.startswith("Client"):
            refusals.report(remote, code[:60], text, level="info")
        else:
            reactor.callFromThread(lambda: log.error("SOAP request from {remote} failed: {reason}",
                                                     remote=remote, reason=printable(text)))

    app.event_manager.add_listener("wsgi_exception", answered_fault)
    guard = _Guard(app, reactor, authenticator, refusals=refusals, max_body_bytes=max_body_bytes)
    return WSGIResource(reactor, threadpool, guard)
