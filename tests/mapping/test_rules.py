"""Cross-setting rules from the seeds, model capabilities, and validate_values."""

from __future__ import annotations

import pytest

from acs_security.mapping import UnknownModelError, validate_values


def rule_ids(values, **kwargs) -> list[str | None]:
    return [e.rule_id for e in validate_values(values, **kwargs)]


@pytest.mark.parametrize(
    "values, current, broken",
    [
        ({"Proxy_Mode": "Manual"}, {}, "proxy-manual-needs-host-port"),
        ({"Proxy_Mode": "Manual", "Proxy_Host": "proxy.example.com"}, {}, None),  # port default 3128
        ({"Proxy_Mode": "Manual", "Proxy_Host": "proxy.example.com", "Proxy_Port": "8080"}, {}, None),
        ({"Proxy_Mode": "Manual"}, {"Proxy_Host": "proxy.example.com"}, None),
        ({"Proxy_Server_Requires_Authentication": "Yes", "Proxy_Username": "u"}, {}, "proxy-auth-needs-credentials"),
        ({"Proxy_Server_Requires_Authentication": "Yes", "Proxy_Username": "u", "Proxy_Password": "p"}, {}, None),
        ({"Proxy_Mode": "Auto", "Use_Auto_Discovery__WPAD_": "No"}, {}, "proxy-auto-without-wpad-needs-pac-url"),
        ({"Proxy_Mode": "Auto", "Use_Auto_Discovery__WPAD_": "No", "PAC_URL": "http://p.example.com/p.pac"}, {}, None),
        ({"Proxy_Mode": "Auto"}, {}, None),  # WPAD defaults to Yes
        ({"MediaSec_Over_TLS_Only_2_": "Yes"}, {}, "mediasec-over-tls-only-needs-sip-tls"),
        ({"MediaSec_Over_TLS_Only_2_": "Yes", "SIP_Transport_2_": "TLS"}, {}, None),
        ({"MediaSec_Over_TLS_Only_2_": "Yes", "SIP_Transport_1_": "TLS"}, {}, "mediasec-over-tls-only-needs-sip-tls"),
        ({"SIP_Transport_2_": "UDP"}, {"MediaSec_Over_TLS_Only_2_": "Yes"}, "mediasec-over-tls-only-needs-sip-tls"),
        ({"Auth_Support_RFC8760": "Yes"}, {}, "rfc8760-needs-auth-invite"),
        ({"Auth_Support_RFC8760": "Yes", "Auth_INVITE_3_": "Yes"}, {}, None),
        ({"Auth_Support_RFC8760": "Yes"}, {"Auth_INVITE_1_": "Yes"}, None),
        ({"LDAP_StartTLS_Enable": "Yes", "LDAP_Server": "ldaps://ldap.example.com"}, {}, "starttls-needs-ldap-scheme"),
        ({"LDAP_StartTLS_Enable": "Yes"}, {}, "starttls-needs-ldap-scheme"),  # no server at all
        ({"LDAP_StartTLS_Enable": "Yes", "LDAP_Server": "ldap://ldap.example.com:389"}, {}, None),
        ({"LDAP_Server": "ldaps://ldap.example.com"}, {"LDAP_StartTLS_Enable": "Yes"}, "starttls-needs-ldap-scheme"),
    ],
)
def test_error_rules(values, current, broken) -> None:
    assert rule_ids(values, current=current) == ([broken] if broken else [])


def test_rule_error_names_the_setting_to_fix_and_the_seed() -> None:
    [error] = validate_values({"Proxy_Mode": "Manual", "Proxy_Port": "8080"})
    assert error.element == "Proxy_Host" and error.value == ""
    assert "Proxy Mode Manual needs Proxy Host and Proxy Port" in error.rule and "seed 000" in error.rule
    assert error.allowed == "Proxy_Host not empty"
    [error] = validate_values({"MediaSec_Over_TLS_Only_2_": "Yes"})
    assert error.element == "SIP_Transport_2_" and error.extension == 2 and error.value == "UDP"


def test_a_rule_only_fires_when_one_of_its_settings_is_being_set() -> None:
    # The phone's own inconsistency is not this change's fault.
    assert validate_values({"Firewall": "Enabled"}, current={"Proxy_Mode": "Manual"}) == []


@pytest.mark.parametrize(
    "values, current, warning",
    [
        ({"TLS_Name_Validate_1_": "No"}, {}, "tls-name-validate-only-with-sip-tls"),
        ({"Use_Auto_Discovery__WPAD_": "No"}, {}, "wpad-only-with-proxy-auto"),
        ({"Firewall_Config": "NO_ICMP_PING"}, {"Firewall": "Disabled"}, "firewall-options-need-firewall"),
        ({"Device.X_CISCO_SecuritySettings.FIPSMode": "Yes"}, {}, "fips-disables-tr069"),
        ({"Restricted_Access_Domains": "voice.example.com", "ACS_URL": "https://acs.example.net/"}, {},
         "restricted-domains-cover-acs"),
    ],
)
def test_warning_rules_are_reported_only_on_request(values, current, warning) -> None:
    assert rule_ids(values, current=current) == []
    problems = validate_values(values, current=current, include_warnings=True)
    assert [(p.rule_id, p.severity) for p in problems] == [(warning, "warning")]
    assert str(problems[0]).startswith("warning: ")


def test_warnings_stay_quiet_when_the_setting_is_meaningful() -> None:
    assert validate_values({"TLS_Name_Validate_1_": "No", "SIP_Transport_1_": "TLS"}, include_warnings=True) == []
    assert validate_values({"SIP_Transport_1_": "UDP"}, include_warnings=True) == []  # not triggered by transport
    domains = {"Restricted_Access_Domains": "example.net, voice.example.com", "ACS_URL": "https://acs.example.net/"}
    assert validate_values(domains, include_warnings=True) == []


def test_model_capabilities() -> None:
    [error] = validate_values({"VPN_Server": "vpn.example.com"}, model="CP-6821-3PCC")
    assert "CP-6821-3PCC has no vpn settings" in error.rule
    assert validate_values({"VPN_Server": "vpn.example.com"}, model="CP-8851-3PCC") == []
    [error] = validate_values({"SIP_Transport_2_": "TLS"}, model="CP-7811-3PCC")
    assert "extensions 1-1 only" in error.rule
    [error] = validate_values({"TLS_Min_Version": "TLS 1.2"}, model="CP-8841-3PCC", software_version="12.0(1)")
    assert "replaced it" in error.rule
    [error] = validate_values({"Auth_Support_RFC8760": "Yes", "Auth_INVITE_1_": "Yes"}, model="8841",
                              software_version="11.2(1)")
    assert "predates 11.3(7)" in error.rule
    with pytest.raises(UnknownModelError):
        validate_values({}, model="CP-1234")


def test_unknown_keys_templates_and_read_only_parameters() -> None:
    errors = validate_values({"Firewal": "Enabled", "SIP_Transport_n_": "TLS",
                              "Device.ManagementServer.ParameterKey": "k"})
    assert "did you mean 'Firewall'" in errors[0].rule and errors[0].value is None
    assert "name the extension, e.g. SIP_Transport_1_" in errors[1].rule
    assert "read-only" in errors[2].rule


def test_none_means_unchanged_and_is_skipped() -> None:
    assert validate_values({"Proxy_Mode": None, "Proxy_Port": None}) == []
