from pathlib import Path

import pytest

from acs_security.policy.document import Policy, PolicyError, load_policy, parse_policy
from acs_security.policy.plan import plan_device

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datamodel" / "examples" / "hardening.toml"


def test_example_policy_loads_with_per_extension_settings():
    p = load_policy(EXAMPLE)
    assert p.name == "hardening"
    assert p.settings["TLS_Min_Version"] == "TLS 1.2"
    assert p.extension_settings == {"SIP_Transport_n_": "TLS", "TLS_Name_Validate_n_": "Yes"}
    assert Policy.from_json(p.to_json()) == p


def test_keys_by_tr069_path_and_cfgxml_values():
    p = parse_policy(b'[settings]\n"Device.X_CISCO_SecuritySettings.TLSCipherList" = "RSA:!aNULL:!eNULL"\n'
                     b'[extensions]\napply_to = [1]\nMediaSec_Request = "Yes"\n')
    assert p.settings == {"TLS_Cipher_List": "RSA:!aNULL:!eNULL"}
    assert p.extension_settings == {"MediaSec_Request_n_": "Yes"}
    assert p.extensions == (1,)


@pytest.mark.parametrize("doc, message", [
    (b'[settings]\nTLS_Min_Version = "TLS 1.5"\n', "allowed: TLS 1.0, TLS 1.1, TLS 1.2"),
    (b'[settings]\nTLS_Min_Versio = "TLS 1.2"\n', "did you mean 'TLS_Min_Version'"),
    (b'[settings]\nProxy_Mode = "Manual"\n', "Proxy Mode Manual needs Proxy Host"),
    (b'[settings]\nSIP_Transport_n_ = "TLS"\n', "per-extension setting"),
    (b'[extensions]\nTLS_Min_Version = "TLS 1.2"\n', "not a per-extension setting"),
    (b'[extensions]\napply_to = "some"\nSIP_Transport = "TLS"\n', "apply_to"),
    (b'[settings]\n', "sets nothing"),
    (b'[setings]\nFirewall = "Enabled"\n', "unknown table"),
    (b'[settings\n', "TOML syntax"),
    (b'\xff\xfe', "not UTF-8"),
    (b'<flat-profile><TLS_Min_Version>TLS 1.2</TLS_Min_Versio></flat-profile>', ":1:41: mismatched tag"),
    (b'[settings]\nFirewall_Config = "UDP:9000:8000"\n', "Firewall_Config"),
])
def test_invalid_policies_are_refused_with_the_setting_and_reason(doc, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc)


def test_cfgxml_policy():
    p = parse_policy(b"<flat-profile><TLS_Min_Version ua=\"na\">TLS 1.2</TLS_Min_Version>"
                     b"<Firewall/></flat-profile>", source="hardening.xml")
    assert p.settings == {"TLS_Min_Version": "TLS 1.2"}  # <Firewall/> leaves it unchanged
    assert p.name == "hardening"


def test_unreadable_file(tmp_path):
    with pytest.raises(PolicyError, match="No such file"):
        load_policy(tmp_path / "missing.toml")


def test_plan_expands_extensions_per_model_and_skips_what_the_model_lacks():
    p = parse_policy(b'[settings]\nVPN_Server = "vpn.example.net"\nFirewall = "Enabled"\n'
                     b'[extensions]\nSIP_Transport = "TLS"\n')
    plan_6821 = plan_device(p, product_class="CP-6821-3PCC", software_version=None)
    paths = [x.path for x in plan_6821.params]
    assert "Device.X_CISCO_SecuritySettings.Firewall" in paths
    assert sum(".SIPTransport" in x for x in paths) == 2  # two extensions on a 6821
    assert [k for k, _ in plan_6821.skipped] == ["VPN_Server"]
    plan_8851 = plan_device(p, product_class="CP-8851-3PCC", software_version=None)
    assert any("VPN" in x.path for x in plan_8851.params)


def test_plan_sends_only_what_differs_unless_forced():
    p = parse_policy(b'[settings]\nFirewall = "Enabled"\nTLS_Cipher_List = "HIGH"\n')
    first = plan_device(p, product_class="CP-8851-3PCC", software_version=None)
    known = {x.path: x.value for x in first.params[:1]}
    second = plan_device(p, product_class="CP-8851-3PCC", software_version=None, known=known)
    assert len(second.params) == len(first.params) - 1
    assert second.unchanged == (first.params[0].path,)
    forced = plan_device(p, product_class="CP-8851-3PCC", software_version=None, known=known, force_all=True)
    assert len(forced.params) == len(first.params)


def test_plan_unknown_model_is_an_error_not_an_exception():
    p = parse_policy(b'[settings]\nFirewall = "Enabled"\n')
    plan = plan_device(p, product_class="SPA-112", software_version=None)
    assert plan.error and "SPA-112" in plan.error and not plan.params
