"""Every message, in every CWMP namespace: built, validated against the BBF schema, parsed
back to an equal message."""

from __future__ import annotations

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_2, CWMP_1_4, NAMESPACES
from acs_security.cwmp.soap import Envelope, build_envelope, parse_envelope
from tests.cwmp.samples import samples
from tests.cwmp.xsd import CwmpSchemas

CASES = [
    pytest.param(ns, index, id=f"{ns.rsplit(':', 1)[1]}-{type(msg).__name__}-{index}")
    for ns in NAMESPACES
    for index, msg in enumerate(samples(ns))
]


@pytest.mark.parametrize(("namespace", "index"), CASES)
def test_build_validate_parse(schemas: CwmpSchemas, namespace: str, index: int) -> None:
    message = samples(namespace)[index]
    data = build_envelope(message, namespace=namespace, cwmp_id=f"id-{index}")
    schemas.assert_valid(data, namespace)
    envelope = parse_envelope(data)
    assert envelope == Envelope(message, namespace, cwmp_id=f"id-{index}")


def test_samples_cover_every_message_type() -> None:
    covered = {type(msg) for msg in samples(CWMP_1_2)}
    every = {cls for cls in vars(m).values()
             if isinstance(cls, type) and issubclass(cls, m.Message)
             and cls not in (m.Message, m.UnknownMessage)}
    assert every - covered == set()
    assert len(every) == 37


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_headers_round_trip(schemas: CwmpSchemas, namespace: str) -> None:
    newer = namespace not in (CWMP_1_0, "urn:dslforum-org:cwmp-1-1")
    kwargs = dict(cwmp_id="abc 1", hold_requests=True)
    if newer:
        kwargs.update(session_timeout=60, supported_versions="1.0,1.1,1.2,1.3,1.4",
                      use_version="1.4")
    data = build_envelope(m.InformResponse(), namespace=namespace, **kwargs)  # type: ignore
    schemas.assert_valid(data, namespace)
    assert parse_envelope(data) == Envelope(m.InformResponse(), namespace, **kwargs)  # type: ignore


def test_hold_requests_false_and_empty_body(schemas: CwmpSchemas) -> None:
    data = build_envelope(None, namespace=CWMP_1_4, cwmp_id="7", hold_requests=False)
    schemas.assert_valid(data, CWMP_1_4)
    assert b'<cwmp:HoldRequests soap-env:mustUnderstand="1">0</cwmp:HoldRequests>' in data
    assert parse_envelope(data) == Envelope(None, CWMP_1_4, cwmp_id="7", hold_requests=False)


def test_no_header_without_header_values() -> None:
    data = build_envelope(m.GetRPCMethods(), namespace=CWMP_1_0)
    assert b"Header" not in data
    assert data.endswith(b"<soap-env:Body><cwmp:GetRPCMethods/></soap-env:Body>"
                         b"</soap-env:Envelope>")


def test_validator_rejects_what_the_schema_forbids(schemas: CwmpSchemas) -> None:
    # The helper must be able to fail: an unknown RPC, a bad OUI and a too long key.
    good = build_envelope(m.SetParameterValuesResponse(0), namespace=CWMP_1_0)
    assert schemas.errors(good, CWMP_1_0) == []
    unknown = good.replace(b"SetParameterValuesResponse", b"SetParameterValuesRespons")
    assert any("No matching global element" in e for e in schemas.errors(unknown, CWMP_1_0))
    bad_status = good.replace(b"<Status>0</Status>", b"<Status>2</Status>")
    assert schemas.errors(bad_status, CWMP_1_0)
    data_14 = build_envelope(m.AddObject("Device.A.", "k"), namespace=CWMP_1_4)
    assert schemas.errors(data_14, CWMP_1_4) == []
    assert schemas.errors(data_14.replace(b"Device.A.", b"Device.A"), CWMP_1_4)


def test_wire_conventions() -> None:
    data = build_envelope(m.SetParameterValues(
        (m.ParameterValue("Device.A", True, "boolean"), m.ParameterValue("Device.B", 7, "int")),
        "k1"), namespace=CWMP_1_2, cwmp_id="9").decode()
    assert data.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<soap-env:Envelope ')
    assert 'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"' in data
    assert '<cwmp:ID soap-env:mustUnderstand="1">9</cwmp:ID>' in data
    assert ('<cwmp:SetParameterValues><ParameterList '
            'soap-enc:arrayType="cwmp:ParameterValueStruct[2]">') in data
    assert '<Value xsi:type="xsd:boolean">1</Value>' in data
    assert '<Value xsi:type="xsd:int">7</Value>' in data
    assert "<ParameterKey>k1</ParameterKey>" in data
    names = build_envelope(m.GetParameterValues(("A.", "B")), namespace=CWMP_1_2).decode()
    assert '<ParameterNames soap-enc:arrayType="xsd:string[2]"><string>A.</string>' in names
    info = build_envelope(m.GetParameterNamesResponse((m.ParameterInfo("A", False),)),
                          namespace=CWMP_1_2).decode()
    assert 'soap-enc:arrayType="cwmp:ParameterInfoStruct[1]"' in info
    assert "<Writable>0</Writable>" in info


def test_fault_wire_form() -> None:
    client = build_envelope(m.Fault(9005), namespace=CWMP_1_0).decode()
    assert ("<soap-env:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
            "<detail><cwmp:Fault><FaultCode>9005</FaultCode>"
            "<FaultString>Invalid parameter name</FaultString></cwmp:Fault></detail>"
            "</soap-env:Fault>") in client
    server = build_envelope(m.Fault(9002), namespace=CWMP_1_0).decode()
    assert "<faultcode>Server</faultcode>" in server
    assert "<faultcode>Client</faultcode>" in build_envelope(m.Fault(8003),
                                                             namespace=CWMP_1_0).decode()


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"namespace": "urn:dslforum-org:cwmp-2-0"}, "is not a CWMP namespace"),
    ({"namespace": CWMP_1_0, "session_timeout": -1}, "session_timeout must be an unsignedInt"),
    ({"namespace": CWMP_1_0, "hold_requests": "yes"}, "hold_requests must be a bool"),
    ({"namespace": CWMP_1_0, "cwmp_id": 5}, "cwmp_id must be a str"),
])
def test_build_refuses_bad_arguments(kwargs: dict[str, object], reason: str) -> None:
    from acs_security.cwmp.errors import MessageValidationError

    with pytest.raises(MessageValidationError, match=reason):
        build_envelope(m.GetRPCMethods(), **kwargs)  # type: ignore[arg-type]


def test_unknown_message_cannot_be_built() -> None:
    from acs_security.cwmp.errors import MessageValidationError

    with pytest.raises(MessageValidationError, match="not a CWMP RPC"):
        build_envelope(m.UnknownMessage("X_Foo"), namespace=CWMP_1_0)
