"""cfg.xml <-> TR-069 translation and the phone's SetParameterValues faults."""

from __future__ import annotations

import pytest

from acs_security.mapping import (
    InvalidValues,
    Tr069Fault,
    Tr069Param,
    UnknownModelError,
    cfgxml_to_tr069,
    parse_cfgxml,
    tr069_to_cfgxml,
    validate_tr069,
)

PC = "CP-8841-3PCC"


def test_cfgxml_to_tr069_types_booleans_and_unchanged_tags() -> None:
    cfg = parse_cfgxml(
        b"<flat-profile><Enable_TR-069>Yes</Enable_TR-069><Periodic_Inform_Interval>3600</Periodic_Inform_Interval>"
        b"<Periodic_Inform_Enable>No</Periodic_Inform_Enable><Proxy_Host/><SIP_Transport_3_>TLS</SIP_Transport_3_>"
        b"<TLS_Cipher_List>HIGH:!aNULL</TLS_Cipher_List><Bogus>1</Bogus></flat-profile>"
    )
    params = cfgxml_to_tr069(cfg, model=PC)
    assert params == [
        Tr069Param("Device.X_CISCO_SecuritySettings.TLSCipherList", "HIGH:!aNULL", "string"),
        Tr069Param("Device.X_CISCO_Ext.3.SIPTransport", "TLS", "string"),
        Tr069Param("Device.ManagementServer.EnableCWMP", "true", "boolean"),
        Tr069Param("Device.ManagementServer.PeriodicInformEnable", "false", "boolean"),
        Tr069Param("Device.ManagementServer.PeriodicInformInterval", "3600", "unsignedInt"),
    ]
    assert tr069_to_cfgxml(params, model=PC) == {
        "TLS_Cipher_List": "HIGH:!aNULL", "SIP_Transport_3_": "TLS", "Enable_TR-069": "Yes",
        "Periodic_Inform_Enable": "No", "Periodic_Inform_Interval": "3600",
    }


def test_translation_refuses_everything_at_once_and_translates_nothing() -> None:
    with pytest.raises(InvalidValues) as info:
        cfgxml_to_tr069({"Proxy_Mode": "Manual", "SIP_Transport_3_": "TLS", "VPN_Password": "p"}, model="CP-6821-3PCC")
    rules = [e.rule for e in info.value.errors]
    assert any("extensions 1-2 only" in r for r in rules)
    assert any("has no vpn settings" in r for r in rules)
    assert any("Proxy Mode Manual needs" in r for r in rules)
    with pytest.raises(UnknownModelError):
        cfgxml_to_tr069({}, model="CP-0000")


def test_tr069_to_cfgxml_accepts_the_wire_forms_and_refuses_bad_ones() -> None:
    assert tr069_to_cfgxml([("Device.ManagementServer.EnableCWMP", "1", "xsd:boolean"),
                            ("Device.ManagementServer.PeriodicInformInterval", "0020", None)]) == {
        "Enable_TR-069": "Yes", "Periodic_Inform_Interval": "20"}
    with pytest.raises(InvalidValues) as info:
        tr069_to_cfgxml([
            ("Device.X_CISCO_Nope.X", "1", "string"),
            ("Device.ManagementServer.EnableCWMP", "true", "string"),
            ("Device.X_CISCO_SecuritySettings.Firewall", "On", "string"),
            ("Device.X_CISCO_SecuritySettings.FIPSMode", "No", "string"),
        ])
    assert [e.path for e in info.value.errors] == [
        "Device.X_CISCO_Nope.X", "Device.ManagementServer.EnableCWMP",
        "Device.X_CISCO_SecuritySettings.Firewall", "Device.X_CISCO_SecuritySettings.FIPSMode",
    ]
    assert tr069_to_cfgxml([("Device.X_CISCO_SecuritySettings.FIPSMode", "No", "string")], skip_unmapped=True) == {}


@pytest.mark.parametrize(
    "path, value, xsi, code",
    [
        ("Device.X_CISCO_SecuritySettings.TLSCipherList", "RSA:!aNULL:!eNULL", "xsd:string", None),
        ("Device.X_CISCO_SecuritySettings.TLSCipherList", "RSA:!aNULL:!eNULL", "string", None),
        ("Device.X_CISCO_Ext.10.SIPTransport", "TLS", "xsd:string", None),
        ("Device.ManagementServer.EnableCWMP", "false", "xsd:boolean", None),
        ("Device.X_CISCO_Ext.11.SIPTransport", "TLS", "xsd:string", 9005),
        ("Device.X_CISCO_SecuritySettings.", "x", "xsd:string", 9005),
        ("Device.X_CISCO_SecuritySettings.TLSCipherLst", "HIGH", "xsd:string", 9005),
        ("Device.ManagementServer.ParameterKey", "k", "xsd:string", 9008),
        ("Device.ManagementServer.ConnectionRequestURL", "http://x", "xsd:string", 9008),
        ("Device.ManagementServer.EnableCWMP", "true", "xsd:string", 9006),
        ("Device.X_CISCO_HTTPProxySettings.ProxyPort", "3128", "xsd:string", 9006),
        ("Device.ManagementServer.EnableCWMP", "yes", "xsd:boolean", 9007),
        ("Device.X_CISCO_HTTPProxySettings.ProxyPort", "70000", "xsd:unsignedInt", 9007),
        ("Device.X_CISCO_HTTPProxySettings.ProxyPort", "port", "xsd:unsignedInt", 9007),
        ("Device.X_CISCO_SecuritySettings.TLSCipherList", "NOPE", "xsd:string", 9007),
        ("Device.X_CISCO_SecuritySettings.FirewallOptions", "UDP:9:1", "xsd:string", 9007),
    ],
)
def test_validate_tr069_answers_like_the_phone(path: str, value: str, xsi: str, code: int | None) -> None:
    fault = validate_tr069(path, value, xsi, product_class=PC)
    assert (fault.code if fault else None) == code
    if fault:
        assert isinstance(fault, Tr069Fault) and fault.message


def _fault(path: str, value: str, xsi: str, *, product_class: str, software_version: str | None = None) -> Tr069Fault:
    """The fault validate_tr069 answers for a value the phone refuses (None for one it takes)."""
    fault = validate_tr069(path, value, xsi, product_class=product_class, software_version=software_version)
    assert fault is not None, (path, value)
    return fault


def test_validate_tr069_knows_models_and_firmware_and_hides_secrets() -> None:
    assert _fault("Device.X_CISCO_VPNSettings.VPNServer", "vpn.example.com", "string",
                          product_class="CP-8832-3PCC").code == 9005
    assert _fault("Device.X_CISCO_SecuritySettings.TLSMinVersion", "TLS 1.2", "string",
                          product_class=PC, software_version="sip88xx.12-0-1MPP-1").code == 9005
    fault = _fault("Device.X_CISCO_VPNSettings.VPNPassword", "TopSecret" * 5, "string", product_class=PC)
    assert fault.code == 9007 and "TopSecret" not in fault.message
    code, message = _fault("Device.ManagementServer.ParameterKey", "k", "string", product_class=PC)
    assert code == 9008 and "ParameterKey" in message
