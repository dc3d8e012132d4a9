"""The CPE side of one CWMP session, without I/O (TR-069 3.7.1).

:class:`CpeSession` builds the Inform, then consumes each HTTP answer of the ACS and says
what to POST next (:class:`HttpPost`) or that the session is over (:class:`SessionEnd`).
The HTTP layer (``sim/fleet.py``) only moves bytes. Handled here:

* cookies: every ``Set-Cookie`` is kept and returned in ``Cookie`` (TR-069 3.4.5);
* a 401 digest challenge is answered with Device.ManagementServer.Username/Password
  (RFC 7616 via ``acs_security.httpauth``; basic only over HTTPS), at most twice a session;
* 503 with Retry-After ends the session with the delay the ACS asked for (TR-069 3.7.1.5);
* InformResponse delivers the events (RetryCount resets), then pending TransferCompletes,
  then the empty POST; each ACS request is answered by :func:`acs_security.sim.rpc.answer`
  with the request's ``cwmp:ID``; an empty answer or HTTP 204 ends the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from acs_security.connreq.policy import parse_retry_after
from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import CwmpProtocolError, MessageValidationError
from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_2
from acs_security.cwmp.soap import CONTENT_TYPE, build_envelope, parse_envelope
from acs_security.httpauth import (
    AuthHeaderError,
    basic_authorization,
    digest_authorization,
    parse_challenges,
)
from acs_security.sim.phone import Phone
from acs_security.sim.rpc import answer

__all__ = ["CpeSession", "HttpPost", "HttpReply", "SessionEnd", "retry_wait_range"]

_MAX_AUTH = 2


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What the ACS answered one POST with (header values as text)."""

    status: int
    body: bytes = b""
    set_cookies: tuple[str, ...] = ()
    www_authenticate: tuple[str, ...] = ()
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class HttpPost:
    """The next POST: its body and headers; ``answers_acs`` when it carries the answer to
    an ACS request (where a flaky phone drops the connection)."""

    body: bytes
    headers: tuple[tuple[str, str], ...]
    answers_acs: bool = False


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """The session is over: ``ok``, else why (no secret in it) and the ACS's Retry-After."""

    ok: bool
    reason: str = ""
    retry_after: float | None = None
    informed: bool = False


def retry_wait_range(retry_count: int, minimum_wait: float = 5.0,
                     multiplier: int = 2000) -> tuple[float, float]:
    """Seconds to wait before session retry ``retry_count`` (1 = first retry): TR-069
    3.2.1.1 Table 3, ``m*(k/1000)^(n-1)`` to ``m*(k/1000)^n``, ``n`` capped at 10 (with the
    defaults m = 5 s, k = 2000: 5-10 s, 10-20 s, ..., 2560-5120 s).

    Raises:
        ValueError: retry_count below 1, minimum_wait not positive, multiplier below 1000.
    """
    if retry_count < 1:
        raise ValueError("retry_count counts from 1")
    if minimum_wait <= 0 or multiplier < 1000:
        raise ValueError("minimum_wait must be positive and multiplier at least 1000")
    n = min(retry_count, 10)
    factor = multiplier / 1000
    return minimum_wait * factor ** (n - 1), minimum_wait * factor ** n


def phone_namespace(phone: Phone) -> str:
    """The CWMP namespace the phone speaks: 1.2 unless CWMP V1.2 Support = No (Cisco
    ``CWMP_V1.2_Support``, default Yes), then 1.0."""
    return CWMP_1_0 if phone.lookup("Device.X_CISCO_TR069.CWMPV12Support") == "No" else CWMP_1_2


class CpeSession:
    """One session of one phone. Not reusable: make a new one per session.

    ``cnonce()`` supplies the digest client nonce (the fleet's seeded randomness).
    """

    __slots__ = ("phone", "events", "_uri", "_https", "_cnonce", "_cookies", "_auth_tries",
                 "_last", "_state", "_namespace", "_ids", "informed", "rpcs", "faults")

    def __init__(self, phone: Phone, *, now: float, url: str, cnonce: Callable[[], str]) -> None:
        """Raises MessageValidationError when the phone's identity does not fit an Inform
        (a serial over 64 characters)."""
        self.phone = phone
        self.events = phone.inform_events()
        parts = urlsplit(url)
        self._uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._https = parts.scheme == "https"
        self._cnonce = cnonce
        self._cookies: dict[str, str] = {}
        self._auth_tries = 0
        self._state = "inform"
        self._namespace = phone_namespace(phone)
        self._ids = 0
        #: True once the ACS answered the Inform.
        self.informed = False
        #: The ACS requests answered (RPC names) and the fault codes answered with.
        self.rpcs: list[str] = []
        self.faults: list[int] = []
        self._last = self._post(self._inform(now))

    @property
    def state(self) -> str:
        """inform, transfer, empty (empty POST sent), acs (answer sent) or done."""
        return self._state

    def start(self) -> HttpPost:
        """The first POST: the Inform."""
        return self._last

    def _inform(self, now: float) -> bytes:
        phone = self.phone
        inform = m.Inform(
            device_id=m.DeviceId(phone.value("Device.DeviceInfo.Manufacturer"),
                                 phone.value("Device.DeviceInfo.ManufacturerOUI"),
                                 phone.table.product_class, phone.serial),
            events=self.events,
            max_envelopes=1,
            current_time=datetime.fromtimestamp(now, UTC).replace(microsecond=0),
            retry_count=phone.retry_count,
            parameters=phone.inform_parameters(),
        )
        self._ids += 1
        return build_envelope(inform, namespace=self._namespace, cwmp_id=str(self._ids))

    def _headers(self, body: bytes, authorization: str | None = None) -> tuple[tuple[str, str], ...]:
        headers: list[tuple[str, str]] = []
        if body:
            headers.append(("Content-Type", CONTENT_TYPE))
        if self._cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self._cookies.items())))
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return tuple(headers)

    def _post(self, body: bytes, answers_acs: bool = False) -> HttpPost:
        return HttpPost(body, self._headers(body), answers_acs)

    def _keep_cookies(self, set_cookies: tuple[str, ...]) -> None:
        for header in set_cookies:
            pair = header.split(";", 1)[0]
            name, sep, value = pair.partition("=")
            if sep and name.strip():
                self._cookies[name.strip()] = value.strip()

    def _end(self, ok: bool, reason: str = "", retry_after: float | None = None) -> SessionEnd:
        self._state = "done"
        return SessionEnd(ok, reason, retry_after, self.informed)

    def receive(self, reply: HttpReply, now: float) -> HttpPost | SessionEnd:
        """Consume the ACS's answer to the last POST; return the next POST or the end.

        Raises:
            RuntimeError: called after the session ended.
        """
        if self._state == "done":
            raise RuntimeError("the session is over")
        self._keep_cookies(reply.set_cookies)
        status = reply.status
        if status == 401:
            return self._authenticate(reply)
        if status == 503:
            return self._end(False, "ACS busy (503)", parse_retry_after(reply.retry_after, now))
        if status not in (200, 204):
            return self._end(False, f"ACS answered HTTP {status}")
        if status == 204 or not reply.body.strip():
            return self._empty_answer()
        try:
            envelope = parse_envelope(reply.body)
        except CwmpProtocolError as exc:
            if exc.fault_code is not None and self._state in ("empty", "acs"):
                # CWMP content the phone cannot use: 9003 Invalid arguments, go on.
                return self._reply(m.Fault(9003, str(exc)[:256]), exc.namespace, exc.cwmp_id)
            return self._end(False, f"unusable answer from the ACS: {str(exc)[:120]}")
        if envelope is None or envelope.message is None:
            return self._empty_answer()
        message = envelope.message
        if self._state == "inform":
            return self._after_inform(message)
        if self._state == "transfer":
            return self._after_transfer(message)
        if type(message) in m.ACS_REQUEST_TYPES or isinstance(message, m.UnknownMessage):
            self.rpcs.append(message.name if isinstance(message, m.UnknownMessage)
                             else type(message).__name__)
            return self._reply(answer(self.phone, message, now), envelope.namespace,
                               envelope.cwmp_id)
        return self._end(False, f"unexpected {type(message).__name__} from the ACS")

    def _empty_answer(self) -> SessionEnd:
        if self._state in ("inform", "transfer"):
            return self._end(False, f"empty answer to the {self._state.title()} request")
        # TR-069 3.7.1.4: the ACS has nothing more and the phone sent its empty POST.
        return self._end(True)

    def _authenticate(self, reply: HttpReply) -> HttpPost | SessionEnd:
        if self._auth_tries >= _MAX_AUTH:
            return self._end(False, "the ACS refused the phone's credentials (401)")
        self._auth_tries += 1
        username, password = self.phone.acs_credentials()
        try:
            schemes = {c.scheme for c in parse_challenges(list(reply.www_authenticate))}
            if "digest" in schemes:
                authorization = digest_authorization(
                    list(reply.www_authenticate), "POST", self._uri, username, password,
                    cnonce=self._cnonce(), nc=1)
            elif "basic" in schemes and self._https:
                authorization = basic_authorization(username, password)
            else:
                return self._end(False, "401 without a challenge the phone answers "
                                        "(digest, or basic over HTTPS)")
        except (AuthHeaderError, ValueError) as exc:
            return self._end(False, f"unusable 401 challenge: {exc}")
        body = self._last.body
        self._last = HttpPost(body, self._headers(body, authorization), self._last.answers_acs)
        return self._last

    def _after_inform(self, message: m.Message) -> HttpPost | SessionEnd:
        if isinstance(message, m.Fault):
            return self._end(False, f"the ACS answered the Inform with fault {message.code}")
        if not isinstance(message, m.InformResponse):
            return self._end(False, f"{type(message).__name__} where InformResponse belongs")
        self.informed = True
        self.phone.inform_delivered(self.events)
        return self._next_cpe_request()

    def _after_transfer(self, message: m.Message) -> HttpPost | SessionEnd:
        if not isinstance(message, m.TransferCompleteResponse):
            what = f"fault {message.code}" if isinstance(message, m.Fault) else type(message).__name__
            return self._end(False, f"the ACS answered TransferComplete with {what}")
        self.phone.transfer_delivered()
        return self._next_cpe_request()

    def _next_cpe_request(self) -> HttpPost:
        transfers = self.phone.transfers
        if transfers:
            self._state = "transfer"
            self._ids += 1
            body = build_envelope(transfers[0], namespace=self._namespace, cwmp_id=str(self._ids))
        else:
            self._state = "empty"
            body = b""
        self._last = self._post(body)
        return self._last

    def _reply(self, message: m.Message, namespace: str | None, cwmp_id: str | None) -> HttpPost:
        self._state = "acs"
        if isinstance(message, m.Fault):
            self.faults.append(message.code)
        try:
            body = build_envelope(message, namespace=namespace or self._namespace, cwmp_id=cwmp_id)
        except MessageValidationError:
            body = build_envelope(m.Fault(9002), namespace=self._namespace, cwmp_id=cwmp_id)
        self._last = self._post(body, answers_acs=True)
        return self._last
