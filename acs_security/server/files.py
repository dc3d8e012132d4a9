"""The file endpoint on the CWMP listener: each phone's cfg.xml (GET) and its uploads (PUT).

``/files/<id>.<expires>.<signature>/cfg.xml`` (files/tokens.py) is the only shape of a file
URL: any other path under ``/files/`` is 404, there is no listing, and no part of a path
is ever a file name (contents live in the store). A request is answered in this order:

1. the path is a file's and its signature is this server's, else 404 (nothing says why);
2. the URL has not expired (410), the file exists and its transfer is not over (410);
3. the method fits the file: GET/HEAD a download, PUT an upload (405 with Allow);
4. the phone proves itself: HTTP digest (RFC 7616) with *its own* CWMP credential when the
   file says ``digest`` (another phone's credentials, the shared one, none: 401 with a
   fresh challenge); a ``signed`` file's URL opens it once (a second GET: 403);
5. a download is served (``Cache-Control: no-store``: it may hold passwords); an upload is
   read with the data model (files/backups.py) and kept as a backup version, answered 2xx
   only once the store has committed it.

Every refusal is one log line (file id, device, reason: never a token or a credential) and
a count in ``acs_file_requests_total``. :class:`CwmpRoot` puts this resource in front of
the CWMP endpoint, which keeps answering every other path (phones' ACS URLs end in many
ways).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from acs_security.display import device_label
from acs_security.files.backups import read_config
from acs_security.files.tokens import FILES_PREFIX, FileSigner, parse_file_path
from acs_security.httpauth.digest import DigestVerifier
from acs_security.mapping import Catalogue, CfgXmlError, load_catalogue
from acs_security.mapping.errors import UnknownModelError
from acs_security.server.http import BodyError, decode_body
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import parse_device_id

__all__ = ["CwmpRoot", "FileResource"]

log = Logger(namespace="acs_security.files")
_METHODS = {"download": (b"GET", b"HEAD"), "upload": (b"PUT",)}


class _Refused(Exception):
    def __init__(self, status: int, outcome: str, text: str, reason: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.outcome = outcome
        self.text = text
        self.reason = reason
        self.headers = headers


class FileResource(Resource):
    """Serves and receives the files of transfers. Collaborators are constructor arguments:
    ``store`` (``call(name, ...)`` -> Deferred), ``clock`` (IReactorTime), the URL signer,
    a DigestVerifier, ``random_bytes`` for challenges; ``observe(method, outcome)`` counts."""

    isLeaf = True

    def __init__(self, *, store: Any, clock: Any, signer: FileSigner, verifier: DigestVerifier,
                 random_bytes: Callable[[int], bytes], catalogue: Catalogue | None = None,
                 backup_keep: int = 20, max_upload_bytes: int = 1024 * 1024,
                 observe: Callable[[str, str], None] | None = None) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._signer = signer
        self._verifier = verifier
        self._random = random_bytes
        self._catalogue = catalogue
        self._keep = backup_keep
        self._max_upload = max_upload_bytes
        self._observe = observe

    def render(self, request: IRequest) -> Any:
        d = Deferred.fromCoroutine(self._handle(request))
        d.addErrback(self._crashed, request)
        return server.NOT_DONE_YET

    async def _handle(self, request: IRequest) -> None:
        method = request.method
        try:
            status, outcome, headers, body = await self._answer(request)
        except _Refused as refused:
            self._count(method, refused.outcome)
            self._log_refusal(request, refused)
            self._send(request, refused.status, refused.text.encode() + b"\n", refused.headers)
            return
        self._count(method, outcome)
        self._send(request, status, body, headers, head=method == b"HEAD")

    async def _answer(self, request: IRequest) -> tuple[int, str, tuple[tuple[str, str], ...], bytes]:
        token = parse_file_path(request.path)
        if token is None or not self._signer.check(token):
            raise _Refused(404, "not_found", "no such file", "not a file URL of this server")
        now = self._clock.seconds()
        if token.expires <= now:
            raise _Refused(410, "expired", "this file URL has expired", f"file {token.file_id}: URL expired")
        rec = await self._store.call("get_file", token.file_id)
        if rec is None or rec.state not in ("offered", "fetched"):
            why = "no such file" if rec is None else f"its transfer is over ({rec.state})"
            raise _Refused(410, "gone", "this file is no longer offered", f"file {token.file_id}: {why}")
        allowed = _METHODS[rec.kind]
        if request.method not in allowed:
            raise _Refused(405, "bad_method", f"{request.method.decode('latin-1')[:10]} is not allowed here",
                           f"file {rec.id} ({rec.kind}): method {request.method.decode('latin-1')[:10]}",
                           (("Allow", ", ".join(m.decode() for m in allowed)),))
        # The device id holds its serial number and model (TR-069 3.4.4): no store read for them.
        try:
            _, product_class, serial = parse_device_id(rec.device_id)
        except InvalidArgument:  # pragma: no cover - device ids are the store's own
            product_class, serial = "", rec.device_id
        label = device_label(serial, product_class)
        if rec.auth == "digest":
            await self._check_digest(request, rec, serial, label)
        if request.method == b"HEAD":
            return 200, "served", self._file_headers(rec), b""
        if rec.kind == "download":
            result = await self._store.call("note_fetch", rec.id, now=_dt(now), single_use=rec.auth == "signed")
            if result == "used":
                raise _Refused(403, "used", "this file URL was used already",
                               f"file {rec.id} for {label}: single-use URL used again")
            if result != "ok":
                raise _Refused(410, "gone", "this file is no longer offered", f"file {rec.id}: over or expired")
            body = (rec.content or "").encode("utf-8")
            log.info("file {file} served to {label} ({size} bytes)", file=rec.id, label=label, size=len(body))
            return 200, "served", self._file_headers(rec), body
        device = await self._store.call("get_device", rec.device_id)
        if device is None:  # pragma: no cover - the row cascades with its device
            raise _Refused(410, "gone", "this upload place is no longer offered", f"file {rec.id}: device gone")
        return await self._receive(request, rec, device, label, now)

    async def _check_digest(self, request: IRequest, rec: Any, serial: str, label: str) -> None:
        credential = await self._store.call("find_cpe_credential", device_id=rec.device_id,
                                            serial_number=serial)
        own = credential if credential is not None and credential.key != "*" else None

        def lookup(username: str) -> str | None:
            return own.password if own is not None and username == own.username else None

        header = request.getHeader(b"authorization")
        result = self._verifier.verify(request.method.decode("latin-1"), request.uri.decode("latin-1"),
                                       header.decode("latin-1") if header else None, self._clock.seconds(), lookup)
        if result.ok:
            return
        challenge = self._verifier.challenge(self._clock.seconds(), self._random(16),
                                             stale=bool(getattr(result, "stale", False)))
        headers = tuple(("WWW-Authenticate", v) for v in challenge)
        why = "no credentials" if header is None else (
            "this phone has no credential of its own" if own is None else f"digest: {result.reason}")
        raise _Refused(401, "unauthorized", "authentication required", f"file {rec.id} for {label}: {why}",
                       headers)

    async def _receive(self, request: IRequest, rec: Any, device: Any, label: str, now: float
                       ) -> tuple[int, str, tuple[tuple[str, str], ...], bytes]:
        if rec.auth == "signed":
            result = await self._store.call("note_fetch", rec.id, now=_dt(now), single_use=True)
            if result != "ok":
                raise _Refused(403 if result == "used" else 410, result, "this upload URL was used already"
                               if result == "used" else "this upload place is no longer offered",
                               f"upload {rec.id} from {label}: single-use URL {result}")
        try:
            raw = request.content.read(self._max_upload + 1)
            data = decode_body(raw, _header(request, b"content-encoding"), self._max_upload)
            text = data.decode("utf-8")
        except BodyError as exc:
            raise _Refused(exc.status, "bad_body", str(exc), f"upload {rec.id} from {label}: {exc}") from None
        except UnicodeDecodeError:
            raise _Refused(400, "bad_body", "cfg.xml must be UTF-8",
                           f"upload {rec.id} from {label}: not UTF-8") from None
        cat = self._catalogue or load_catalogue()
        try:
            config = read_config(data, product_class=device.product_class,
                                 software_version=device.software_version, catalogue=cat)
        except CfgXmlError as exc:
            detail = f"unreadable cfg.xml at line {exc.line}, column {exc.column}"
            await self._store.call("finish_file", rec.id, state="failed", detail=detail)
            raise _Refused(400, "bad_body", detail, f"upload {rec.id} from {label}: {detail}") from None
        except UnknownModelError as exc:
            raise _Refused(400, "bad_body", str(exc), f"upload {rec.id} from {label}: {exc}") from None
        report = config.report()
        backup, new = await self._store.call("store_backup", device_id=rec.device_id, content=text, report=report,
                                             keep=self._keep, job_id=rec.job_id, file_id=rec.id, now=_dt(now))
        problems = len(report["unknown"]) + len(report["invalid"]) + len(report["absent"])
        log.info("upload {file} from {label}: backup version {version} ({what}, {n} element(s), "
                 "{problems} reported)", file=rec.id, label=label, version=backup.version,
                 what="new" if new else "unchanged", n=report["elements"], problems=problems)
        answer = f"backup version {backup.version} ({'new' if new else 'unchanged'})\n".encode()
        return (201 if new else 200), ("stored" if new else "unchanged"), (), answer

    @staticmethod
    def _file_headers(rec: Any) -> tuple[tuple[str, str], ...]:
        return (("Content-Type", "application/xml; charset=utf-8"), ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"), ("Content-Disposition", 'attachment; filename="cfg.xml"'))

    def _count(self, method: bytes, outcome: str) -> None:
        if self._observe is not None:
            self._observe(method.decode("latin-1") if method in (b"GET", b"HEAD", b"PUT") else "other", outcome)

    def _log_refusal(self, request: IRequest, refused: _Refused) -> None:
        peer = request.getClientAddress()
        # A phone's first GET without credentials is the normal start of digest: not a warning.
        first_try = refused.outcome == "unauthorized" and not request.getHeader(b"authorization")
        emit = log.info if first_try else log.warn
        emit("file request refused from {remote}: {reason} ({status})", remote=getattr(peer, "host", None),
             reason=refused.reason, status=refused.status)

    @staticmethod
    def _send(request: IRequest, status: int, body: bytes, headers: tuple[tuple[str, str], ...],
              head: bool = False) -> None:
        if getattr(request, "finished", False) or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(status)
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names:
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        for name, value in headers:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        request.setHeader(b"Content-Length", b"%d" % len(body))
        if body and not head:
            request.write(body)
        request.finish()

    def _crashed(self, failure: Failure, request: IRequest) -> None:
        log.failure("file request failed", failure)
        self._count(request.method, "error")
        self._send(request, 500, b"internal error\n", ())


class CwmpRoot(Resource):
    """The CWMP listener's root: ``/files/`` to the file endpoint (GET, HEAD, PUT), every
    other request to the CWMP endpoint, which answers at every path."""

    isLeaf = True

    def __init__(self, cwmp: Resource, files: Resource | None) -> None:
        super().__init__()
        self.cwmp = cwmp
        self.files = files

    def render(self, request: IRequest) -> Any:
        if (self.files is not None and request.method in (b"GET", b"HEAD", b"PUT")
                and request.path.startswith(FILES_PREFIX.encode())):
            return self.files.render(request)
        return self.cwmp.render(request)


def _header(request: IRequest, name: bytes) -> str | None:
    raw = request.getHeader(name)
    return raw.decode("latin-1") if raw else None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
