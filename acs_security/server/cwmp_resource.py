"""The CWMP endpoint: the twisted.web resource phones POST to.

Each POST is handed to the session's sans-IO state machine (``acs_security.cwmp.session``);
this module only does what needs I/O: find the session (cookie, else connection), bound
and decode the body, authenticate the first request, record the Inform durably before
answering it, ask the provisioner what to send next, and log one line per session.

Answers:
- 200 + envelope while the session goes on; 204 to end it (TR-069 section 3.7.2.4);
- 401/403 for authentication (no session is kept for an unauthenticated Inform);
- 503 + Retry-After when the server is at its session limit or the device is already in a
  session, on this node or, with ``device_leases``, on another node of the same database
  (TR-069 section 3.7.1.5 lets the ACS refuse; CPEs retry after Retry-After);
- 503 + Retry-After, at any step of a session, when the store cannot be reached or written
  (a database outage, a full disk): the CPE retries the session later, whereas a CWMP fault
  such as 8002 to its Inform is a failed session it backs off from (TR-069 3.2.1.1) and a
  500 says nothing; the session's changes are not acknowledged, and the job engine finds
  the task again at the device's next session;
- 400/413/415 or a CWMP fault 8003 for malformed or out-of-order input, which also ends
  the session; never a traceback.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from acs_security.cwmp import messages as m
from acs_security.cwmp.session import (
    CpeEmptyPost,
    CpeFault,
    CpeRequest,
    CpeResponse,
    InformReceived,
    Outgoing,
    ProtocolViolation,
    Session,
)
from acs_security.cwmp.soap import Limits
from acs_security.display import device_label, label_of, printable
from acs_security.server.cpe_auth import CpeAuthenticator
from acs_security.server.http import BodyError, decode_body
from acs_security.server.leases import DeviceLeases
from acs_security.server.provisioning import NullProvisioner, Provisioner
from acs_security.server.refusals import RefusalLog
from acs_security.server.registry import inform_record
from acs_security.server.sessions import CapacityExceeded, SessionContext, SessionRegistry
from acs_security.store.errors import InvalidArgument, StoreError, StoreUnavailable

__all__ = ["CwmpResource", "COOKIE_NAME"]

COOKIE_NAME = b"acs_session"
log = Logger(namespace="acs_security.cwmp")


class CwmpResource(Resource):
    """POST-only resource that runs CWMP sessions. Collaborators are constructor arguments."""

    isLeaf = True

    def __init__(
        self,
        *,
        clock: IReactorTime,
        store: Any,
        registry: SessionRegistry | None = None,
        authenticator: CpeAuthenticator | None = None,
        provisioner: Provisioner | None = None,
        limits: Limits | None = None,
        session_timeout: float = 30.0,
        max_sessions: int = 2000,
        retry_after: int = 10,
        max_body_bytes: int = 1024 * 1024,
        token_source: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        session_observer: Callable[[dict[str, Any]], None] | None = None,
        device_leases: DeviceLeases | None = None,
        refusal_log: RefusalLog | None = None,
    ) -> None:
        """``device_leases``: the node's device session leases when several nodes share the
        database (server/leases.py); None for a single node, where the registry alone keeps
        one session per device. ``refusal_log``: rate limit of the refusal lines, shared
        with the management API (server/refusals.py); default: one of its own."""
        super().__init__()
        self._clock = clock
        self._store = store
        self._auth = authenticator
        self._provisioner: Provisioner = provisioner or NullProvisioner()
        self._limits = limits or Limits(max_bytes=max_body_bytes)
        self._retry_after = retry_after
        self._max_body = max_body_bytes
        self._token = token_source
        self._observer = session_observer
        self._leases = device_leases
        self._refusals = refusal_log or RefusalLog(clock)
        self.sessions = registry or SessionRegistry(
            clock, timeout=session_timeout, max_sessions=max_sessions, on_expire=self._expired
        )

    # -- twisted.web entry points -------------------------------------------------------

    def render_GET(self, request: IRequest) -> bytes:  # noqa: N802 - Twisted's interface name
        request.setResponseCode(405)
        request.setHeader(b"Allow", b"POST")
        return b"CWMP endpoint: POST SOAP envelopes here\n"

    def render_POST(self, request: IRequest) -> Any:  # noqa: N802 - Twisted's interface name
        d = Deferred.fromCoroutine(self._handle(request))
        d.addErrback(self._crashed, request)
        return server.NOT_DONE_YET

    def channel_lost(self, channel: Any) -> None:
        """A connection closed. A session that cannot go on without it (a CPE that drops
        cookies) ends now, releasing the device, its lease and the provisioner's work at
        once rather than refusing the device's next session until the idle timeout."""
        ctx = self.sessions.drop_channel(channel)
        if ctx is None or not ctx.ends_with_connection:
            return
        if ctx.busy:
            ctx.connection_lost = True  # ended when its request has been handled
        else:
            self._end(ctx, "disconnected", "connection lost")

    def _handled(self, ctx: SessionContext) -> None:
        ctx.busy = False
        if ctx.connection_lost and ctx.ends_with_connection:
            self._end(ctx, "disconnected", "connection lost")

    # -- the work -----------------------------------------------------------------------

    async def _handle(self, request: IRequest) -> None:
        token = _cookie(request)
        channel = getattr(request, "channel", None)
        ctx = self.sessions.find(token, channel)
        if ctx is not None and ctx.busy:
            # A CPE sends one message at a time (no pipelining, TR-069 section 3.4.3).
            self._plain(request, 400, "a request of this session is still being handled")
            return
        try:
            body = decode_body(
                request.content.read(),
                _header(request, b"content-encoding"),
                self._max_body,
            )
        except BodyError as exc:
            if ctx is not None:
                self._end(ctx, "error", f"body: {exc}")
            self._plain(request, exc.status, str(exc))
            return

        if ctx is None:
            await self._new_session(request, body, channel)
            return
        ctx.busy = True
        if token == ctx.token:
            ctx.keyed_by = "cookie"
        elif ctx.keyed_by is None:
            ctx.keyed_by = "connection"
        try:
            self.sessions.touch(ctx)
            if self._leases is not None:
                self._leases.renew(ctx)
            event = ctx.session.receive(body)
            await self._continue(request, ctx, event)
        except StoreError as exc:
            self._store_failed(request, ctx, exc, refused=False)
        finally:
            self._handled(ctx)

    async def _new_session(self, request: IRequest, body: bytes, channel: Any) -> None:
        session = Session(limits=self._limits)
        event = session.receive(body)
        if isinstance(event, ProtocolViolation):
            # Nothing was established; answer and keep nothing.
            self._send(request, event.reply)
            self._log_refusal(request, None, f"protocol: {event.error}")
            return
        if not isinstance(event, InformReceived):  # pragma: no cover - the machine forbids it
            self._plain(request, 400, "a session starts with an Inform")
            return
        try:
            record = inform_record(event.inform, now=self._clock.seconds(), remote=_remote(request))
        except InvalidArgument as exc:
            # Values the store cannot hold (NUL characters ...): the Inform is unusable.
            self._send(request, session.fail(m.Fault(8003, f"Inform: {exc}"[:256])))
            self._log_refusal(request, None, f"inform: {exc}")
            return
        is_tls = request.isSecure()
        ctx = SessionContext(
            token=self._token(),
            session=session,
            started=self._clock.seconds(),
            remote=_remote(request),
            channel=channel,
            is_tls=is_tls,
        )
        if self._auth is not None:
            try:
                decision = await self._auth.authenticate(
                    method="POST",
                    uri=request.uri.decode("latin-1"),
                    authorization=[
                        v.decode("latin-1")
                        for v in request.requestHeaders.getRawHeaders(b"authorization", [])
                    ],
                    is_tls=is_tls,
                    peer_certificate=_peer_certificate(request),
                    device_id=record.device_id,
                    serial_number=record.serial_number,
                )
            except StoreError as exc:
                self._store_failed(request, None, exc, refused=True, device_id=record.device_id)
                return
            if not decision.ok:
                for name, value in decision.headers:
                    request.responseHeaders.addRawHeader(name.encode(), value.encode())
                self._plain(request, decision.status, "authentication required"
                            if decision.status == 401 else "forbidden")
                self._log_refusal(request, record.device_id, f"auth: {decision.reason}",
                                  level="info" if decision.reason == "no credentials" else "warn")
                return
            ctx.authenticated_as = decision.scheme
        if _finished(request):
            return  # the connection closed meanwhile: nobody to answer, nothing to keep
        try:
            self.sessions.open(ctx)
        except CapacityExceeded:
            self._busy(request)
            self._log_refusal(request, record.device_id, "busy: session limit reached", status=503)
            return
        if not self.sessions.claim_device(ctx, record.device_id):
            self.sessions.close(ctx, "refused")
            self._busy(request)
            self._log_refusal(request, record.device_id, "busy: device already in a session",
                              status=503)
            return
        ctx.busy = True
        try:
            if self._leases is not None and not await self._claim_lease(request, ctx):
                return
            # The InformResponse only once the Inform is committed (TR-069 A.3.3.1: the CPE
            # then drops its events); a store failure up to there is a 503, see the module doc.
            hook = getattr(self._provisioner, "inform_reads", None)
            reads = hook(record.device_id) if hook is not None else ()
            if reads:
                # Read with the Inform's commit, in the same store hop (store/deferred.py).
                ctx.inform_reads = await self._store.record_inform(record, reads=reads)
            else:
                await self._store.record_inform(record)
            await self._provisioner.session_started(ctx)
            # IRequest.addCookie omits httpOnly, which twisted.web's Request takes.
            request.addCookie(COOKIE_NAME, ctx.token.encode(), path=b"/", httpOnly=True,  # type: ignore[call-arg]
                              secure=is_tls)
            self._send(request, session.respond(
                m.InformResponse(max_envelopes=1),
                use_version=_use_version(event.envelope.supported_versions),
            ))
            ctx.cookie_sent = not getattr(request, "_disconnected", False)
        except StoreError as exc:
            self._store_failed(request, ctx, exc, refused=True)
        finally:
            self._handled(ctx)

    async def _claim_lease(self, request: IRequest, ctx: SessionContext) -> bool:
        """Take the device's lease across nodes; False when the session cannot go on (the
        request is answered)."""
        assert self._leases is not None
        holder = await self._leases.claim(ctx)  # a StoreError: the caller answers 503
        if holder is not None:
            self.sessions.close(ctx, "refused")
            self._busy(request)
            self._log_refusal(request, ctx.device_id, f"busy: device in a session on node {holder}",
                              status=503)
            return False
        if self.sessions.find(ctx.token, None) is not ctx:
            # The session timed out while the store answered: the lease is no longer wanted.
            self._leases.release(ctx)
            self._busy(request)
            return False
        return True

    async def _continue(self, request: IRequest, ctx: SessionContext, event: Any) -> None:
        if isinstance(event, ProtocolViolation):
            self._send(request, event.reply)
            self._end(ctx, "error", f"protocol: {event.error}")
            return
        if isinstance(event, InformReceived):  # pragma: no cover - the machine forbids it
            self._plain(request, 400, "second Inform in one session")
            self._end(ctx, "error", "second Inform")
            return
        if isinstance(event, CpeRequest):
            await self._cpe_request(ctx, event.message)
            self._send(request, ctx.session.answer_default(event.message))
            return
        if isinstance(event, CpeResponse):
            await self._provisioner.handle_response(ctx, event.request, event.response)
        elif isinstance(event, CpeFault):
            ctx.faults.append(event.fault.code)
            await self._provisioner.handle_response(ctx, event.request, event.fault)
        elif not isinstance(event, CpeEmptyPost):  # pragma: no cover
            raise AssertionError(f"unexpected session event {event!r}")
        nxt = await self._provisioner.next_request(ctx) if ctx.session.can_send_request else None
        if nxt is None:
            out = ctx.session.finish()
            released = self._end(ctx, "done", None)
            if released is not None:
                # The lease is free before the CPE hears that the session is over: its next
                # session may reach another node at once (TR-069 3.7.1.5 refusals otherwise).
                await released
            self._send(request, out)
            return
        ctx.rpcs.append(type(nxt).__name__)
        # Once a request may change the device, the values read with its Inform are stale.
        ctx.inform_reads = None
        self._send(request, ctx.session.send_request(nxt))

    async def _cpe_request(self, ctx: SessionContext, message: Any) -> None:
        ctx.rpcs.append(type(message).__name__)
        if isinstance(message, (m.TransferComplete, m.AutonomousTransferComplete)):
            # TR-069 A.3.3.2: record the outcome; "0001-01-01T00:00:00Z" (unknown) stays None.
            fault = message.fault
            await self._store.call(
                "record_transfer_complete",
                ctx.device_id,
                getattr(message, "command_key", ""),
                fault.code,
                fault.string,
                _aware(getattr(message, "start_time", None)),
                _aware(getattr(message, "complete_time", None)),
            )
            # The transfer's outcome (a job's Download or Upload, told by its CommandKey) is
            # committed before the TransferCompleteResponse: the CPE repeats an
            # unacknowledged TransferComplete (A.3.3.2), so nothing is lost to a crash.
            hook = getattr(self._provisioner, "transfer_complete", None)
            if hook is not None and isinstance(message, m.TransferComplete):
                await hook(ctx, message)

    # -- endings and answers ------------------------------------------------------------

    def _store_failed(self, request: IRequest, ctx: SessionContext | None, exc: StoreError, *,
                      refused: bool, device_id: str | None = None) -> None:
        """The store failed on the session's path: 503 + Retry-After (module doc). Before
        the InformResponse (``refused``) the session is refused; after it, it ends in
        error. Either way nothing of it was acknowledged, and an outage is logged once
        (server/outages.py), not once per session."""
        detail = f"store: {exc}"
        if ctx is None or refused:
            if ctx is not None:
                device_id = ctx.device_id
                if self.sessions.close(ctx, "refused"):
                    if self._leases is not None:
                        self._leases.release(ctx)
                    d = Deferred.fromCoroutine(self._provisioner.session_ended(ctx, "refused"))
                    d.addErrback(lambda f: log.failure("provisioner session_ended failed", f))
            level = "debug" if isinstance(exc, StoreUnavailable) else "warn"
            self._log_refusal(request, device_id, detail, level=level, status=503)
            refused_hook = getattr(self._provisioner, "session_refused", None)
            if refused_hook is not None and device_id is not None:
                refused_hook(device_id)
        else:
            self._end(ctx, "error", detail, status=503)
        self._busy(request, "the ACS cannot use its database now, retry later")

    def _end(self, ctx: SessionContext, outcome: str, detail: str | None,
             status: int | None = None) -> Deferred[None] | None:
        """Close the session; the Deferred of its lease release (None without a lease)."""
        if not self.sessions.close(ctx, outcome):
            return None
        released = self._leases.release(ctx) if self._leases is not None else None
        self._log_session(ctx, detail, status)
        d = Deferred.fromCoroutine(self._provisioner.session_ended(ctx, ctx.outcome or outcome))
        d.addErrback(lambda f: log.failure("provisioner session_ended failed", f))
        return released

    def _expired(self, ctx: SessionContext) -> None:
        if self._leases is not None:
            self._leases.release(ctx)
        self._log_session(ctx, "idle timeout")
        d = Deferred.fromCoroutine(self._provisioner.session_ended(ctx, "timeout"))
        d.addErrback(lambda f: log.failure("provisioner session_ended failed", f))

    def _log_session(self, ctx: SessionContext, detail: str | None, status: int | None = None) -> None:
        inform = ctx.inform
        entry = {
            "device": ctx.device_id,
            "remote": ctx.remote,
            "events": list(inform.event_codes) if inform is not None else [],
            "rpcs": list(ctx.rpcs),
            "faults": list(ctx.faults),
            "outcome": ctx.outcome,
            "auth": ctx.authenticated_as,
            "duration_ms": round((self._clock.seconds() - ctx.started) * 1000, 1),
        }
        if detail:
            entry["detail"] = detail
        if status is not None:
            entry["status"] = status  # what the session's last request was answered with
        # The phone as its label names it (serial, model); the device id stays in "device".
        ident = inform.device_id if inform is not None else None
        label = (device_label(ident.serial_number, ident.product_class) if ident is not None
                 else printable(ctx.device_id or ctx.remote or "?"))
        log.info(
            "session {label} {outcome} events={events} rpcs={rpcs} {duration_ms}ms",
            session=entry,
            label=label,
            **entry,
        )
        if self._observer is not None:
            self._observer(entry)

    def _log_refusal(self, request: IRequest, device_id: str | None, reason: str,
                     level: str = "warn", status: int | None = None) -> None:
        emit = {"warn": log.warn, "info": log.info}.get(level, log.debug)
        remote = _remote(request)
        # One line each for the first refusals of an address per window, then a summary.
        self._refusals.refused(remote, _refusal_key(reason), lambda: emit(
            "refused {label} from {remote}: {reason}", device=device_id, label=label_of(device_id),
            remote=remote, reason=printable(reason)))
        if self._observer is not None:
            entry: dict[str, Any] = {"device": device_id, "remote": _remote(request),
                                     "outcome": "refused", "detail": reason}
            if status is not None:
                entry["status"] = status
            self._observer(entry)

    def _send(self, request: IRequest, out: Outgoing) -> None:
        if _finished(request):
            return
        request.setResponseCode(out.status)
        for name, value in out.headers:
            request.setHeader(name.encode(), value.encode())
        # Content-Length rather than chunked transfer coding: one write of the whole answer,
        # no chunk framing (less CPU per exchange, bench/ figure 2), and the simplest framing
        # for CPE HTTP stacks.
        request.setHeader(b"Content-Length", b"%d" % len(out.body))
        if out.body:
            request.write(out.body)
        request.finish()

    def _plain(self, request: IRequest, status: int, text: str) -> None:
        if _finished(request):
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        body = text.encode() + b"\n"
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def _busy(self, request: IRequest, text: str = "busy, retry later") -> None:
        request.setHeader(b"Retry-After", str(self._retry_after).encode())
        self._plain(request, 503, text)

    def _crashed(self, failure: Failure, request: IRequest) -> None:
        log.failure("CWMP request failed", failure)
        ctx = self.sessions.find(_cookie(request), getattr(request, "channel", None))
        if ctx is not None:
            self._end(ctx, "error", "internal error")
        if not _finished(request):
            self._plain(request, 500, "internal error")


def _refusal_key(reason: str) -> str:
    """The reason of a refusal as its summary line counts it: free details (node names,
    certificate names, protocol errors quoting the input) left out."""
    for prefix, key in (("auth: client certificate", "auth: client certificate of another device"),
                        ("busy: device in a session on node", "busy: device in a session on another node"),
                        ("protocol:", "protocol error"), ("inform:", "unusable Inform")):
        if reason.startswith(prefix):
            return key
    return reason[:60]


# CWMP versions this ACS speaks (TR-069 Amendment 5, section 3.4.2.x: the ACS answers a
# 1.4 CPE's SupportedCWMPVersions with the UseCWMPVersion it picks).
ACS_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")


def _use_version(supported: str | None) -> str | None:
    if not supported:
        return None
    offered = {v.strip() for v in supported.split(",")}
    common = [v for v in ACS_VERSIONS if v in offered]
    return common[-1] if common else None


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def _cookie(request: IRequest) -> str | None:
    raw = request.getCookie(COOKIE_NAME)
    return raw.decode("latin-1") if raw else None


def _header(request: IRequest, name: bytes) -> str | None:
    raw = request.getHeader(name)
    return raw.decode("latin-1") if raw else None


def _remote(request: IRequest) -> str | None:
    peer = request.getClientAddress()
    host = getattr(peer, "host", None)
    return str(host) if host is not None else None


def _finished(request: IRequest) -> bool:
    return bool(getattr(request, "finished", False) or getattr(request, "_disconnected", False))


def _peer_certificate(request: IRequest) -> x509.Certificate | None:
    transport = getattr(getattr(request, "channel", None), "transport", None)
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    try:
        cert = get()
    except Exception:  # noqa: BLE001 - no TLS or no certificate
        return None
    if cert is None:
        return None
    return cert.to_cryptography()

