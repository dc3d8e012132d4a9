"""How a simulated phone answers each ACS request (pure: no fleet, no sockets)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.cwmp import messages as m
from acs_security.sim.faults import FaultKind
from acs_security.sim.rpc import RPC_METHODS, answer, apply_downloaded_file
from tests.sim.helpers import environment, make_phone

SEC = "Device.X_CISCO_SecuritySettings."
MS = "Device.ManagementServer."
PV = m.ParameterValue


def spv(*params: m.ParameterValue, key: str = "k1") -> m.SetParameterValues:
    return m.SetParameterValues(tuple(params), key)


def test_set_parameter_values_with_good_and_bad_values_faults_each_bad_one_and_changes_nothing():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    before = dict(phone.params)
    reply = answer(phone, spv(
        PV(SEC + "TLSCipherList", "ECDHE+AESGCM:!aNULL", "string"),          # good
        PV("Device.X_CISCO_Nothing.Here", "x", "string"),                     # 9005
        PV(MS + "PeriodicInformInterval", "30", "string"),                    # 9006
        PV(SEC + "TLSClientMinVersion", "TLS 9.9", "string"),                 # 9007
        PV(MS + "ConnectionRequestURL", "http://evil/", "string"),            # 9008
        PV("Device.X_CISCO_Ext.11.SIPTransport", "TLS", "string"),            # 9005: 10 lines
        PV(SEC + "TLSMinVersion", "TLS 1.2", "string"),                       # 9005: firmware
        PV("Device.DeviceInfo.SerialNumber", "X", "string"),                  # 9008 standard
        PV(MS + "CWMPRetryMinimumWaitInterval", 0, "unsignedInt"),            # 9007 range
    ), 0.0)
    assert isinstance(reply, m.Fault) and reply.code == 9003
    assert [(f.name, f.code) for f in reply.set_parameter_values_faults] == [
        ("Device.X_CISCO_Nothing.Here", 9005),
        (MS + "PeriodicInformInterval", 9006),
        (SEC + "TLSClientMinVersion", 9007),
        (MS + "ConnectionRequestURL", 9008),
        ("Device.X_CISCO_Ext.11.SIPTransport", 9005),
        (SEC + "TLSMinVersion", 9005),
        ("Device.DeviceInfo.SerialNumber", 9008),
        (MS + "CWMPRetryMinimumWaitInterval", 9007),
    ]
    assert dict(phone.params) == before  # all or nothing (TR-069 A.3.2.1)
    assert phone.params[MS + "ParameterKey"] == ""
    assert phone.spv_by_key == {"k1": 1}


def test_successful_set_applies_all_updates_the_key_and_answers_status_0():
    phone = make_phone("CP-7841-3PCC", "11.3(7)")
    reply = answer(phone, spv(
        PV(SEC + "TLSMinVersion", "TLS 1.2", "string"),
        PV(MS + "PeriodicInformEnable", False, "boolean"),
        PV(MS + "PeriodicInformInterval", 600, "unsignedInt"),
        PV("Device.X_CISCO_Ext.4.SIPTransport", "TLS", "string"),
        key="policy-1",
    ), 0.0)
    assert reply == m.SetParameterValuesResponse(0)
    assert phone.params[SEC + "TLSMinVersion"] == "TLS 1.2"
    assert phone.params[MS + "PeriodicInformEnable"] == "false"
    assert phone.periodic() == (False, 600)
    assert phone.params["Device.X_CISCO_Ext.4.SIPTransport"] == "TLS"
    assert phone.params[MS + "ParameterKey"] == "policy-1"
    assert phone.actions is None


def test_a_setting_applied_at_boot_answers_status_1_and_the_phone_reboots_after():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    reply = answer(phone, spv(PV("Device.X_CISCO_VPNSettings.ConnectOnBootup", "Yes", "string")), 0.0)
    assert reply == m.SetParameterValuesResponse(1)
    assert phone.take_actions() == [("reboot", None)]


def test_injected_faults_reject_security_values_and_old_firmware_lacks_settings():
    rejecting = make_phone(faults=FaultKind.REJECT)
    reply = answer(rejecting, spv(PV(SEC + "TLSCipherList", "HIGH", "string")), 0.0)
    assert isinstance(reply, m.Fault)
    assert [(f.code, "firmware" in f.string) for f in reply.set_parameter_values_faults] == [(9007, True)]
    old = make_phone("CP-8851-3PCC", "11.2(3)")
    reply = answer(old, spv(PV(SEC + "FIPSMode", "No", "string")), 0.0)
    assert [f.code for f in reply.set_parameter_values_faults] == [9005]  # type: ignore[union-attr]


def test_secret_values_never_appear_in_faults_and_read_back_empty():
    phone = make_phone()
    reply = answer(phone, spv(PV(MS + "Password", 12345, "unsignedInt")), 0.0)
    assert "12345" not in repr(reply)
    answer(phone, spv(PV(MS + "ConnectionRequestPassword", "s3cret!", "string")), 0.0)
    got = answer(phone, m.GetParameterValues((MS + "ConnectionRequestPassword",)), 0.0)
    assert got == m.GetParameterValuesResponse((PV(MS + "ConnectionRequestPassword", "", "string"),))
    assert phone.cr_credentials()[1] == "s3cret!"
    assert "acs-secret" not in repr(phone.env)


def test_get_parameter_values_of_a_partial_path_with_types():
    phone = make_phone()
    reply = answer(phone, m.GetParameterValues((MS,)), 0.0)
    assert isinstance(reply, m.GetParameterValuesResponse)
    values = {p.name: (p.value, p.type) for p in reply.parameters}
    assert values[MS + "EnableCWMP"] == (True, "boolean")
    assert values[MS + "PeriodicInformInterval"] == (300, "unsignedInt")
    assert values[MS + "URL"] == ("http://acs.example.net:7547/", "string")
    assert values[MS + "ConnectionRequestURL"] == ("http://127.0.0.1:9000/SIM00000001", "string")
    assert answer(phone, m.GetParameterValues(("Device.Nope",)), 0.0) == m.Fault(9005, "Device.Nope: no such parameter")


def test_get_parameter_names_follows_tr069_a323():
    phone = make_phone("CP-6821-3PCC")
    top = answer(phone, m.GetParameterNames("", True), 0.0)
    assert [p.name for p in top.parameters] == ["Device."]  # type: ignore[union-attr]
    level = answer(phone, m.GetParameterNames(MS, True), 0.0)
    names = {p.name: p.writable for p in level.parameters}  # type: ignore[union-attr]
    assert names[MS + "URL"] is True and names[MS + "ParameterKey"] is False
    assert all(n.startswith(MS) and "." not in n[len(MS):] for n in names)
    whole = answer(phone, m.GetParameterNames("Device.X_CISCO_Ext.", False), 0.0)
    got = [p.name for p in whole.parameters]  # type: ignore[union-attr]
    assert got[0] == "Device.X_CISCO_Ext." and "Device.X_CISCO_Ext.2." in got
    assert "Device.X_CISCO_Ext.2.SIPTransport" in got and "Device.X_CISCO_Ext.3." not in got
    assert answer(phone, m.GetParameterNames(MS + "URL", True), 0.0).code == 9003  # type: ignore[union-attr]
    assert answer(phone, m.GetParameterNames("Device.Nope.", False), 0.0).code == 9005  # type: ignore[union-attr]


def test_attributes_are_kept_and_forced_ones_refused_all_or_nothing():
    phone = make_phone()
    ok = answer(phone, m.SetParameterAttributes((
        m.SetParameterAttributesStruct(SEC + "TLSCipherList", True, 2),
        m.SetParameterAttributesStruct(MS + "URL", True, 1, True, ("Subscriber",)),
    )), 0.0)
    assert ok == m.SetParameterAttributesResponse()
    got = answer(phone, m.GetParameterAttributes((SEC + "TLSCipherList", MS + "URL",
                                                  MS + "ConnectionRequestURL")), 0.0)
    assert [(a.name, a.notification, a.access_list) for a in got.parameters] == [  # type: ignore[union-attr]
        (SEC + "TLSCipherList", 2, ()), (MS + "URL", 1, ("Subscriber",)),
        (MS + "ConnectionRequestURL", 2, ())]
    refused = answer(phone, m.SetParameterAttributes((
        m.SetParameterAttributesStruct(SEC + "Firewall", True, 2),
        m.SetParameterAttributesStruct(MS + "ConnectionRequestURL", True, 0),
    )), 0.0)
    assert refused.code == 9009  # type: ignore[union-attr]
    assert phone.notification(SEC + "Firewall") == 0
    denied = answer(phone, m.SetParameterAttributes((
        m.SetParameterAttributesStruct("Device.DeviceInfo.UpTime", True, 2),)), 0.0)
    assert denied.code == 9009  # type: ignore[union-attr]


def test_objects_cannot_be_added_or_deleted_and_unknown_methods_get_9000():
    phone = make_phone()
    assert answer(phone, m.AddObject("Device.X_CISCO_Ext."), 0.0).code == 9005  # type: ignore[union-attr]
    assert answer(phone, m.DeleteObject("Device.Nope.1."), 0.0).code == 9005  # type: ignore[union-attr]
    assert answer(phone, m.Upload("k", "1 Vendor Configuration File", "http://x/"), 0.0).code == 9000  # type: ignore[union-attr]
    assert answer(phone, m.UnknownMessage("X_Frobnicate"), 0.0).code == 9000  # type: ignore[union-attr]
    assert answer(phone, m.GetRPCMethods(), 0.0) == m.GetRPCMethodsResponse(RPC_METHODS)
    assert phone.params[MS + "ParameterKey"] == ""


def test_reboot_factory_reset_and_download_are_queued_for_after_the_session():
    phone = make_phone()
    assert answer(phone, m.Reboot("rb-1"), 0.0) == m.RebootResponse()
    assert answer(phone, m.FactoryReset(), 0.0) == m.FactoryResetResponse()
    download = m.Download("dl-1", "3 Vendor Configuration File", "http://files/cfg.xml")
    assert answer(phone, download, 0.0) == m.DownloadResponse(1)
    assert phone.take_actions() == [("reboot", "rb-1"), ("factory_reset", None), ("download", download)]
    assert answer(phone, m.Download("d", "1 Firmware Upgrade Image", "ftp://x/f"), 0.0).code == 9013  # type: ignore[union-attr]
    assert answer(phone, m.Download("d", "2 Web Content", "http://x/f"), 0.0).code == 9003  # type: ignore[union-attr]


def test_a_downloaded_cfg_xml_is_applied_or_refused_whole():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    good = (b"<flat-profile><TLS_Cipher_List>HIGH</TLS_Cipher_List>"
            b"<SIP_Transport_2_>TLS</SIP_Transport_2_></flat-profile>")
    assert apply_downloaded_file(phone, "3 Vendor Configuration File", good) == (0, "")
    assert phone.params[SEC + "TLSCipherList"] == "HIGH"
    assert phone.params["Device.X_CISCO_Ext.2.SIPTransport"] == "TLS"
    bad = b"<flat-profile><SIP_Transport_1_>Pigeon</SIP_Transport_1_></flat-profile>"
    assert apply_downloaded_file(phone, "3 Vendor Configuration File", bad)[0] == 9018
    assert phone.params["Device.X_CISCO_Ext.1.SIPTransport"] == "UDP"
    code, text = apply_downloaded_file(phone, "3 Vendor Configuration File", b"<flat-profile><a>")
    assert code == 9018 and "line 1" in text
    assert apply_downloaded_file(phone, "1 Firmware Upgrade Image", b"\x7fELF") == (0, "")


def test_a_new_acs_url_means_bootstrap_with_the_new_acs():
    phone = make_phone(env=environment())
    answer(phone, spv(PV(MS + "URL", "https://acs2.example.net/cwmp", "string")), 0.0)
    assert phone.acs_url == "https://acs2.example.net/cwmp"
    assert phone.events == [("0 BOOTSTRAP", "")]


GOOD = [PV(SEC + "TLSCipherList", "HIGH", "string"), PV(SEC + "Firewall", "Disabled", "string"),
        PV("Device.X_CISCO_Ext.1.SIPTransport", "TCP", "string"),
        PV(MS + "PeriodicInformInterval", 120, "unsignedInt")]
BAD = [(PV("Device.X_CISCO_Nope.X", "1", "string"), 9005),
       (PV(SEC + "Firewall", "Maybe", "string"), 9007),
       (PV(MS + "ParameterKey", "x", "string"), 9008),
       (PV(MS + "PeriodicInformEnable", "true", "string"), 9006)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(GOOD) + len(BAD))), unique=True, min_size=1))
def test_set_parameter_values_is_all_or_nothing(picks):
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    chosen = [GOOD[i] if i < len(GOOD) else BAD[i - len(GOOD)][0] for i in picks]
    names = [p.name for p in chosen]
    if len(set(names)) != len(names):
        return  # the codec refuses a name given twice before the phone sees it
    before = dict(phone.params)
    reply = answer(phone, m.SetParameterValues(tuple(chosen), "h"), 0.0)
    expected = [(bad.name, code) for i in picks if i >= len(GOOD)
                for bad, code in [BAD[i - len(GOOD)]]]
    if expected:
        assert isinstance(reply, m.Fault)
        assert [(f.name, f.code) for f in reply.set_parameter_values_faults] == expected
        assert dict(phone.params) == before
    else:
        assert reply == m.SetParameterValuesResponse(0)
        assert phone.params[MS + "ParameterKey"] == "h"
        assert all(phone.params[p.name] == str(p.value) for p in chosen)
