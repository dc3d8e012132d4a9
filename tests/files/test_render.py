"""Per-phone cfg.xml: one golden file per model and firmware, each element spelled as the
seeds and the reference spell it; secrets only in the file served to the phone."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from acs_security.files.render import known_elements, render_device_file
from acs_security.mapping import load_catalogue, parse_cfgxml
from acs_security.policy.document import load_policy
from acs_security.policy.plan import plan_device
from acs_security.sim.table import software_version

HERE = Path(__file__).parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden"
SPELLINGS = HERE / "data" / "element_spellings.txt"
HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"
REMOTE = HERE / "data" / "remote.toml"
# ACS_UPDATE_GOLDEN=1 rewrites the golden files (review the diff before committing).
UPDATE = os.environ.get("ACS_UPDATE_GOLDEN") == "1"

# (golden name, policy, model, firmware, method)
CASES = [
    ("hardening-CP-8851-12.0.1", HARDENING, "CP-8851-3PCC", "12.0(1)"),
    ("hardening-CP-7841-11.3.7", HARDENING, "CP-7841-3PCC", "11.3(7)"),
    ("hardening-CP-6821-11.3.7", HARDENING, "CP-6821-3PCC", "11.3(7)"),
    ("hardening-CP-7832-11.2.3", HARDENING, "CP-7832-3PCC", "11.2(3)"),
    ("remote-CP-8861-12.0.1", REMOTE, "CP-8861-3PCC", "12.0(1)"),
    ("remote-CP-6821-12.0.1", REMOTE, "CP-6821-3PCC", "12.0(1)"),
]


def _version(model: str, firmware: str) -> str:
    cat = load_catalogue()
    return software_version(model, cat.model(model).family, firmware)


def _render(policy_path: Path, model: str, firmware: str, **kwargs):
    cat = load_catalogue()
    version = _version(model, firmware)
    plan = plan_device(load_policy(policy_path), product_class=model, software_version=version,
                       method="download", catalogue=cat)
    assert plan.error is None and not plan.params
    return plan, render_device_file(plan.download, product_class=model, software_version=version,
                                    catalogue=cat, **kwargs)


def _check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(data)
    assert path.exists(), f"no golden file {path}: run with ACS_UPDATE_GOLDEN=1 and review it"
    assert data == path.read_bytes(), f"{name} differs from its golden file"


def _spellings() -> set[str]:
    out = set()
    for line in SPELLINGS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.add(line.split()[0])
    return out


def _template(element: str) -> str:
    return re.sub(r"_[1-9][0-9]*_$", "_n_", element)


@pytest.mark.parametrize(("name", "policy", "model", "firmware"), CASES, ids=[c[0] for c in CASES])
def test_rendered_file_matches_its_golden_file(name, policy, model, firmware):
    plan, rendered = _render(policy, model, firmware)
    _check_golden(name + ".xml", rendered.content)
    _check_golden(name + ".preview.xml", rendered.preview())


@pytest.mark.parametrize(("name", "policy", "model", "firmware"), CASES, ids=[c[0] for c in CASES])
def test_golden_elements_are_spelled_as_the_seeds_spell_them(name, policy, model, firmware):
    known = _spellings()
    known_templates = {_template(e) for e in known}
    cfg = parse_cfgxml((GOLDEN / f"{name}.xml").read_bytes())
    assert cfg.values and not cfg.unknown and not cfg.warnings
    for element in cfg.values:
        assert element in known or _template(element) in known_templates, element


def test_per_extension_elements_follow_the_line_count_and_firmware():
    _, big = _render(HARDENING, "CP-8851-3PCC", "12.0(1)")
    _, small = _render(HARDENING, "CP-6821-3PCC", "11.3(7)")
    _, old = _render(HARDENING, "CP-7832-3PCC", "11.2(3)")
    assert [e for e in big.elements if e.startswith("SIP_Transport_")] == [f"SIP_Transport_{n}_" for n in range(1, 11)]
    assert [e for e in small.elements if e.startswith("SIP_Transport_")] == ["SIP_Transport_1_", "SIP_Transport_2_"]
    assert [e for e in old.elements if e.startswith("SIP_Transport_")] == ["SIP_Transport_1_"]
    # 12.0(1) replaced TLS_Min_Version by the client/server pair; 11.3(7) has the former;
    # 11.2(3) predates both.
    assert "TLS_Client_Min_Version" in big.elements and "TLS_Min_Version" not in big.elements
    assert "TLS_Min_Version" in small.elements and "TLS_Client_Min_Version" not in small.elements
    assert not {"TLS_Min_Version", "TLS_Client_Min_Version"} & set(old.elements)


def test_settings_a_model_lacks_are_left_out():
    plan, rendered = _render(REMOTE, "CP-6821-3PCC", "12.0(1)")
    assert not any(e.startswith("VPN_") for e in rendered.elements)
    assert {key for key, _ in plan.skipped} >= {"VPN_Server", "VPN_Password", "Connect_on_Bootup"}


def test_secrets_are_in_the_phone_file_only():
    _, rendered = _render(REMOTE, "CP-8861-3PCC", "12.0(1)")
    assert rendered.secret_elements == {"Proxy_Password", "VPN_Password"}
    cfg = parse_cfgxml(rendered.content)
    assert cfg.values["Proxy_Password"].value == "s3cret-Proxy!<&>"  # escaped, read back exactly
    assert b"vpn-Pass-42" in rendered.content
    preview = rendered.preview()
    assert b"s3cret" not in preview and b"vpn-Pass-42" not in preview and b"********" not in preview
    assert b"<!-- Proxy_Password: secret" in preview
    shown = parse_cfgxml(preview)
    assert "Proxy_Password" not in shown.values and shown.values["Proxy_Username"].value == "phoneproxy"
    assert "vpn-Pass-42" not in repr(rendered)


def test_full_file_holds_the_known_configuration_with_the_policy_on_top():
    cat = load_catalogue()
    model, version = "CP-7841-3PCC", _version("CP-7841-3PCC", "11.3(7)")
    view = cat.view(model, version)

    def path(element: str) -> str:
        setting, n = cat.resolve(element)
        return view.path_of(setting, n)

    known = {
        path("Firewall"): "Disabled",  # the policy changes it
        path("LDAP_Server"): "ldaps://ldap.example.net",
        path("SIP_Transport_3_"): "UDP",  # the policy changes it (apply_to all)
        path("Periodic_Inform_Interval"): "3600",  # xsd:unsignedInt, back to cfg.xml text
        path("Periodic_Inform_Enable"): "true",  # xsd:boolean -> Yes
        path("Proxy_Port"): "99999",  # a value the phone would refuse: left out, reported
        "Device.DeviceInfo.SoftwareVersion": version,  # not a setting
    }
    plan = plan_device(load_policy(HARDENING), product_class=model, software_version=version,
                       known=known, method="download", catalogue=cat)
    rendered = render_device_file(plan.download, product_class=model, software_version=version,
                                  known=known, full=True, catalogue=cat)
    _check_golden("full-CP-7841-11.3.7.xml", rendered.content)
    values = parse_cfgxml(rendered.content).settable()
    assert values["Firewall"] == "Enabled" and values["SIP_Transport_3_"] == "TLS"
    assert values["LDAP_Server"] == "ldaps://ldap.example.net"
    assert values["Periodic_Inform_Interval"] == "3600" and values["Periodic_Inform_Enable"] == "Yes"
    assert "Proxy_Port" not in values and [e for e, _ in rendered.skipped] == ["Proxy_Port"]
    only_policy = render_device_file(plan.download, product_class=model, software_version=version,
                                     known=known, catalogue=cat)
    assert "LDAP_Server" not in only_policy.values


def test_known_elements_skip_what_the_model_lacks():
    cat = load_catalogue()
    version = _version("CP-6821-3PCC", "11.3(7)")
    values, skipped = known_elements({"Device.X_CISCO_VPNSettings.VPNServer": "vpn.example.net",
                                      "Device.X_CISCO_Ext.7.SIPTransport": "TLS"},
                                     product_class="CP-6821-3PCC", software_version=version, catalogue=cat)
    assert values == {}
    assert [e for e, _ in skipped] == ["VPN_Server", "SIP_Transport_7_"]


def test_element_spellings_list_matches_the_seeds():
    seeds = Path(os.environ.get("ACS_SEEDS_DIR", REPO.parent / "shared" / "seeds"))
    reference = seeds.parent / "reference" / "cisco-mpp-security.md"
    if not seeds.is_dir() or not reference.exists():
        pytest.skip(f"the seed documents are not at {seeds} (set ACS_SEEDS_DIR)")
    found = set()
    for f in seeds.glob("*.txt"):
        found.update(re.findall(r"<([A-Z][A-Za-z0-9_.\-]*)(?=[ />])", f.read_text()))
    found.update(re.findall(r"`<?([A-Z][A-Za-z0-9_.\-]*)`", reference.read_text()))
    assert _spellings() <= found
