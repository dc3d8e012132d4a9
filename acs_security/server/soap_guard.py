"""The SOAP face's edge (server/soap.py): the WSGI middleware that authenticates a request and
checks its form before spyne parses anything, the refusal reports from the WSGI threads, and
the filter that keeps spyne from logging a traceback for every fault it answers."""

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

from acs_security.display import printable
from acs_security.server.auth import Principal, TokenAuthenticator, Unauthorized
from acs_security.server.http import BodyError, decode_body
from acs_security.server.refusals import RefusalLog, api_refusal_key

__all__ = ["PRINCIPAL", "SOAP_LIMITS", "SoapGuard", "SoapRefusals", "quiet_spyne_faults"]

log = Logger(namespace="acs_security.soap")
#: The WSGI environ key under which the guard leaves the authenticated principal.
PRINCIPAL = "acs.principal"


class SoapRefusals:
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


#: Limits of a SOAP request's XML (cwmp/soap.py parse_xml checks them before spyne parses):
#: the operations take a few strings and numbers, 5 elements deep at most (Envelope, Body,
#: operation, array, item).
SOAP_LIMITS = dict(max_depth=16, max_elements=10_000, max_attributes=10_000)


class SoapGuard:
    """WSGI middleware in front of spyne: the token check (401 + challenge when it fails),
    then the request's form, refused with a SOAP 1.1 Client fault before spyne parses
    anything (WS-I Basic Profile 1.1: R1113 400 for a malformed request, R1115 415 for a
    wrong Content-Type): Content-Type text/xml (SOAP 1.1 section 6.1.1), a supported
    Content-Encoding, a body, and XML without DOCTYPE or entity declarations, within
    :data:`SOAP_LIMITS` (the hostile-XML checks of the CWMP endpoint, cwmp/soap.py)."""

    def __init__(self, app: Any, reactor: Any, authenticator: TokenAuthenticator, *,
                 refusals: SoapRefusals, max_body_bytes: int) -> None:
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
        environ[PRINCIPAL] = principal
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


def quiet_spyne_faults() -> None:
    # spyne's loggers are module-level in spyne: the filter is installed once per process.
    for name in ("spyne.application", "spyne.application.client", "spyne.server._base", "spyne.server.wsgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropFaults) for f in logger.filters):
            logger.addFilter(_DropFaults())
