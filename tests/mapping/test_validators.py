"""Each validator against valid and invalid values taken from the seeds."""

from __future__ import annotations

import pickle

import pytest

from acs_security.mapping import UnknownSettingError, ValidationError, validate_value


def ok(key: str, value: str) -> None:
    validate_value(key, value)


def refused(key: str, value: str, rule: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_value(key, value)
    assert rule in info.value.rule, info.value.rule
    return info.value


@pytest.mark.parametrize(
    "key, value",
    [
        ("Restricted_Access_Domains", "voiceip.com, voiceipl.com"),  # seed 000 example
        ("Restricted_Access_Domains", "voiceip.com,voiceip1.com"),
        ("Restricted_Access_Domains", ""),
        ("DHCP_Option_To_Use", "66,160,159,150,60,43,125"),  # seed 000 default
        ("DHCPv6_Option_To_Use", "17,160,159"),
        ("LDAP_Server", "ldaps://10.45.76.79"),  # seed 000 example
        ("LDAP_Server", "ldaps://ldap.example.com:636"),
        ("LDAP_Server", "ldap://ldap.example.com:389"),
        ("LDAP_Server", "ldaps://[2001:db8::1]:636"),
        ("PAC_URL", "http://proxy.department.branch.example.com/pac"),  # seed 000 example
        ("PAC_URL", "tftp://192.0.2.1/proxy.pac"),
        ("PAC_URL", "https://pac.example.com:8443/p.pac"),
        ("Proxy_Host", "proxy.example.com"),  # seed 000 example
        ("Proxy_Host", "192.0.2.1"),
        ("Proxy_Host", "2001:db8::1"),
        ("Proxy_Port", "3128"),
        ("Proxy_Port", "65535"),
        ("VPN_Server", "100.101.1.218"),  # seed 001 example
        ("VPN_Server", "vpn_server.example.com".replace("_", "-")),
        ("SIP_Transport_1_", "TLS"),
        ("SIP_Transport_3_", "Auto"),
        ("TLS_Min_Version", "TLS 1.2"),
        ("Firewall", "Disabled"),
        ("Proxy_Mode", "Manual"),
        ("Use_Auto_Discovery__WPAD_", "No"),
        ("ACS_URL", "https://acs.example.net/cwmp"),
        ("ACS_URL", "http://[2001:db8::5]:7547/"),
        ("Periodic_Inform_Interval", "86400"),
        ("Device.X_CISCO_StaticIPSettings.StaticIP", "192.0.2.44"),
        ("Device.X_CISCO_StaticIPSettings.NetMask", "255.255.252.0"),
        ("Device.X_CISCO_IPv4Settings.ConnectionType", "Static IP"),
        ("VPN_Password", "x" * 31),
    ],
)
def test_valid_values(key: str, value: str) -> None:
    ok(key, value)


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("Restricted_Access_Domains", "voiceip.com,,voiceip1.com", "empty entry"),
        ("Restricted_Access_Domains", "http://voiceip.com", "without scheme"),
        ("Restricted_Access_Domains", "10.1.2.3", "IP address"),
        ("Restricted_Access_Domains", "voiceip", "fully qualified"),
        ("Restricted_Access_Domains", "-bad-.example.com", "fully qualified"),
        ("DHCP_Option_To_Use", "66,161", "option 161 is not supported"),
        ("DHCP_Option_To_Use", "66,66", "listed twice"),
        ("DHCP_Option_To_Use", "66;160", "not an option number"),
        ("DHCPv6_Option_To_Use", "17,43", "option 43 is not supported"),
        ("LDAP_Server", "10.45.76.79", "needs a scheme"),
        ("LDAP_Server", "https://10.45.76.79", "scheme https:// is not supported"),
        ("LDAP_Server", "ldaps://10.45.76.79:0", "outside 1-65535"),
        ("LDAP_Server", "ldaps://10.45.76.79:99999", "outside 1-65535"),
        ("LDAP_Server", "ldaps://ldap.example.com/dc=example", "nothing may follow"),
        ("LDAP_Server", "ldaps://user:pw@ldap.example.com", "user information"),
        ("PAC_URL", "ftp://pac.example.com/p.pac", "scheme ftp:// is not supported"),
        ("PAC_URL", "proxy.example.com/p.pac", "needs a scheme"),
        ("Proxy_Host", "http://proxy.example.com", "no scheme"),
        ("Proxy_Host", "proxy.example.com:3128", "no port"),
        ("Proxy_Host", "proxy.example.com/x", "no path"),
        ("Proxy_Host", "bad host", "neither an IP address nor a host name"),
        ("Proxy_Port", "", "not a port number"),
        ("Proxy_Port", "0", "outside 1-65535"),
        ("Proxy_Port", "65536", "outside 1-65535"),
        ("Proxy_Port", "+80", "not a port number"),
        ("VPN_Server", "x" * 32, "at most 31"),
        ("SIP_Transport_1_", "tls", "spells it 'TLS'"),
        ("SIP_Transport_1_", "SCTP", "not one of"),
        ("TLS_Min_Version", "TLS1.2", "not one of"),
        ("TLS_Min_Version", "TLS 1.3", "not one of"),
        ("Firewall", "enabled", "spells it 'Enabled'"),
        ("Proxy_Mode", "manual", "spells it 'Manual'"),
        ("Auth_INVITE_1_", "yes", "spells it 'Yes'"),
        ("Auth_INVITE_1_", "true", "not one of"),
        ("Enable_TR-069", "1", "not one of"),
        ("ACS_URL", "acs.example.net", "needs a scheme"),
        ("ACS_URL", "ftp://acs.example.net", "not supported"),
        ("Periodic_Inform_Interval", "0", "outside 1-4294967295"),
        ("Periodic_Inform_Interval", "-5", "not a whole number"),
        ("Device.X_CISCO_StaticIPSettings.StaticIP", "192.0.2", "not an IPv4"),
        ("Device.X_CISCO_StaticIPSettings.NetMask", "255.0.255.0", "not contiguous"),
        ("Device.X_CISCO_IPv4Settings.ConnectionType", "Static", "not one of"),
        ("TLS_Cipher_List", "RSA\x01", "control character"),
    ],
)
def test_invalid_values(key: str, value: str, rule: str) -> None:
    refused(key, value, rule)


def test_error_names_element_path_value_rule_and_allowed_values() -> None:
    error = refused("SIP_Transport_2_", "SCTP", "not one of")
    assert error.element == "SIP_Transport_2_"
    assert error.path == "Device.X_CISCO_Ext.2.SIPTransport"
    assert error.extension == 2 and error.value == "SCTP"
    assert error.allowed == "UDP, TCP, TLS, Auto"
    assert str(error) == (
        "SIP_Transport_2_ (Device.X_CISCO_Ext.2.SIPTransport) = 'SCTP': "
        "not one of the values the phone accepts; allowed: UDP, TCP, TLS, Auto"
    )


def test_secrets_never_appear_in_errors() -> None:
    secret = "Hunter2-" + "s" * 40
    error = refused("VPN_Password", secret, "at most 31")
    for text in (str(error), repr(error), str(error.args), repr(pickle.loads(pickle.dumps(error)))):
        assert secret not in text
        assert "********" in text


def test_unknown_key() -> None:
    with pytest.raises(UnknownSettingError, match="did you mean 'Proxy_Host'"):
        validate_value("Proxy_Hots", "x")
