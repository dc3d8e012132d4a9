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

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource
from twisted.web.wsgi import WSGIResource

from acs_security.display import printable
from acs_security.file_service import FileService
from acs_security.server.auth import Forbidden, TokenAuthenticator, role_allows
from acs_security.server.refusals import RefusalLog, api_refusal_key
from acs_security.server.soap_guard import PRINCIPAL, SoapGuard, SoapRefusals, quiet_spyne_faults
from acs_security.service import FleetService, ServiceError

__all__ = ["NAMESPACE", "make_soap_resource", "soap_available", "SoapUnavailable"]

log = Logger(namespace="acs_security.soap")
NAMESPACE = "urn:acs-security:nbi:1"


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


def _build_application(call: Callable[[Any, str, Callable[[FleetService], Any]], Any],
                       files: FileService) -> Any:
    """The spyne Application; ``call(ctx, role, fn)`` runs ``fn(service)`` on the reactor
    for a caller whose role allows ``role`` and returns its result; ``files`` answers the
    file and backup operations (file_service.py)."""
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

    class Backup(ComplexModel):
        __namespace__ = NAMESPACE
        device_id = Unicode
        serial_number = Unicode
        product_class = Unicode
        version = Integer
        sha256 = Unicode
        size = Integer
        created_at = Unicode
        confirmed_at = Unicode
        uploads = Integer
        problems = Integer
        report_json = Unicode
        cfgxml = Unicode

    class BackupPage(ComplexModel):
        __namespace__ = NAMESPACE
        total = Integer
        backups = Array(Backup)

    class Change(ComplexModel):
        __namespace__ = NAMESPACE
        element = Unicode
        change = Unicode
        old = Unicode
        new = Unicode

    def backup(d: dict[str, Any]) -> Any:
        report = d.get("report")
        return Backup(device_id=d["device_id"], serial_number=d.get("serial_number"),
                      product_class=d.get("product_class"), version=d["version"], sha256=d["sha256"],
                      size=d["size"], created_at=d["created_at"], confirmed_at=d["confirmed_at"],
                      uploads=d["uploads"], problems=d["problems"],
                      report_json=json.dumps(report, sort_keys=True) if report is not None else None,
                      cfgxml=d.get("cfgxml"))

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
             Array(Unicode), Unicode, Unicode, _returns=Job)
        def SubmitJob(ctx, policy, select, policy_name, canary, deadline, max_in_progress, readback, force,  # noqa: N802
                      method, file_content):
            request = {"policy": policy, "select": select}  # spyne methods are untyped: mypy skips them
            for key, value in (("policy_name", policy_name), ("canary", canary), ("deadline", deadline),
                               ("max_in_progress", max_in_progress), ("readback", readback),
                               ("method", method), ("file_content", file_content)):
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

        @rpc(Unicode(min_occurs=1), Unicode(min_occurs=1), Unicode, Unicode, _returns=Unicode)
        def RenderDeviceCfgXml(ctx, device_id, policy, method, file_content):  # noqa: N802
            request = {k: v for k, v in (("policy", policy), ("method", method), ("file_content", file_content))
                       if v is not None}
            return call(ctx, "viewer", lambda s: files.render_device(device_id, request))["cfgxml"]

        @rpc(Unicode(min_occurs=1), Unicode, Unicode, Integer, Integer, _returns=Job)
        def BackupDevices(ctx, select, canary, deadline, max_in_progress, wave):  # noqa: N802
            request = {k: v for k, v in (("select", select), ("canary", canary), ("deadline", deadline),
                                         ("max_in_progress", max_in_progress), ("wave", wave)) if v is not None}
            return job(call(ctx, "operator", lambda s: files.submit_backup(request)))

        @rpc(Unicode, Integer, Integer, _returns=BackupPage)
        def ListBackups(ctx, device_id, limit, offset):  # noqa: N802
            page = call(ctx, "viewer", lambda s: files.list_backups(device_id=device_id, limit=limit or 100,
                                                                    offset=offset or 0))
            return BackupPage(total=page["total"], backups=[backup(b) for b in page["backups"]])

        @rpc(Unicode(min_occurs=1), Unicode, _returns=Backup)
        def GetBackup(ctx, device_id, version):  # noqa: N802
            return backup(call(ctx, "viewer", lambda s: files.get_backup(device_id, version)))

        @rpc(Unicode(min_occurs=1), Unicode, Unicode, _returns=Array(Change))
        def DiffBackups(ctx, device_id, version, against):  # noqa: N802
            out = call(ctx, "viewer", lambda s: files.diff_backups(device_id, version, against))
            return [Change(element=c["element"], change=c["change"], old=c["old"], new=c["new"])
                    for c in out["changes"]]

        @rpc(Unicode(min_occurs=1), Unicode, Unicode, Unicode, Array(Unicode), _returns=Job)
        def RestoreBackup(ctx, device_id, version, to, deadline, force):  # noqa: N802
            request: dict[str, Any] = {k: v for k, v in (("to", to), ("deadline", deadline)) if v is not None}
            if force:
                request["force"] = list(force)
            return job(call(ctx, "operator", lambda s: files.restore_backup(device_id, version, request)))

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


def _soap_call(reactor: Any, service: FleetService,
               refusals: SoapRefusals) -> Callable[[Any, str, Callable[[FleetService], Any]], Any]:
    from spyne import Fault

    def call(ctx: Any, role: str, fn: Callable[[FleetService], Any]) -> Any:
        env = ctx.transport.req_env
        principal = env.get(PRINCIPAL)
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


def make_soap_resource(reactor: Any, threadpool: ThreadPool, service: FleetService,
                       authenticator: TokenAuthenticator, *, refusal_log: RefusalLog | None = None,
                       metrics: Any = None, max_body_bytes: int = 1024 * 1024,
                       files: FileService | None = None) -> IResource:
    """The ``/soap`` resource: spyne behind token authentication and the request checks, or
    a 501 resource when spyne is not installed. ``threadpool`` is started and stopped by the
    caller; ``refusal_log`` rate-limits the refusal lines (shared with the other faces),
    ``metrics`` counts refusals (AcsMetrics.observe_refusal); ``files`` answers the file and
    backup operations (default: one over ``service``)."""
    reason = soap_available()
    if reason is not None:
        return SoapUnavailable(reason)
    from spyne.server.wsgi import WsgiApplication

    quiet_spyne_faults()
    refusals = SoapRefusals(reactor, refusal_log, metrics)
    app = WsgiApplication(_build_application(_soap_call(reactor, service, refusals),
                                         files or FileService(service)))

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
    guard = SoapGuard(app, reactor, authenticator, refusals=refusals, max_body_bytes=max_body_bytes)
    return WSGIResource(reactor, threadpool, guard)
