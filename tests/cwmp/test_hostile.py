"""Malformed and hostile input: refused with a precise CwmpProtocolError, nothing else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import CwmpProtocolError
from acs_security.cwmp.namespaces import CWMP_1_0
from acs_security.cwmp.soap import Limits, build_envelope, parse_envelope
from tests.cwmp.samples import DEVICE, T0

ENV_OPEN = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0" '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">')
ENV_CLOSE = b"</soap:Envelope>"


def envelope(body: bytes, header: bytes = b'<cwmp:ID soap:mustUnderstand="1">77</cwmp:ID>'
             ) -> bytes:
    return (ENV_OPEN + b"<soap:Header>" + header + b"</soap:Header><soap:Body>" + body
            + b"</soap:Body>" + ENV_CLOSE)


def refused(data: object, limits: Limits | None = None) -> CwmpProtocolError:
    with pytest.raises(CwmpProtocolError) as info:
        parse_envelope(data, limits) if limits else parse_envelope(data)  # type: ignore
    return info.value


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol4;
</soap:Body></soap:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&xxe;
</soap:Body></soap:Envelope>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE,
                                  b'<!DOCTYPE soap:Envelope SYSTEM "http://evil.example/x.dtd">'
                                  + envelope(b"")])
def test_doctype_and_entities_are_refused_outright(data: bytes) -> None:
    error = refused(data)
    assert error.http_status == 400 and error.fault_code is None
    assert "DOCTYPE" in str(error)


def test_utf16_cannot_smuggle_a_doctype() -> None:
    error = refused(XXE.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-16"))
    assert error.http_status == 400 and "NUL byte" in str(error)


def test_a_50_mb_body_is_refused_by_size_before_parsing() -> None:
    data = envelope(b"<x>" + b"A" * (50 * 1024 * 1024) + b"</x>")
    error = refused(data)
    assert error.http_status == 413 and error.fault_code is None
    assert "limit is 1048576" in str(error)


def test_size_limit_is_configurable() -> None:
    data = build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0)
    assert parse_envelope(data, Limits(max_bytes=len(data))) is not None
    assert refused(data, Limits(max_bytes=len(data) - 1)).http_status == 413


def test_too_deep_is_refused() -> None:
    deep = b"<a>" * 30 + b"x" + b"</a>" * 30
    error = refused(envelope(b"<cwmp:GetRPCMethods>" + deep + b"</cwmp:GetRPCMethods>"))
    assert error.http_status == 400 and "nested deeper than 24" in str(error)
    shallow = b"<a>" * 10 + b"</a>" * 10
    assert parse_envelope(envelope(b"<cwmp:GetRPCMethods>" + shallow
                                   + b"</cwmp:GetRPCMethods>")) is not None
    assert refused(envelope(b"<cwmp:GetRPCMethods>" + shallow + b"</cwmp:GetRPCMethods>"),
                   Limits(max_depth=8)).http_status == 400


def test_too_many_elements_is_refused() -> None:
    many = b"<cwmp:GetRPCMethods>" + b"<a/>" * 120_000 + b"</cwmp:GetRPCMethods>"
    error = refused(envelope(many))
    assert error.http_status == 400 and "elements, the limit is 100000" in str(error)
    few = envelope(b"<cwmp:GetRPCMethods>" + b"<a/>" * 60 + b"</cwmp:GetRPCMethods>")
    assert parse_envelope(few) is not None
    assert "the limit is 50" in str(refused(few, Limits(max_elements=50)))


@pytest.mark.parametrize(("data", "reason"), [
    (b"hello", "malformed XML"),
    (b'{"Inform": {}}', "malformed XML"),
    (b"<soap:Envelope", "malformed XML"),
    (b"<a>&undefined;</a>", "malformed XML"),
    (b"<Inform/>", "the root element is Inform, not a SOAP 1.1 Envelope"),
    (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
     "SOAP 1.2"),
    (ENV_OPEN + ENV_CLOSE, "has no Body"),
    (ENV_OPEN + b"<soap:Body/><soap:Body/>" + ENV_CLOSE, "unexpected"),
    (ENV_OPEN + b"<soap:Body/>" + ENV_CLOSE + b"junk", "content after the end"),
])
def test_not_a_soap_envelope_is_http_400(data: bytes, reason: str) -> None:
    error = refused(data)
    assert error.http_status == 400 and error.fault_code is None
    assert reason in str(error)


def test_two_envelopes_in_one_body_are_refused_precisely() -> None:
    one = build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0, cwmp_id="1")
    two = one + one.split(b"\n", 1)[1]
    error = refused(two)
    assert error.http_status == 400
    assert "2 SOAP envelopes" in str(error) and "MaxEnvelopes is 1" in str(error)


def test_non_bytes_input_is_a_protocol_error() -> None:
    assert refused("<a/>").http_status == 400
    assert parse_envelope(bytearray(b"  \r\n")) is None  # type: ignore[arg-type]  # on purpose


@pytest.mark.parametrize(("body", "reason"), [
    (b"<cwmp:GetRPCMethods/><cwmp:GetRPCMethods/>", "more than one element"),
    (b"<x:Foo xmlns:x='urn:other'/>", "not in a CWMP namespace"),
    (b"<cwmp:Inform/>", "Inform: <DeviceId> is missing"),
    (b"<cwmp:SetParameterValuesResponse><Status>2</Status></cwmp:SetParameterValuesResponse>",
     "status is 2, allowed 0..1"),
    (b"<cwmp:SetParameterValuesResponse><Status>abc</Status></cwmp:SetParameterValuesResponse>",
     "SetParameterValuesResponse/Status: 'abc': not a valid int"),
    (b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A.B</Name>"
     b"<Value xsi:type='xsd:int'>abc</Value></ParameterValueStruct></ParameterList>"
     b"</cwmp:GetParameterValuesResponse>", "A.B: value 'abc' is not a valid int"),
    (b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A.B</Name>"
     b"<Value xsi:type='xsd:unsignedInt'>-1</Value></ParameterValueStruct></ParameterList>"
     b"</cwmp:GetParameterValuesResponse>", "outside the range of unsignedInt"),
    (b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A.B</Name>"
     b"<Value xsi:type='q:int'>1</Value></ParameterValueStruct></ParameterList>"
     b"</cwmp:GetParameterValuesResponse>", "undeclared prefix"),
    (b"<cwmp:GetParameterValuesResponse><ParameterList><Other/></ParameterList>"
     b"</cwmp:GetParameterValuesResponse>", "holds <Other> where <ParameterValueStruct>"),
    (b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A</Name>"
     b"</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>",
     "needs <Name> and <Value>"),
    (b"<cwmp:AddObject><ObjectName>A.B</ObjectName><ParameterKey/></cwmp:AddObject>",
     "must end with '.'"),
    (b"<cwmp:Reboot><CommandKey>" + b"k" * 33 + b"</CommandKey></cwmp:Reboot>",
     "command_key is 33 characters long, the limit is 32"),
    (b"<cwmp:Reboot><CommandKey>a</CommandKey><CommandKey>b</CommandKey></cwmp:Reboot>",
     "<CommandKey> appears twice"),
    (b"<soap:Fault><faultcode>Server</faultcode><faultstring>x</faultstring></soap:Fault>",
     "SOAP Fault without a cwmp:Fault detail"),
    (b"<soap:Fault><detail><cwmp:Fault><FaultCode>7000</FaultCode></cwmp:Fault></detail>"
     b"</soap:Fault>", "code is 7000"),
])
def test_invalid_cwmp_content_is_fault_8003(body: bytes, reason: str) -> None:
    error = refused(envelope(body))
    assert error.fault_code == 8003 and error.http_status == 200
    assert reason in str(error)
    # What a fault answer needs to echo is carried along.
    assert error.cwmp_id == "77" and error.namespace == CWMP_1_0


def test_bad_inform_fields_are_named() -> None:
    good = build_envelope(m.Inform(DEVICE, (m.EventStruct("1 BOOT"),), 1, T0, 0, ()),
                          namespace=CWMP_1_0)
    assert parse_envelope(good) is not None
    cases = {
        b"<OUI>00000C</OUI>": (b"<OUI>00000G</OUI>", "oui '00000G' is not exactly 6 hex"),
        b"<EventCode>1 BOOT</EventCode>": (b"<EventCode>BOOT</EventCode>",
                                           "'BOOT' is not a TR-069 event code"),
        b"<RetryCount>0</RetryCount>": (b"<RetryCount>x</RetryCount>",
                                        "Inform/RetryCount: 'x': not a valid unsignedInt"),
        b"<CurrentTime>2024-05-01T10:00:00Z</CurrentTime>": (
            b"<CurrentTime>2024-13-01T10:00:00Z</CurrentTime>", "not a valid dateTime"),
    }
    for old, (new, reason) in cases.items():
        assert old in good
        error = refused(good.replace(old, new))
        assert error.fault_code == 8003 and reason in str(error), str(error)


def test_unknown_must_understand_header_is_refused() -> None:
    error = refused(envelope(b"<cwmp:GetRPCMethods/>",
                             b'<x:Session xmlns:x="urn:x" soap:mustUnderstand="1">1</x:Session>'))
    assert error.fault_code == 8003 and "must be understood" in str(error)
    ignored = envelope(b"<cwmp:GetRPCMethods/>",
                       b'<x:Session xmlns:x="urn:x" soap:mustUnderstand="0">1</x:Session>'
                       b'<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>')
    parsed = parse_envelope(ignored)
    assert parsed is not None and parsed.message == m.GetRPCMethods()


def test_bad_header_values_are_fault_8003() -> None:
    error = refused(envelope(
        b"<cwmp:GetRPCMethods/>",
        b'<cwmp:HoldRequests soap:mustUnderstand="1">maybe</cwmp:HoldRequests>'))
    assert error.fault_code == 8003 and "HoldRequests" in str(error)


def test_secret_values_never_appear_in_errors() -> None:
    body = (b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
            b"<Name>Device.X_CISCO.SIP.AuthPassword</Name><Value xsi:type='xsd:int'>hunter2</Value>"
            b"</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>")
    error = refused(envelope(body))
    assert "hunter2" not in str(error) and "hunter2" not in repr(error)
    assert "AuthPassword" in str(error)


VALID = build_envelope(m.Inform(DEVICE, (m.EventStruct("1 BOOT"),), 1, T0, 0,
                                (m.ParameterValue("Device.A", 5, "unsignedInt"),)),
                       namespace=CWMP_1_0, cwmp_id="1")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_envelopes_raise_nothing_but_protocol_errors(data: st.DataObject) -> None:
    body = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        byte = data.draw(st.sampled_from(list(b"<>/&;'\"=:ax0 \x00\xff")))
        if action == "flip":
            body[position] = byte
        elif action == "delete":
            del body[position]
        else:
            body.insert(position, byte)
    try:
        parse_envelope(bytes(body))
    except CwmpProtocolError as error:
        assert error.http_status in (200, 400, 413)
        assert (error.fault_code is None) == (error.http_status != 200)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_nothing_but_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(CwmpProtocolError):
        parse_envelope(data)
