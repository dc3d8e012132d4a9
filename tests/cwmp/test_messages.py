"""Message constructors enforce the schema's limits; reprs hide secrets; fault codes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from acs_security.cwmp import messages as m
from acs_security.cwmp.errors import MessageValidationError
from acs_security.cwmp.faults import FaultCode, fault_string, soap_fault_code
from tests.cwmp.samples import DEVICE, T0

E = MessageValidationError


@pytest.mark.parametrize(("factory", "reason"), [
    (lambda: m.DeviceId("C", "00000", "P", "S"), "oui '00000' is not exactly 6 hex digits"),
    (lambda: m.DeviceId("C" * 65, "00000C", "P", "S"), "manufacturer is 65 characters long"),
    (lambda: m.DeviceId("C", "00000C", "P" * 65, "S"), "product_class is 65"),
    (lambda: m.DeviceId("C", "00000C", "P", "S" * 65), "serial_number is 65"),
    # Some of these pass what the hints forbid on purpose: the constructors check at run time.
    (lambda: m.DeviceId("C", 12, "P", "S"), "oui must be a str"),  # type: ignore[arg-type]
    (lambda: m.EventStruct("BOOT"), "not a TR-069 event code"),
    (lambda: m.EventStruct("1 BOOT", "k" * 33), "command_key is 33 characters long"),
    (lambda: m.Inform(DEVICE, (), -1, T0, 0), "max_envelopes is -1"),
    (lambda: m.Inform(DEVICE, [m.EventStruct("1 BOOT")] * 65, 1, T0, 0), "65 events"),  # type: ignore[arg-type]
    (lambda: m.Inform(DEVICE, (), 1, "yesterday", 0), "current_time: not a valid dateTime"),
    (lambda: m.Inform(DEVICE, ("1 BOOT",), 1, T0, 0), "events holds a str"),  # type: ignore[arg-type]
    (lambda: m.Inform("dev", (), 1, T0, 0), "device_id must be a DeviceId"),  # type: ignore[arg-type]
    (lambda: m.ParameterValue("A" * 257, "x", "string"), "name is 257 characters long"),
    (lambda: m.ParameterValue("A", 5, "string"), "a int is not a valid value for type string"),
    (lambda: m.ParameterValue("A", True, "int"), "a bool is not a valid value for type int"),
    (lambda: m.ParameterValue("A", 2**32, "unsignedInt"), "outside the range of unsignedInt"),
    (lambda: m.ParameterValue("A", "2024", "dateTime"), "not a valid dateTime"),
    (lambda: m.ParameterValue("A", 5, "x:Custom"), "must be a str"),
    (lambda: m.ParameterValue("A", "5", ""), "type must be a non-empty str"),
    (lambda: m.SetParameterValues((m.ParameterValue("A", "1", "string"),) * 2),
     "appears more than once"),
    (lambda: m.SetParameterValues((), "k" * 33), "parameter_key is 33 characters long"),
    (lambda: m.SetParameterValues("A"), "parameters must be a sequence"),  # type: ignore[arg-type]
    (lambda: m.SetParameterValuesResponse(2), "status is 2"),
    (lambda: m.GetParameterValues(()), "at least one name"),
    (lambda: m.GetParameterValues(("A" * 257,)), "257 characters"),
    (lambda: m.GetParameterNames("A.", "yes"), "next_level must be a bool"),  # type: ignore[arg-type]
    (lambda: m.AddObject("Device.A", "k"), "must end with '.'"),
    (lambda: m.DeleteObject("Device.A.", "k" * 33), "parameter_key is 33"),
    (lambda: m.AddObjectResponse(0, 0), "instance_number is 0"),
    (lambda: m.Reboot("k" * 33), "command_key is 33"),
    (lambda: m.ScheduleInform(-1), "delay_seconds is -1"),
    (lambda: m.Download("k", "Firmware", "u"), "is not a TR-069 file type"),
    (lambda: m.Download("k", "1 Firmware Upgrade Image", "u" * 257), "url is 257"),
    (lambda: m.Upload("k", "1 Vendor Configuration File", "u", password="p" * 257),
     "password is 257 characters long"),
    (lambda: m.DownloadResponse(0, "never"), "start_time: not a valid dateTime"),
    (lambda: m.TransferCompleteFault(8003), "neither 0 nor a CPE fault code"),
    (lambda: m.RequestDownload("3 Vendor Configuration File", [m.ArgStruct("a", "b")] * 17),  # type: ignore[arg-type]
     "17 FileTypeArg entries"),
    (lambda: m.Kicked("c" * 33, "", "", ""), "command is 33"),
    (lambda: m.KickedResponse("u" * 1025), "next_url is 1025"),
    (lambda: m.GetRPCMethodsResponse(()), "at least one method"),
    (lambda: m.ParameterAttribute("A", 7), "notification is 7"),
    (lambda: m.SetParameterAttributesStruct("A", True, 1, False, ("x" * 65,)), "65 characters"),
    (lambda: m.SetParameterAttributes(()), "at least one entry"),
    (lambda: m.Fault(7999), "code is 7999"),
    (lambda: m.Fault(8900), "is not a CWMP fault code"),
    (lambda: m.SetParameterValuesFault("A", 8003), "code is 8003"),
])
def test_constructor_limits(factory: Any, reason: str) -> None:
    with pytest.raises(E) as info:
        factory()
    assert reason in str(info.value)


def test_messages_are_frozen_slotted_and_hashable() -> None:
    # A list on purpose: the constructor makes it a tuple.
    message = m.SetParameterValues([m.ParameterValue("A", "1", "string")], "k")  # type: ignore[arg-type]
    assert isinstance(message.parameters, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.parameter_key = "x"  # type: ignore[misc]
    assert not hasattr(message, "__dict__")
    assert hash(message) == hash(m.SetParameterValues((m.ParameterValue("A", "1", "string"),),
                                                      "k"))


def test_normalisation() -> None:
    assert m.DeviceId("C", "f4cfe2", "P", "S").oui == "F4CFE2"
    assert m.ParameterValue("A", 1, "xsd:unsignedInt").type == "unsignedInt"
    assert m.ParameterValue("A", b"x", "xsd:base64Binary").type == "base64"
    assert m.ParameterValue("A", bytearray(b"x"), "base64").value == b"x"  # type: ignore[arg-type]  # made bytes
    assert m.Fault(9005).string == "Invalid parameter name"
    assert m.SetParameterValuesFault("A", 9007).string == "Invalid parameter value"
    assert m.Fault(9890).string == "Vendor-specific fault"


def test_inform_properties() -> None:
    inform = m.Inform(DEVICE, (m.EventStruct("0 BOOTSTRAP"), m.EventStruct("1 BOOT")), 1, T0, 0,
                      (m.ParameterValue("A", 1, "unsignedInt"), m.ParameterValue("B", "x",
                                                                                 "string")))
    assert inform.event_codes == ("0 BOOTSTRAP", "1 BOOT")
    assert inform.parameter_map == {"A": 1, "B": "x"}


def test_passwords_never_in_repr() -> None:
    download = m.Download("k", "1 Firmware Upgrade Image", "https://fw", "user", "hunter2")
    upload = m.Upload("k", "2 Vendor Log File", "https://logs", "user", "hunter2")
    spv = m.SetParameterValues((m.ParameterValue(
        "Device.Services.VoiceService.1.VoiceProfile.1.Line.1.SIP.AuthPassword", "hunter2",
        "string"),))
    for message in (download, upload, spv):
        assert "hunter2" not in repr(message) and "hunter2" not in str(message)
    assert "user" in repr(download)


def test_fault_codes() -> None:
    assert len([c for c in FaultCode if 8000 <= c <= 8006]) == 7
    assert len([c for c in FaultCode if 9000 <= c <= 9032]) == 33
    assert FaultCode.INVALID_PARAMETER_NAME.string == "Invalid parameter name"
    assert FaultCode(8005).string == "Retry request"
    assert fault_string(9032).startswith("Invalid Deployment Unit Update")
    assert [soap_fault_code(c) for c in (8003, 9003, 9005, 9006, 9007, 9008)] == ["Client"] * 6
    assert [soap_fault_code(c) for c in (8000, 8005, 9000, 9002, 9004, 9009, 9010)] == \
        ["Server"] * 7
    assert FaultCode.INVALID_ARGUMENTS.soap_faultcode == "Client"


def test_unknown_time() -> None:
    assert datetime(1, 1, 1, tzinfo=UTC) == m.UNKNOWN_TIME
    assert m.DownloadResponse(1).start_time == m.UNKNOWN_TIME
