"""The CPE side of a session, fed the bytes of the project's own ACS state machine."""

from __future__ import annotations

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_2
from acs_security.cwmp.session import CpeEmptyPost, CpeFault, CpeRequest, CpeResponse, InformReceived, Session
from acs_security.cwmp.soap import build_envelope, parse_envelope
from acs_security.httpauth import DigestVerifier
from acs_security.sim.cpe_session import CpeSession, HttpPost, HttpReply, SessionEnd, retry_wait_range
from tests.sim.helpers import make_phone

MS = "Device.ManagementServer."
URL = "http://acs.example.net:7547/cwmp"


def reply_of(out, cookies=()) -> HttpReply:
    return HttpReply(out.status, out.body, set_cookies=tuple(cookies))


def new_session(phone=None, now=1_700_000_000.0):
    phone = phone or make_phone()
    phone.add_event("0 BOOTSTRAP")
    phone.add_event("1 BOOT")
    counter = iter(range(1000))
    return phone, CpeSession(phone, now=now, url=URL, cnonce=lambda: f"cn{next(counter)}")


def test_inform_carries_identity_events_and_forced_parameters():
    phone, cpe = new_session()
    env = parse_envelope(cpe.start().body)
    assert env.namespace == CWMP_1_2 and env.cwmp_id == "1"
    inform = env.message
    assert isinstance(inform, m.Inform)
    assert inform.device_id == m.DeviceId("Cisco Systems, Inc.", "00000C", "CP-8851-3PCC", "SIM00000001")
    assert inform.event_codes == ("0 BOOTSTRAP", "1 BOOT")
    assert inform.retry_count == 0 and inform.max_envelopes == 1
    assert inform.current_time.year >= 2023
    params = inform.parameter_map
    assert params[MS + "ParameterKey"] == "" and params[MS + "ConnectionRequestURL"].endswith("/SIM00000001")
    assert params["Device.DeviceInfo.SoftwareVersion"] == "sip88xx.12-0-1MPP0001-276"
    assert params[MS + "UDPConnectionRequestAddress"] == "127.0.0.1:7999"
    assert dict(cpe.start().headers)["Content-Type"].startswith("text/xml")
    legacy = make_phone()
    legacy.store({"Device.X_CISCO_TR069.CWMPV12Support": "No"})
    assert parse_envelope(new_session(legacy)[1].start().body).namespace == CWMP_1_0


def test_a_whole_session_with_cookie_and_an_acs_request_answered_with_its_id():
    phone, cpe = new_session()
    acs = Session()
    assert isinstance(acs.receive(cpe.start().body), InformReceived)
    step = cpe.receive(reply_of(acs.respond(m.InformResponse()), ["acs_session=tok1; Path=/; HttpOnly"]), 0.0)
    assert isinstance(step, HttpPost) and step.body == b"" and not step.answers_acs
    assert dict(step.headers)["Cookie"] == "acs_session=tok1"
    assert phone.events is None and cpe.informed  # delivered with the InformResponse
    assert isinstance(acs.receive(step.body), CpeEmptyPost)
    request = m.SetParameterValues((m.ParameterValue(MS + "PeriodicInformInterval", 60, "unsignedInt"),), "key-7")
    out = acs.send_request(request)
    step = cpe.receive(reply_of(out), 0.0)
    assert isinstance(step, HttpPost) and step.answers_acs
    sent = parse_envelope(out.body)
    answered = parse_envelope(step.body)
    assert answered.cwmp_id == sent.cwmp_id
    assert isinstance(acs.receive(step.body), CpeResponse)
    assert phone.params[MS + "ParameterKey"] == "key-7"
    end = cpe.receive(reply_of(acs.finish()), 0.0)
    assert end == SessionEnd(True, informed=True)
    assert cpe.rpcs == ["SetParameterValues"] and cpe.faults == []
    with pytest.raises(RuntimeError):
        cpe.receive(HttpReply(204), 0.0)


def test_faults_are_answered_and_counted():
    phone, cpe = new_session()
    acs = Session()
    acs.receive(cpe.start().body)
    acs.receive(cpe.receive(reply_of(acs.respond(m.InformResponse())), 0.0).body)  # type: ignore[union-attr]
    step = cpe.receive(reply_of(acs.send_request(m.GetParameterValues(("Device.Nope",)))), 0.0)
    event = acs.receive(step.body)  # type: ignore[union-attr]
    assert isinstance(event, CpeFault) and event.fault.code == 9005
    assert cpe.faults == [9005] and cpe.rpcs == ["GetParameterValues"]


def test_digest_challenge_is_answered_with_the_acs_credentials_once_more_then_refused():
    phone, cpe = new_session()
    verifier = DigestVerifier("acs-security", b"k" * 32)
    challenge = tuple(verifier.challenge(100.0, b"r" * 16))
    step = cpe.receive(HttpReply(401, b"", www_authenticate=challenge), 100.0)
    assert isinstance(step, HttpPost) and step.body == cpe.start().body
    authorization = dict(step.headers)["Authorization"]
    result = verifier.verify("POST", "/cwmp", authorization, 100.0,
                             lambda user: "acs-secret" if user == "cpe" else None)
    assert result.ok and result.algorithm == "SHA-256"
    assert "acs-secret" not in authorization
    cpe.receive(HttpReply(401, b"", www_authenticate=challenge), 100.0)
    end = cpe.receive(HttpReply(401, b"", www_authenticate=challenge), 100.0)
    assert isinstance(end, SessionEnd) and not end.ok and "401" in end.reason


def test_basic_only_challenge_is_not_answered_over_plain_http():
    _, cpe = new_session()
    end = cpe.receive(HttpReply(401, b"", www_authenticate=('Basic realm="acs"',)), 0.0)
    assert isinstance(end, SessionEnd) and "basic over HTTPS" in end.reason


def test_busy_acs_gives_retry_after_and_events_stay_for_the_retry():
    phone, cpe = new_session()
    end = cpe.receive(HttpReply(503, b"", retry_after="7"), 0.0)
    assert end == SessionEnd(False, "ACS busy (503)", 7.0, False)
    assert phone.events == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]


def test_pending_transfer_complete_goes_after_the_inform_response():
    phone, cpe = make_phone(), None
    phone.transfer_done("dl-3", 0, "", m.UNKNOWN_TIME, m.UNKNOWN_TIME, rebooted=False)
    cpe = CpeSession(phone, now=0.0, url=URL, cnonce=lambda: "c")
    acs = Session()
    event = acs.receive(cpe.start().body)
    assert event.inform.event_codes == ("7 TRANSFER COMPLETE", "M Download")  # type: ignore[union-attr]
    step = cpe.receive(reply_of(acs.respond(m.InformResponse())), 0.0)
    request = acs.receive(step.body)  # type: ignore[union-attr]
    assert isinstance(request, CpeRequest) and request.message.command_key == "dl-3"  # type: ignore[attr-defined]
    step = cpe.receive(reply_of(acs.answer_default(request.message)), 0.0)
    assert isinstance(step, HttpPost) and step.body == b"" and phone.transfers is None


@pytest.mark.parametrize("reply, words", [
    (HttpReply(200, build_envelope(m.Fault(8005), namespace=CWMP_1_2)), "fault 8005"),
    (HttpReply(200, b"<not-xml"), "unusable answer"),
    (HttpReply(500, b"oops"), "HTTP 500"),
    (HttpReply(204), "empty answer to the Inform"),
])
def test_unusable_answers_to_the_inform_end_the_session(reply, words):
    phone, cpe = new_session()
    end = cpe.receive(reply, 0.0)
    assert isinstance(end, SessionEnd) and not end.ok and not end.informed and words in end.reason


def test_invalid_cwmp_content_in_a_request_is_answered_with_9003():
    phone, cpe = new_session()
    acs = Session()
    acs.receive(cpe.start().body)
    acs.receive(cpe.receive(reply_of(acs.respond(m.InformResponse())), 0.0).body)  # type: ignore[union-attr]
    bad = (b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
           b'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">'
           b'x1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:GetParameterValues>'
           b'</cwmp:GetParameterValues></soap-env:Body></soap-env:Envelope>')
    step = cpe.receive(HttpReply(200, bad), 0.0)
    answered = parse_envelope(step.body)  # type: ignore[union-attr]
    assert answered.cwmp_id == "x1" and answered.message.code == 9003  # type: ignore[union-attr]


def test_retry_waits_follow_tr069_table_3():
    assert retry_wait_range(1) == (5, 10)
    assert retry_wait_range(2) == (10, 20)
    assert retry_wait_range(10) == (2560, 5120)
    assert retry_wait_range(15) == (2560, 5120)
    assert retry_wait_range(2, 1.0, 3000) == (3.0, 9.0)
    with pytest.raises(ValueError):
        retry_wait_range(0)
