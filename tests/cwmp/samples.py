"""One or more sample messages of every RPC, valid in the schema of a given namespace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from acs_security.cwmp import messages as m
from acs_security.cwmp.namespaces import CWMP_1_0

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 10, 0, 7, 250000, tzinfo=timezone(timedelta(hours=2)))
CISCO_OUI = "00000C"  # Cisco Systems, Inc. (IEEE OUI registry)

DEVICE = m.DeviceId("Cisco Systems, Inc.", CISCO_OUI, "CP-8851-3PCC", "FCH2148A0BC")

TYPED_VALUES = (
    m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.14-1-1MPP0001-272", "string"),
    m.ParameterValue("Device.X_CISCO_Test.Markup", "a & b < c > d \"q\" 'a'", "string"),
    m.ParameterValue("Device.X_CISCO_Test.Lines", "line1\r\nline2\ttab  ", "string"),
    m.ParameterValue("Device.X_CISCO_Test.Unicode", "Zürich 東京 \U0001F4DE", "string"),
    m.ParameterValue("Device.X_CISCO_Test.Empty", "", "string"),
    m.ParameterValue("Device.X_CISCO_Test.Int", -2147483648, "int"),
    m.ParameterValue("Device.ManagementServer.PeriodicInformInterval", 4294967295,
                     "unsignedInt"),
    m.ParameterValue("Device.X_CISCO_Test.Long", -9223372036854775808, "long"),
    m.ParameterValue("Device.X_CISCO_Test.ULong", 18446744073709551615, "unsignedLong"),
    m.ParameterValue("Device.ManagementServer.PeriodicInformEnable", True, "boolean"),
    m.ParameterValue("Device.X_CISCO_Test.Off", False, "boolean"),
    m.ParameterValue("Device.DeviceInfo.FirstUseDate", T0, "dateTime"),
    m.ParameterValue("Device.X_CISCO_Test.Offset", T1, "dateTime"),
    m.ParameterValue("Device.X_CISCO_Test.Unknown", m.UNKNOWN_TIME, "dateTime"),
    m.ParameterValue("Device.X_CISCO_Test.Far", "10000-01-01T00:00:00Z", "dateTime"),
    m.ParameterValue("Device.X_CISCO_Test.Blob", b"\x00\x01binary\xff", "base64"),
    m.ParameterValue("Device.X_CISCO_Test.Hex", b"\xde\xad\xbe\xef", "hexBinary"),
    m.ParameterValue("Device.X_CISCO_Test.Byte", "200", "xsd:unsignedByte"),
)


def samples(namespace: str) -> list[m.Message]:
    """Sample messages whose content the schema of ``namespace`` accepts."""
    v10 = namespace == CWMP_1_0
    events = (m.EventStruct("0 BOOTSTRAP"), m.EventStruct("1 BOOT"),
              m.EventStruct("M Reboot", "reboot-42"), m.EventStruct("X 00000C CISCO_EVENT"))
    done = m.TransferCompleteFault()
    failed = m.TransferCompleteFault(9010, "File transfer failure")
    result: list[m.Message] = [
        m.Inform(DEVICE, events, 1, T0, 0, TYPED_VALUES),
        m.Inform(DEVICE, (m.EventStruct("2 PERIODIC"),), 1,
                 datetime(1, 1, 1, 0, 3, 12, tzinfo=UTC), 3, ()),
        m.InformResponse(),
        m.TransferComplete("fw-2024-05", done, T0, T1),
        m.TransferComplete("", failed, m.UNKNOWN_TIME, m.UNKNOWN_TIME),
        m.TransferCompleteResponse(),
        m.GetRPCMethods(),
        m.GetRPCMethodsResponse(("Inform", "GetRPCMethods", "TransferComplete")),
        m.RequestDownload("3 Vendor Configuration File",
                          (m.ArgStruct("Version", "2"), m.ArgStruct("Profile", "a&b"))),
        m.RequestDownload("1 Firmware Upgrade Image"),
        m.RequestDownloadResponse(),
        m.Kicked("cmd", "http://portal.example/ref", "arg=1", "http://portal.example/next"),
        m.KickedResponse("http://portal.example/next"),
        m.GetParameterNames("Device.ManagementServer.", True),
        m.GetParameterNames("", False),
        m.GetParameterNamesResponse((m.ParameterInfo("Device.ManagementServer.URL", True),
                                     m.ParameterInfo("Device.DeviceInfo.", False))),
        m.GetParameterNamesResponse(()),
        m.GetParameterValues(("Device.DeviceInfo.SoftwareVersion", "Device.ManagementServer.")),
        m.GetParameterValuesResponse(TYPED_VALUES),
        m.SetParameterValues(TYPED_VALUES[5:12], "policy-17"),
        m.SetParameterValues((), ""),
        m.SetParameterValuesResponse(0),
        m.SetParameterValuesResponse(1),
        m.GetParameterAttributes(("Device.ManagementServer.URL",)),
        m.GetParameterAttributesResponse((
            m.ParameterAttribute("Device.ManagementServer.URL", 2, ("Subscriber",)),
            m.ParameterAttribute("Device.DeviceInfo.SoftwareVersion", 0),
        )),
        m.SetParameterAttributes((
            m.SetParameterAttributesStruct("Device.DeviceInfo.SoftwareVersion", True, 1),
            m.SetParameterAttributesStruct("Device.ManagementServer.URL", False, 0, True,
                                           ("Subscriber",)),
        )),
        m.SetParameterAttributesResponse(),
        m.AddObject("Device.X_CISCO_Firewall.Rule.", "add-1"),
        m.AddObjectResponse(3, 0),
        m.DeleteObject("Device.X_CISCO_Firewall.Rule.3.", "del-1"),
        m.DeleteObjectResponse(1),
        m.Reboot("reboot-42"),
        m.RebootResponse(),
        m.FactoryReset(),
        m.FactoryResetResponse(),
        m.Download("fw-2024-05", "1 Firmware Upgrade Image", "https://fw.example/cp-8851.loads",
                   "fwuser", "s3cr3t&<pw>", 123456, "cp-8851.loads", 0, "", ""),
        m.Download("cfg-1", "3 Vendor Configuration File", "https://cfg.example/a.xml"),
        m.DownloadResponse(1),
        m.DownloadResponse(0, T0, T1),
        m.Upload("log-1", "2 Vendor Log File", "https://logs.example/up", "u", "p", 5),
        m.UploadResponse(0, T0, T0),
        m.ScheduleInform(300, "si-1"),
        m.ScheduleInformResponse(),
        m.Fault(8003),
        m.Fault(9005, "Invalid parameter name"),
        m.Fault(9003, "Invalid arguments", (
            m.SetParameterValuesFault("Device.X_CISCO_Firewall.Enable", 9007, "Invalid value"),
            m.SetParameterValuesFault("Device.DeviceInfo.SoftwareVersion", 9008),
        )),
        m.Fault(9801, "Vendor fault"),
    ]
    if not v10:
        # AutonomousTransferComplete and the 10+ event codes exist from cwmp-1-1 on.
        result += [
            m.AutonomousTransferComplete("http://acs.example/announce", "https://fw.example/x",
                                         True, "1 Firmware Upgrade Image", 1024, "x.loads",
                                         done, T0, T1),
            m.AutonomousTransferCompleteResponse(),
            m.Inform(DEVICE, (m.EventStruct("10 AUTONOMOUS TRANSFER COMPLETE"),), 1, T0, 0, ()),
        ]
    return result
