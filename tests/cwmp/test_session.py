"""The session state machine: every transition of the table, every refused one, and whole
sessions fed exact bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import MessageValidationError, SessionStateError
from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_4
from acs_security.cwmp.session import (
    ACS_RPC_METHODS,
    CPE_KINDS,
    TRANSITIONS,
    CpeEmptyPost,
    CpeFault,
    CpeRequest,
    CpeResponse,
    InformReceived,
    Kind,
    Outgoing,
    ProtocolViolation,
    Session,
    State,
)
from acs_security.cwmp.soap import CONTENT_TYPE, Envelope, build_envelope, parse_envelope
from tests.cwmp.samples import DEVICE, T0

INFORM = m.Inform(DEVICE, (m.EventStruct("6 CONNECTION REQUEST"),), 1, T0, 0,
                  (m.ParameterValue("Device.ManagementServer.ParameterKey", "", "string"),))
GPV = m.GetParameterValues(("Device.DeviceInfo.SoftwareVersion",))
GPV_RESPONSE = m.GetParameterValuesResponse(
    (m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.14-1-1MPP0001-272",
                      "string"),))


def cpe(message: m.Message | None, cwmp_id: str | None = "c1", namespace: str = CWMP_1_0,
        **headers: Any) -> bytes:
    """What a CPE would POST."""
    return build_envelope(message, namespace=namespace, cwmp_id=cwmp_id, **headers)


def drive_to(state: State) -> Session:
    session = Session()
    if state is State.AWAIT_INFORM:
        return session
    if state is State.ERROR:
        session.receive(b"garbage")
        return session
    session.receive(cpe(INFORM))
    if state is State.INFORM_RECEIVED:
        return session
    if state is State.CPE_REQUESTS_HELD:
        session.respond(m.InformResponse(), hold_requests=True)
        return session
    session.answer_default()
    if state is State.CPE_REQUESTS:
        return session
    if state is State.CPE_REQUEST_RECEIVED:
        session.receive(cpe(m.TransferComplete("k", m.TransferCompleteFault(), T0, T0)))
        return session
    session.receive(b"")
    if state is State.ACS_REQUESTS:
        return session
    if state is State.AWAIT_RESPONSE:
        session.send_request(GPV)
        return session
    session.finish()
    assert state is State.DONE
    return session


def _answer(session: Session) -> m.Message:
    pending = session.cpe_request
    if pending is None:
        return m.InformResponse()
    return m.CPE_REQUEST_TYPES[type(pending)]()


APPLY: dict[Kind, Callable[[Session], Any]] = {
    Kind.INFORM: lambda s: s.receive(cpe(INFORM)),
    Kind.CPE_REQUEST: lambda s: s.receive(cpe(m.GetRPCMethods())),
    Kind.CPE_EMPTY_POST: lambda s: s.receive(b""),
    Kind.CPE_RESPONSE: lambda s: s.receive(cpe(GPV_RESPONSE, cwmp_id="1")),
    Kind.CPE_FAULT: lambda s: s.receive(cpe(m.Fault(9005), cwmp_id="1")),
    Kind.ACS_ONLY: lambda s: s.receive(cpe(m.SetParameterValues(()))),
    Kind.RESPOND: lambda s: s.respond(_answer(s)),
    Kind.RESPOND_HOLD: lambda s: s.respond(_answer(s), hold_requests=True),
    Kind.RESPOND_FAULT: lambda s: s.respond(m.Fault(8005)),
    Kind.SEND_REQUEST: lambda s: s.send_request(GPV),
    Kind.FINISH: lambda s: s.finish(),
    Kind.ABORT: lambda s: s.fail(m.Fault(8002)),
}

ALLOWED = [(state, kind, target) for state, row in TRANSITIONS.items()
           for kind, target in row.items()]
REFUSED = [(state, kind) for state in State for kind in Kind
           if kind not in TRANSITIONS[state]]


def test_table_covers_every_state_and_kind() -> None:
    assert set(TRANSITIONS) == set(State)
    assert set(APPLY) == set(Kind)
    assert {k for k in Kind if k.name.startswith("CPE") or k in (Kind.INFORM, Kind.ACS_ONLY)} == CPE_KINDS
    # No CPE input leads anywhere from a state where it is the ACS's turn.
    for state in (State.INFORM_RECEIVED, State.CPE_REQUEST_RECEIVED, State.ACS_REQUESTS):
        assert not CPE_KINDS & set(TRANSITIONS[state])


@pytest.mark.parametrize(("state", "kind", "target"), ALLOWED,
                         ids=[f"{s.name}-{k.name}" for s, k, _ in ALLOWED])
def test_allowed_transition(state: State, kind: Kind, target: State) -> None:
    session = drive_to(state)
    assert session.state is state
    result = APPLY[kind](session)
    assert not isinstance(result, ProtocolViolation), result
    assert session.state is target


@pytest.mark.parametrize(("state", "kind"), REFUSED,
                         ids=[f"{s.name}-{k.name}" for s, k in REFUSED])
def test_refused_transition(state: State, kind: Kind) -> None:
    session = drive_to(state)
    if kind in CPE_KINDS:
        result = APPLY[kind](session)
        assert isinstance(result, ProtocolViolation)
        assert session.state is State.ERROR
        assert result.error.fault_code == 8003
        assert result.reply.status == 200
        fault = parse_envelope(result.reply.body)
        assert fault is not None and isinstance(fault.message, m.Fault) and fault.message.code == 8003
        # The FaultString says what was refused (TR-069 A.5.1: human-readable).
        assert fault.message.string == f"Invalid arguments: {result.error}"[:256]
    else:
        with pytest.raises(SessionStateError):
            APPLY[kind](session)
        assert session.state is state  # an ACS mistake changes nothing


def test_a_whole_session_in_exact_bytes() -> None:
    session = Session(id_prefix="s7-")
    event = session.receive(cpe(INFORM, cwmp_id="inform-1"))
    assert event == InformReceived(INFORM, Envelope(INFORM, CWMP_1_0, cwmp_id="inform-1"))
    assert session.inform == INFORM and session.namespace == CWMP_1_0

    reply = session.answer_default()
    assert reply == Outgoing(200, cpe(m.InformResponse(1), cwmp_id="inform-1"),
                             (("Content-Type", CONTENT_TYPE),))

    event = session.receive(cpe(m.GetRPCMethods(), cwmp_id="c2"))
    assert isinstance(event, CpeRequest) and event.message == m.GetRPCMethods()
    reply = session.answer_default(event.message)
    assert reply.body == cpe(m.GetRPCMethodsResponse(ACS_RPC_METHODS), cwmp_id="c2")

    assert session.receive(b"") == CpeEmptyPost()
    assert session.can_send_request

    spv = m.SetParameterValues((m.ParameterValue("Device.X_CISCO.TLSMinVersion", "TLS 1.2",
                                                 "string"),), "policy-17")
    reply = session.send_request(spv)
    assert reply.body == cpe(spv, cwmp_id="s7-1")
    assert session.pending_request == spv and not session.can_send_request

    event = session.receive(cpe(m.SetParameterValuesResponse(0), cwmp_id="s7-1"))
    assert event == CpeResponse(spv, m.SetParameterValuesResponse(0))

    reply = session.send_request(GPV)
    assert b">s7-2</cwmp:ID>" in reply.body
    # A CPE stack that leaves the ID out is accepted.
    event = session.receive(cpe(GPV_RESPONSE, cwmp_id=None))
    assert event == CpeResponse(GPV, GPV_RESPONSE)

    assert session.finish() == Outgoing(204, b"", ())
    assert session.state is State.DONE


def test_cpe_fault_is_an_event_not_a_violation() -> None:
    session = drive_to(State.ACS_REQUESTS)
    spv = m.SetParameterValues((m.ParameterValue("Device.X", "1", "string"),), "k")
    session.send_request(spv)
    fault = m.Fault(9003, "Invalid arguments", (m.SetParameterValuesFault("Device.X", 9005),))
    event = session.receive(cpe(fault, cwmp_id="1"))
    assert event == CpeFault(spv, fault)
    assert session.can_send_request
    session.send_request(GPV)
    assert isinstance(session.receive(cpe(GPV_RESPONSE, cwmp_id="2")), CpeResponse)


def test_unknown_cpe_method_gets_fault_8000_and_the_session_goes_on() -> None:
    session = drive_to(State.CPE_REQUESTS)
    body = cpe(m.GetRPCMethods(), cwmp_id="c9").replace(b"GetRPCMethods", b"X_VENDOR_Hello")
    event = session.receive(body)
    assert isinstance(event, CpeRequest) and event.message == m.UnknownMessage("X_VENDOR_Hello")
    reply = session.answer_default()
    answer = parse_envelope(reply.body)
    assert answer is not None and answer.cwmp_id == "c9"
    assert isinstance(answer.message, m.Fault) and answer.message.code == 8000
    assert session.state is State.CPE_REQUESTS
    with pytest.raises(SessionStateError):
        session.respond(m.Fault(8000))  # already answered


def test_kicked_default_answer_echoes_next() -> None:
    session = drive_to(State.CPE_REQUESTS)
    session.receive(cpe(m.Kicked("login", "http://portal/", "", "http://portal/next")))
    answer = parse_envelope(session.answer_default().body)
    assert answer is not None and answer.message == m.KickedResponse("http://portal/next")


@pytest.mark.parametrize("request_message", [
    m.TransferComplete("k", m.TransferCompleteFault(), T0, T0),
    m.AutonomousTransferComplete("", "", True, "1 Firmware Upgrade Image", 0, "",
                                 m.TransferCompleteFault(), T0, T0),
    m.RequestDownload("3 Vendor Configuration File"),
])
def test_default_answers(request_message: m.Message) -> None:
    session = drive_to(State.CPE_REQUESTS)
    session.receive(cpe(request_message, namespace=CWMP_1_0, cwmp_id="q"))
    answer = parse_envelope(session.answer_default().body)
    assert answer is not None and answer.cwmp_id == "q"
    assert type(answer.message) is m.CPE_REQUEST_TYPES[type(request_message)]


def test_wrong_cwmp_id_is_a_violation_answered_with_an_echoed_fault() -> None:
    session = drive_to(State.AWAIT_RESPONSE)
    event = session.receive(cpe(GPV_RESPONSE, cwmp_id="999"))
    assert isinstance(event, ProtocolViolation)
    assert "cwmp:ID '999' does not match the request's ID '1'" in str(event.error)
    reply = parse_envelope(event.reply.body)
    assert reply == Envelope(m.Fault(8003, f"Invalid arguments: {event.error}"), CWMP_1_0, cwmp_id="999")
    assert session.state is State.ERROR


def test_response_of_the_wrong_type_is_a_violation() -> None:
    session = drive_to(State.AWAIT_RESPONSE)
    event = session.receive(cpe(m.SetParameterValuesResponse(0), cwmp_id="1"))
    assert isinstance(event, ProtocolViolation)
    assert "SetParameterValuesResponse does not answer GetParameterValues" in str(event.error)


@pytest.mark.parametrize(("state", "body", "reason"), [
    (State.AWAIT_INFORM, cpe(m.GetRPCMethods()), "a session starts with an Inform"),
    (State.CPE_REQUESTS, cpe(INFORM), "Inform Inform is not allowed now"),
    (State.CPE_REQUESTS, cpe(GPV_RESPONSE), "CPE response GetParameterValuesResponse"),
    (State.CPE_REQUESTS_HELD, cpe(m.GetRPCMethods()), "the ACS set HoldRequests"),
    (State.AWAIT_RESPONSE, cpe(m.GetRPCMethods()), "awaits the response"),
    (State.AWAIT_RESPONSE, b"", "awaits the response"),
    (State.INFORM_RECEIVED, b"", "no pipelining"),
    (State.DONE, cpe(INFORM), "the session has ended"),
    (State.DONE, b"", "the session has ended"),
])
def test_out_of_order_input(state: State, body: bytes, reason: str) -> None:
    session = drive_to(state)
    event = session.receive(body)
    assert isinstance(event, ProtocolViolation)
    assert reason in str(event.error)
    assert session.state is State.ERROR
    assert event.reply.status == 200 and parse_envelope(event.reply.body) is not None


def test_malformed_body_is_http_400_and_ends_the_session() -> None:
    session = drive_to(State.CPE_REQUESTS)
    event = session.receive(b"<not-closed")
    assert isinstance(event, ProtocolViolation)
    assert event.reply.status == 400 and event.reply.body.startswith(b"malformed XML")
    assert event.reply.headers == (("Content-Type", "text/plain; charset=utf-8"),)
    assert session.state is State.ERROR
    assert isinstance(session.receive(cpe(m.GetRPCMethods())), ProtocolViolation)


def test_invalid_content_is_fault_8003_with_the_cpe_namespace_and_id() -> None:
    session = drive_to(State.AWAIT_RESPONSE)
    body = cpe(m.SetParameterValuesResponse(0), cwmp_id="1").replace(b">0</Status>",
                                                                      b">zero</Status>")
    event = session.receive(body)
    assert isinstance(event, ProtocolViolation) and event.error.fault_code == 8003
    assert parse_envelope(event.reply.body) == Envelope(m.Fault(8003, f"Invalid arguments: {event.error}"),
                                                        CWMP_1_0, cwmp_id="1")


def test_replies_use_the_cpe_namespace() -> None:
    session = Session()
    session.receive(cpe(INFORM, namespace=CWMP_1_4,
                        supported_versions="1.0,1.1,1.2,1.3,1.4"))
    assert session.namespace == CWMP_1_4
    reply = session.respond(m.InformResponse(), use_version="1.4", session_timeout=30)
    envelope = parse_envelope(reply.body)
    assert envelope == Envelope(m.InformResponse(), CWMP_1_4, cwmp_id="c1", session_timeout=30,
                                use_version="1.4")
    session.receive(b"")
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-4"' in session.send_request(GPV).body


def test_hold_requests_header_and_its_effect() -> None:
    session = drive_to(State.INFORM_RECEIVED)
    reply = session.respond(m.InformResponse(), hold_requests=True)
    assert b'<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>' in reply.body
    assert session.state is State.CPE_REQUESTS_HELD
    assert session.receive(b"") == CpeEmptyPost()
    plain = drive_to(State.INFORM_RECEIVED).respond(m.InformResponse())
    assert b"HoldRequests" not in plain.body


def test_cpe_hold_requests_header_is_ignored() -> None:
    session = drive_to(State.CPE_REQUESTS)
    event = session.receive(cpe(m.GetRPCMethods(), hold_requests=True))
    assert isinstance(event, CpeRequest)


def test_inform_refused_with_a_fault_ends_the_session() -> None:
    session = drive_to(State.INFORM_RECEIVED)
    reply = session.respond(m.Fault(8005))
    assert parse_envelope(reply.body) == Envelope(m.Fault(8005), CWMP_1_0, cwmp_id="c1")
    assert session.state is State.DONE


def test_acs_mistakes_change_nothing() -> None:
    session = drive_to(State.CPE_REQUEST_RECEIVED)
    with pytest.raises(SessionStateError, match="does not answer TransferComplete"):
        session.respond(m.InformResponse())
    with pytest.raises(SessionStateError, match="HoldRequests is not sent with a fault"):
        session.respond(m.Fault(8002), hold_requests=True)
    with pytest.raises(SessionStateError, match="not the CPE message"):
        session.answer_default(m.GetRPCMethods())
    assert session.state is State.CPE_REQUEST_RECEIVED
    session.answer_default()
    session.receive(b"")
    with pytest.raises(SessionStateError, match="is not an ACS request"):
        session.send_request(m.InformResponse())
    bad = m.SetParameterValues((m.ParameterValue("Device.X", "bell\x07", "string"),))
    with pytest.raises(MessageValidationError):
        session.send_request(bad)
    assert session.state is State.ACS_REQUESTS and session.pending_request is None
    assert b">1</cwmp:ID>" in session.send_request(GPV).body  # the ID was not used up


def test_envelope_with_empty_body_counts_as_empty_post() -> None:
    session = drive_to(State.CPE_REQUESTS)
    assert session.receive(cpe(None)) == CpeEmptyPost()
    assert session.state is State.ACS_REQUESTS


def test_outgoing_validates() -> None:
    with pytest.raises(MessageValidationError):
        Outgoing(42)
    with pytest.raises(MessageValidationError):
        Outgoing(200, "text")  # type: ignore[arg-type]
    with pytest.raises(MessageValidationError):
        Outgoing(200, b"", (("a",),))  # type: ignore[arg-type]


def test_fail_aborts_with_a_fault_echoing_the_pending_id() -> None:
    session = drive_to(State.INFORM_RECEIVED)
    reply = session.fail(m.Fault(8002, "Internal error"))
    assert parse_envelope(reply.body) == Envelope(m.Fault(8002, "Internal error"), CWMP_1_0,
                                                  cwmp_id="c1")
    assert session.state is State.ERROR
    acs_turn = drive_to(State.ACS_REQUESTS)
    reply = acs_turn.fail(m.Fault(8004))
    assert parse_envelope(reply.body) == Envelope(m.Fault(8004), CWMP_1_0)
    with pytest.raises(MessageValidationError):
        drive_to(State.INFORM_RECEIVED).fail(m.InformResponse())  # type: ignore[arg-type]
