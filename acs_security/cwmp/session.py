"""The CWMP session state machine, sans I/O (TR-069 3.7.1 session procedures).

One :class:`Session` per CWMP session. The HTTP layer feeds each POST body to
:meth:`Session.receive`, gets an :data:`Event`, and answers that POST with the
:class:`Outgoing` of exactly one of :meth:`~Session.respond`, :meth:`~Session.answer_default`,
:meth:`~Session.send_request` or :meth:`~Session.finish` (or with the ``reply`` of a
:class:`ProtocolViolation`). The session never does I/O and reads no clock; ``cwmp:ID`` values
come from a counter it owns.

Every transition is in :data:`TRANSITIONS`, ``{state: {event kind: next state}}``; an input
whose kind has no entry for the current state is a protocol violation. The flow is:

* ``AWAIT_INFORM`` -(Inform)-> ``INFORM_RECEIVED`` -(InformResponse)-> ``CPE_REQUESTS``.
* ``CPE_REQUESTS``: the CPE sends its requests (TransferComplete, GetRPCMethods, ...), each
  answered at once (``CPE_REQUEST_RECEIVED`` -> ``CPE_REQUESTS``), then its empty POST
  -> ``ACS_REQUESTS``. When the ACS's last answer carried HoldRequests=true the state is
  ``CPE_REQUESTS_HELD`` instead, where only the empty POST is allowed (TR-069 Annex A,
  HoldRequests header: the CPE sends no request while it holds).
* ``ACS_REQUESTS``: the ACS sends one request at a time (-> ``AWAIT_RESPONSE``); the CPE's next
  POST carries the response or a ``cwmp:Fault`` (-> ``ACS_REQUESTS``). No pipelining: a CPE
  request while a response is awaited is a violation. ``finish`` answers HTTP 204 -> ``DONE``.
* A violation (parse error, message out of order, response to nothing, wrong ``cwmp:ID``,
  anything after ``DONE``) gives a :class:`ProtocolViolation` whose ``reply`` is a CWMP fault
  8003 (HTTP 200: TR-069 3.4.1 sends every CWMP content, faults included, with 200 OK) or a bare
  HTTP 400 for a body that is not a usable envelope; the state becomes ``ERROR`` and the HTTP
  layer closes the session after sending the reply.

A ``cwmp:Fault`` from the CPE answering an ACS request is not a violation: it is a
:class:`CpeFault` and the session goes on. HoldRequests sent by a CPE has no meaning (the header
is the ACS's) and is ignored. A response without a ``cwmp:ID`` is accepted (some CPE stacks
omit the header); one with a different ID is a violation. The ACS's MaxEnvelopes is 1: one
envelope per HTTP body (the codec refuses a body holding several); whatever MaxEnvelopes the
CPE announces, the ACS sends one envelope per HTTP response, which every value allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import CwmpProtocolError, MessageValidationError, SessionStateError
from acs_security.cwmp.faults import FaultCode
from acs_security.cwmp.namespaces import CWMP_1_0
from acs_security.cwmp.soap import (
    CONTENT_TYPE,
    DEFAULT_LIMITS,
    Envelope,
    Limits,
    build_envelope,
    parse_envelope,
)

__all__ = [
    "ACS_RPC_METHODS",
    "CpeEmptyPost",
    "CpeFault",
    "CpeRequest",
    "CpeResponse",
    "Event",
    "InformReceived",
    "Kind",
    "Outgoing",
    "ProtocolViolation",
    "Session",
    "State",
    "TRANSITIONS",
]

#: The methods this ACS answers (GetRPCMethodsResponse); TR-069 requires Inform,
#: GetRPCMethods, TransferComplete and AutonomousTransferComplete on the ACS.
ACS_RPC_METHODS: tuple[str, ...] = (
    "Inform", "GetRPCMethods", "TransferComplete", "AutonomousTransferComplete",
    "RequestDownload", "Kicked",
)


class State(Enum):
    AWAIT_INFORM = "AWAIT_INFORM"
    INFORM_RECEIVED = "INFORM_RECEIVED"
    CPE_REQUESTS = "CPE_REQUESTS"
    CPE_REQUESTS_HELD = "CPE_REQUESTS_HELD"
    CPE_REQUEST_RECEIVED = "CPE_REQUEST_RECEIVED"
    ACS_REQUESTS = "ACS_REQUESTS"
    AWAIT_RESPONSE = "AWAIT_RESPONSE"
    DONE = "DONE"
    ERROR = "ERROR"


class Kind(Enum):
    """What happened: CPE input (``receive``) or an ACS action."""

    INFORM = "Inform"
    CPE_REQUEST = "CPE request"
    CPE_EMPTY_POST = "empty POST"
    CPE_RESPONSE = "CPE response"
    CPE_FAULT = "CPE fault"
    ACS_ONLY = "ACS message sent by the CPE"
    RESPOND = "ACS answer"
    RESPOND_HOLD = "ACS answer with HoldRequests"
    RESPOND_FAULT = "ACS fault answer"
    SEND_REQUEST = "ACS request"
    FINISH = "ACS end of session"
    ABORT = "ACS abort with a fault"


S, K = State, Kind
#: Every allowed transition. Anything missing is refused (CPE input -> ERROR with a
#: ProtocolViolation; ACS action -> SessionStateError, state unchanged).
TRANSITIONS: dict[State, dict[Kind, State]] = {
    S.AWAIT_INFORM: {K.INFORM: S.INFORM_RECEIVED},
    # An Inform answered with a fault (8001, 8004, 8005) ends the session.
    S.INFORM_RECEIVED: {K.RESPOND: S.CPE_REQUESTS, K.RESPOND_HOLD: S.CPE_REQUESTS_HELD,
                        K.RESPOND_FAULT: S.DONE, K.ABORT: S.ERROR},
    S.CPE_REQUESTS: {K.CPE_REQUEST: S.CPE_REQUEST_RECEIVED, K.CPE_EMPTY_POST: S.ACS_REQUESTS},
    S.CPE_REQUESTS_HELD: {K.CPE_EMPTY_POST: S.ACS_REQUESTS},
    S.CPE_REQUEST_RECEIVED: {K.RESPOND: S.CPE_REQUESTS, K.RESPOND_HOLD: S.CPE_REQUESTS_HELD,
                             K.RESPOND_FAULT: S.CPE_REQUESTS, K.ABORT: S.ERROR},
    # ABORT: the ACS cannot go on (store down, ...) and answers the pending POST with a fault.
    S.ACS_REQUESTS: {K.SEND_REQUEST: S.AWAIT_RESPONSE, K.FINISH: S.DONE, K.ABORT: S.ERROR},
    S.AWAIT_RESPONSE: {K.CPE_RESPONSE: S.ACS_REQUESTS, K.CPE_FAULT: S.ACS_REQUESTS},
    S.DONE: {},
    S.ERROR: {},
}
del S, K

#: The kinds that come from the CPE (fed to ``receive``).
CPE_KINDS = frozenset({Kind.INFORM, Kind.CPE_REQUEST, Kind.CPE_EMPTY_POST, Kind.CPE_RESPONSE,
                       Kind.CPE_FAULT, Kind.ACS_ONLY})

_WHY: dict[State, str] = {
    State.AWAIT_INFORM: "a session starts with an Inform",
    State.INFORM_RECEIVED: "the ACS has not answered the previous message (no pipelining)",
    State.CPE_REQUESTS: "the ACS expects a CPE request or the empty POST",
    State.CPE_REQUESTS_HELD: "the ACS set HoldRequests, so the CPE must send its empty POST",
    State.CPE_REQUEST_RECEIVED: "the ACS has not answered the previous message (no pipelining)",
    State.ACS_REQUESTS: "the ACS has not answered the previous message (no pipelining)",
    State.AWAIT_RESPONSE: "the ACS awaits the response to its request",
    State.DONE: "the session has ended",
    State.ERROR: "the session has failed",
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What to send back on the HTTP connection: status, body and headers."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if type(self.status) is not int or not 100 <= self.status <= 599:
            raise MessageValidationError(f"Outgoing: {self.status!r} is not an HTTP status")
        if not isinstance(self.body, bytes):
            raise MessageValidationError("Outgoing: body must be bytes")
        if not isinstance(self.headers, tuple) or not all(
            isinstance(h, tuple) and len(h) == 2 and all(isinstance(x, str) for x in h)
            for h in self.headers
        ):
            raise MessageValidationError("Outgoing: headers must be a tuple of (name, value)")


@dataclass(frozen=True, slots=True)
class InformReceived:
    inform: m.Inform
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class CpeRequest:
    """A CPE request to answer (``respond`` or ``answer_default``); an
    :class:`~acs_security.cwmp.messages.UnknownMessage` is answered with fault 8000."""

    message: m.Message
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class CpeResponse:
    request: m.Message
    response: m.Message


@dataclass(frozen=True, slots=True)
class CpeFault:
    """The CPE refused an ACS request; the session goes on."""

    request: m.Message
    fault: m.Fault


@dataclass(frozen=True, slots=True)
class CpeEmptyPost:
    """The CPE has no more requests: the ACS may now send its own, or finish."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The CPE broke the protocol; send ``reply``, then close. The session is in ERROR."""

    error: CwmpProtocolError
    reply: Outgoing


Event = InformReceived | CpeRequest | CpeResponse | CpeFault | CpeEmptyPost | ProtocolViolation

_XML_HEADERS = (("Content-Type", CONTENT_TYPE),)
_TEXT_HEADERS = (("Content-Type", "text/plain; charset=utf-8"),)


def _kind_of(envelope: Envelope | None) -> Kind:
    if envelope is None or envelope.message is None:
        # An envelope with an empty Body is taken as the empty POST too.
        return Kind.CPE_EMPTY_POST
    message = envelope.message
    if type(message) is m.Inform:
        return Kind.INFORM
    if type(message) is m.Fault:
        return Kind.CPE_FAULT
    if type(message) in m.RESPONSE_TYPES:
        return Kind.CPE_RESPONSE
    if type(message) in m.CPE_REQUEST_TYPES or type(message) is m.UnknownMessage:
        return Kind.CPE_REQUEST
    return Kind.ACS_ONLY


_DEFAULT_METHODS = m.GetRPCMethodsResponse(tuple(ACS_RPC_METHODS)).methods


class Session:
    """One CWMP session seen from the ACS. See the module docstring for the flow.

    ``id_prefix`` is put before the counter in every ``cwmp:ID`` the session sends, so that
    IDs are unique across sessions when the caller wants them to be.
    """

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS,
                 acs_methods: tuple[str, ...] = ACS_RPC_METHODS, id_prefix: str = "") -> None:
        if not isinstance(limits, Limits):
            raise SessionStateError("limits must be a Limits")
        self._limits = limits
        # Validated once for the default list (a session per Inform: bench/ figure 2).
        self._methods = (_DEFAULT_METHODS if acs_methods is ACS_RPC_METHODS
                         else m.GetRPCMethodsResponse(tuple(acs_methods)).methods)
        self._id_prefix = str(id_prefix)
        self._next_id = 1
        self._state = State.AWAIT_INFORM
        self.namespace: str | None = None
        self.inform: m.Inform | None = None
        self._cpe_request: m.Message | None = None
        self._cpe_request_id: str | None = None
        self._acs_request: m.Message | None = None
        self._acs_request_id: str | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def can_send_request(self) -> bool:
        """True when the ACS may send a request now: after the CPE's empty POST or after the
        response (or fault) to its previous request."""
        return self._state is State.ACS_REQUESTS

    @property
    def pending_request(self) -> m.Message | None:
        """The ACS request whose response is awaited, if any."""
        return self._acs_request if self._state is State.AWAIT_RESPONSE else None

    @property
    def cpe_request(self) -> m.Message | None:
        """The CPE request (Inform included) the ACS must answer now, if any."""
        if self._state in (State.INFORM_RECEIVED, State.CPE_REQUEST_RECEIVED):
            return self._cpe_request
        return None

    # --- input from the CPE -------------------------------------------------------------

    def receive(self, body: bytes) -> Event:
        """Parse one POST body and advance. Never raises for what the CPE sent: a problem
        becomes a :class:`ProtocolViolation` and the state ``ERROR``."""
        try:
            envelope = parse_envelope(body, self._limits)
        except CwmpProtocolError as exc:
            return self._violation(exc)
        kind = _kind_of(envelope)
        next_state = TRANSITIONS[self._state].get(kind)
        if next_state is None:
            what = kind.value
            if envelope is not None and envelope.message is not None:
                what = f"{what} {type(envelope.message).__name__}"
            return self._refuse(envelope, f"{what} is not allowed now: {_WHY[self._state]}")
        if kind is Kind.CPE_EMPTY_POST:
            self._state = next_state
            return CpeEmptyPost()
        assert envelope is not None and envelope.message is not None
        message = envelope.message
        if kind is Kind.INFORM:
            assert isinstance(message, m.Inform)
            self.namespace = envelope.namespace or CWMP_1_0
            self.inform = message
            self._cpe_request, self._cpe_request_id = message, envelope.cwmp_id
            self._state = next_state
            return InformReceived(message, envelope)
        if kind is Kind.CPE_REQUEST:
            self._cpe_request, self._cpe_request_id = message, envelope.cwmp_id
            self._state = next_state
            return CpeRequest(message, envelope)
        # A response or a fault to the outstanding ACS request.
        request = self._acs_request
        assert request is not None
        if envelope.cwmp_id is not None and envelope.cwmp_id != self._acs_request_id:
            return self._refuse(envelope, f"cwmp:ID {envelope.cwmp_id!r} does not match the "
                                          f"request's ID {self._acs_request_id!r}")
        if kind is Kind.CPE_FAULT:
            assert isinstance(message, m.Fault)
            self._finish_request(next_state)
            return CpeFault(request, message)
        expected = m.ACS_REQUEST_TYPES[type(request)]
        if type(message) is not expected:
            return self._refuse(envelope, f"{type(message).__name__} does not answer "
                                          f"{type(request).__name__} "
                                          f"(expected {expected.__name__})")
        self._finish_request(next_state)
        return CpeResponse(request, message)

    def _finish_request(self, next_state: State) -> None:
        self._acs_request = self._acs_request_id = None
        self._state = next_state

    def _refuse(self, envelope: Envelope | None, reason: str) -> ProtocolViolation:
        return self._violation(CwmpProtocolError(
            reason, fault_code=int(FaultCode.INVALID_ARGUMENTS_ACS),
            cwmp_id=envelope.cwmp_id if envelope else None,
            namespace=envelope.namespace if envelope else None,
        ))

    def _violation(self, error: CwmpProtocolError) -> ProtocolViolation:
        self._state = State.ERROR
        if error.fault_code is not None:
            namespace = self.namespace or error.namespace or CWMP_1_0
            body = build_envelope(m.Fault(error.fault_code, _fault_text(error)),
                                  namespace=namespace, cwmp_id=error.cwmp_id)
            reply = Outgoing(200, body, _XML_HEADERS)
        else:
            reply = Outgoing(error.http_status, (str(error) + "\n").encode("utf-8"),
                             _TEXT_HEADERS)
        return ProtocolViolation(error, reply)

    # --- actions of the ACS -------------------------------------------------------------

    def _transition(self, kind: Kind) -> State:
        next_state = TRANSITIONS[self._state].get(kind)
        if next_state is None:
            raise SessionStateError(f"{kind.value} is not possible in state {self._state.name}")
        return next_state

    def respond(self, message: m.Message, *, hold_requests: bool = False,
                session_timeout: int | None = None,
                use_version: str | None = None) -> Outgoing:
        """Answer the CPE's Inform or request with ``message`` (its response type, or a
        :class:`~acs_security.cwmp.messages.Fault`), echoing its ``cwmp:ID``.

        ``hold_requests=True`` sends HoldRequests=true: the CPE must then send its empty POST
        next. ``session_timeout``/``use_version`` add those headers (CWMP 1.3/1.4).

        Raises:
            SessionStateError: when no CPE message awaits an answer, when ``message`` is not
                its response type, or for HoldRequests on a fault (state unchanged).
            MessageValidationError: when the message cannot be built (state unchanged).
        """
        request = self.cpe_request
        if request is None:
            raise SessionStateError(f"no CPE message to answer in state {self._state.name}")
        if type(message) is m.Fault:
            if hold_requests:
                raise SessionStateError("HoldRequests is not sent with a fault")
            kind = Kind.RESPOND_FAULT
        else:
            expected = m.CPE_REQUEST_TYPES.get(type(request))
            if expected is None or type(message) is not expected:
                want = expected.__name__ if expected else "Fault"
                raise SessionStateError(f"{type(message).__name__} does not answer "
                                        f"{type(request).__name__} (expected {want})")
            kind = Kind.RESPOND_HOLD if hold_requests else Kind.RESPOND
        next_state = self._transition(kind)
        body = build_envelope(message, namespace=self.namespace or CWMP_1_0,
                              cwmp_id=self._cpe_request_id,
                              hold_requests=True if hold_requests else None,
                              session_timeout=session_timeout, use_version=use_version)
        self._state = next_state
        self._cpe_request = self._cpe_request_id = None
        return Outgoing(200, body, _XML_HEADERS)

    def answer_default(self, request: m.Message | None = None, *,
                       hold_requests: bool = False) -> Outgoing:
        """Answer the pending CPE message the standard way: InformResponse(MaxEnvelopes=1),
        GetRPCMethodsResponse(acs_methods), TransferCompleteResponse,
        AutonomousTransferCompleteResponse, RequestDownloadResponse, KickedResponse (NextURL =
        the CPE's Next), fault 8000 for an unknown method.

        Raises:
            SessionStateError: when no CPE message awaits an answer, or ``request`` is given
                and is not the pending one.
        """
        pending = self.cpe_request
        if pending is None:
            raise SessionStateError(f"no CPE message to answer in state {self._state.name}")
        if request is not None and request is not pending and request != pending:
            raise SessionStateError("that is not the CPE message awaiting an answer")
        answer: m.Message
        if type(pending) is m.UnknownMessage:
            return self.respond(m.Fault(int(FaultCode.METHOD_NOT_SUPPORTED_ACS),
                                        f"Method not supported: {pending.name}"[:256]))
        if type(pending) is m.GetRPCMethods:
            answer = m.GetRPCMethodsResponse(self._methods)
        elif type(pending) is m.Kicked:
            answer = m.KickedResponse(pending.next)
        else:
            answer = m.CPE_REQUEST_TYPES[type(pending)]()
        return self.respond(answer, hold_requests=hold_requests)

    def send_request(self, message: m.Message, *, hold_requests: bool = False) -> Outgoing:
        """Send an ACS request with a fresh ``cwmp:ID``; the CPE's next POST must answer it.

        Raises:
            SessionStateError: when :attr:`can_send_request` is false or ``message`` is not an
                ACS request (state unchanged).
            MessageValidationError: when the message cannot be built (state unchanged).
        """
        if type(message) not in m.ACS_REQUEST_TYPES:
            raise SessionStateError(f"{type(message).__name__} is not an ACS request")
        next_state = self._transition(Kind.SEND_REQUEST)
        cwmp_id = f"{self._id_prefix}{self._next_id}"
        body = build_envelope(message, namespace=self.namespace or CWMP_1_0, cwmp_id=cwmp_id,
                              hold_requests=True if hold_requests else None)
        self._next_id += 1
        self._acs_request, self._acs_request_id = message, cwmp_id
        self._state = next_state
        return Outgoing(200, body, _XML_HEADERS)

    def fail(self, fault: m.Fault) -> Outgoing:
        """Abort the session: answer the pending POST with ``fault`` (e.g. 8002 Internal error
        when the ACS cannot go on) and go to ``ERROR``; the HTTP layer then closes.

        Raises:
            SessionStateError: when it is not the ACS's turn to answer (state unchanged).
            MessageValidationError: when ``fault`` is not a Fault.
        """
        if type(fault) is not m.Fault:
            raise MessageValidationError("fail() takes a Fault")
        next_state = self._transition(Kind.ABORT)
        body = build_envelope(fault, namespace=self.namespace or CWMP_1_0,
                              cwmp_id=self._cpe_request_id if self.cpe_request else None)
        self._state = next_state
        self._cpe_request = self._cpe_request_id = None
        return Outgoing(200, body, _XML_HEADERS)

    def finish(self) -> Outgoing:
        """End the session with an empty HTTP 204 (TR-069 3.7.1: the ACS has no more
        requests and the CPE has sent its empty POST).

        Raises:
            SessionStateError: outside ``ACS_REQUESTS`` (state unchanged).
        """
        self._state = self._transition(Kind.FINISH)
        return Outgoing(204)


# What XML 1.0 cannot carry (its Char production), replaced in a FaultString.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _fault_text(error: CwmpProtocolError) -> str:
    """The FaultString of a fault answering ``error``: the code's standard text and what was
    wrong (TR-069 A.5.1: a human-readable description), at most 256 characters (the
    schema's FaultString length). Errors of the codec never quote a secret (errors.py)."""
    standard = m.Fault(error.fault_code or 8003).string
    text = f"{standard}: {_NOT_XML.sub('?', str(error))}"
    return text if len(text) <= 256 else text[:253] + "..."
