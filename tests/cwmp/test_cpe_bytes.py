"""Exact bytes as Cisco MPP phones send them, parsed into the expected messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from acs_security.cwmp import messages as m
from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_4
from acs_security.cwmp.soap import Envelope, parse_envelope
from tests.cwmp.xsd import CwmpSchemas


def test_bootstrap_inform_of_a_cp8851(cwmp_data: Path, schemas: CwmpSchemas) -> None:
    data = (cwmp_data / "inform_bootstrap_cp8851.xml").read_bytes()
    schemas.assert_valid(data, CWMP_1_0)
    envelope = parse_envelope(data)
    assert envelope == Envelope(
        m.Inform(
            device_id=m.DeviceId("Cisco Systems, Inc.", "00000C", "CP-8851-3PCC", "FCH2148A0BC"),
            events=(m.EventStruct("0 BOOTSTRAP", ""), m.EventStruct("1 BOOT", "")),
            max_envelopes=1,
            current_time=datetime(2024, 5, 1, 9, 58, 41, tzinfo=UTC),
            retry_count=0,
            parameters=(
                m.ParameterValue("Device.DeviceInfo.Manufacturer", "Cisco Systems, Inc.",
                                 "string"),
                m.ParameterValue("Device.DeviceInfo.SoftwareVersion",
                                 "sip88xx.14-1-1MPP0001-272", "string"),
                m.ParameterValue("Device.DeviceInfo.HardwareVersion", "V06", "string"),
                m.ParameterValue("Device.DeviceInfo.ProvisioningCode", "", "string"),
                m.ParameterValue("Device.ManagementServer.ConnectionRequestURL",
                                 "http://192.0.2.41:7547/cwmp/FCH2148A0BC", "string"),
                m.ParameterValue("Device.ManagementServer.ParameterKey", "", "string"),
                m.ParameterValue("Device.ManagementServer.PeriodicInformEnable", True, "boolean"),
                m.ParameterValue("Device.ManagementServer.PeriodicInformInterval", 3600,
                                 "unsignedInt"),
            ),
        ),
        namespace=CWMP_1_0,
        cwmp_id="1",
    )
    inform = envelope.message
    assert isinstance(inform, m.Inform)
    assert inform.event_codes == ("0 BOOTSTRAP", "1 BOOT")
    assert inform.parameter_map["Device.ManagementServer.PeriodicInformInterval"] == 3600
    assert inform.parameter_map["Device.ManagementServer.ParameterKey"] == ""


def test_periodic_inform_in_cwmp_1_4_with_version_header(cwmp_data: Path,
                                                         schemas: CwmpSchemas) -> None:
    data = (cwmp_data / "inform_periodic_cp8865_cwmp14.xml").read_bytes()
    schemas.assert_valid(data, CWMP_1_4)
    envelope = parse_envelope(data)
    assert envelope is not None
    assert envelope.namespace == CWMP_1_4
    assert envelope.cwmp_id == "8851-417"
    assert envelope.supported_versions == "1.0,1.1,1.2,1.3,1.4"
    assert envelope.use_version is None and envelope.hold_requests is None
    inform = envelope.message
    assert isinstance(inform, m.Inform)
    assert inform.device_id.product_class == "CP-8865-3PCC"
    assert inform.event_codes == ("2 PERIODIC", "4 VALUE CHANGE", "M Reboot")
    assert inform.events[2].command_key == "policy-17-reboot"
    assert inform.current_time == datetime(2024, 5, 1, 10, 0, 3, tzinfo=UTC)
    assert inform.current_time.utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    assert inform.retry_count == 2
    assert inform.parameter_map == {
        "Device.DeviceInfo.SoftwareVersion": "sip8845_65.14-2-1MPP0001-88",
        "Device.ManagementServer.ConnectionRequestURL": "http://198.51.100.7:7547/cr?id=a&b=1",
        "Device.ManagementServer.ParameterKey": "policy-17",
        "Device.DeviceInfo.UpTime": 86400,
        "Device.ManagementServer.ConnectionRequestPassword": "",
    }


def test_set_parameter_values_fault_names_each_parameter(cwmp_data: Path,
                                                         schemas: CwmpSchemas) -> None:
    data = (cwmp_data / "spv_fault_cp8851.xml").read_bytes()
    schemas.assert_valid(data, CWMP_1_0)
    assert parse_envelope(data) == Envelope(
        m.Fault(9003, "Invalid arguments", (
            m.SetParameterValuesFault("Device.X_CISCO_Security.TLSMinVersion", 9007,
                                      "Invalid parameter value"),
            m.SetParameterValuesFault("Device.X_CISCO_Security.CipherList", 9005,
                                      "Invalid parameter name"),
        )),
        namespace=CWMP_1_0, cwmp_id="2",
    )


def test_transfer_complete(cwmp_data: Path, schemas: CwmpSchemas) -> None:
    data = (cwmp_data / "transfer_complete_cp8851.xml").read_bytes()
    schemas.assert_valid(data, CWMP_1_0)
    assert parse_envelope(data) == Envelope(
        m.TransferComplete("fw-14-2-1", m.TransferCompleteFault(0, ""),
                           datetime(2024, 5, 1, 9, 50, tzinfo=UTC),
                           datetime(2024, 5, 1, 9, 55, 12, tzinfo=UTC)),
        namespace=CWMP_1_0, cwmp_id="2",
    )


def test_lenient_reading_of_sloppy_but_unambiguous_input() -> None:
    # Children in another order and prefixed, no arrayType, a Value without xsi:type,
    # xs:/soapenc: prefixes, boolean "0", whitespace around numbers, comments and CDATA.
    data = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:c="urn:dslforum-org:cwmp-1-2" xmlns:xs="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/">
      <s:Body><c:GetParameterValuesResponse><ParameterList>
        <ParameterValueStruct><Value>plain</Value><Name>A.B</Name></ParameterValueStruct>
        <ParameterValueStruct><c:Name>A.C</c:Name><c:Value xsi:type="xs:int"> 42 </c:Value>
        </ParameterValueStruct>
        <ParameterValueStruct><Name>A.D</Name><Value xsi:type="enc:base64">aGk=</Value>
        </ParameterValueStruct>
        <ParameterValueStruct><Name>A.E</Name><!-- note --><Value xsi:type="xs:boolean"
          >0</Value></ParameterValueStruct>
        <ParameterValueStruct><Name>A.F</Name><Value><![CDATA[x<y&z]]></Value>
        </ParameterValueStruct>
      </ParameterList></c:GetParameterValuesResponse></s:Body></s:Envelope>"""
    envelope = parse_envelope(data)
    assert envelope == Envelope(m.GetParameterValuesResponse((
        m.ParameterValue("A.B", "plain", "string"),
        m.ParameterValue("A.C", 42, "int"),
        m.ParameterValue("A.D", b"hi", "base64"),
        m.ParameterValue("A.E", False, "boolean"),
        m.ParameterValue("A.F", "x<y&z", "string"),
    )), namespace="urn:dslforum-org:cwmp-1-2")


def test_unknown_type_is_kept_and_re_emitted_as_is() -> None:
    from acs_security.cwmp.soap import build_envelope

    data = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:v="urn:example:vendor-types"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Body>
        <cwmp:GetParameterValuesResponse><ParameterList>
        <ParameterValueStruct><Name>Device.X.Addr</Name>
        <Value xsi:type="v:IPv4Address">192.0.2.1</Value></ParameterValueStruct>
        <ParameterValueStruct><Name>Device.X.Small</Name>
        <Value xsi:type="xsd:unsignedByte" xmlns:xsd="http://www.w3.org/2001/XMLSchema">7</Value>
        </ParameterValueStruct>
        </ParameterList></cwmp:GetParameterValuesResponse></s:Body></s:Envelope>"""
    envelope = parse_envelope(data)
    assert envelope is not None
    assert envelope.message == m.GetParameterValuesResponse((
        m.ParameterValue("Device.X.Addr", "192.0.2.1", "v:IPv4Address", "urn:example:vendor-types"),
        m.ParameterValue("Device.X.Small", "7", "xsd:unsignedByte"),
    ))
    rebuilt = build_envelope(envelope.message, namespace=CWMP_1_0)
    assert (b'<Value xmlns:v="urn:example:vendor-types" xsi:type="v:IPv4Address">192.0.2.1'
            b'</Value>') in rebuilt
    assert b'<Value xsi:type="xsd:unsignedByte">7</Value>' in rebuilt
    again = parse_envelope(rebuilt)
    assert again is not None and again.message == envelope.message
