"""The catalogue: every setting of the reference, its path provenance, models, firmware."""

from __future__ import annotations

from pathlib import Path

import pytest

from acs_security.mapping import (
    CatalogueError,
    UnknownModelError,
    UnknownSettingError,
    ValidationError,
    conventional_path,
    load_catalogue,
)
from acs_security.mapping.paths import DATAMODEL_ENV, camel_name, datamodel_dir, parse_firmware

from .conftest import DATA

# Reference section 3 (cfg.xml elements) and section 2 (the phone's own TR-069 settings).
SECTION_3_ELEMENTS = [
    "Restricted_Access_Domains", "DHCP_Option_To_Use", "DHCPv6_Option_To_Use", "Auth_INVITE_n_",
    "Auth_Support_RFC8760", "TLS_Min_Version", "Webex_Metrics_Enable", "PRT_Upload_at_Crash",
    "SIP_Transport_n_", "LDAP_Server", "LDAP_StartTLS_Enable", "Firewall", "Firewall_Config",
    "TLS_Cipher_List", "TLS_Name_Validate_n_", "MediaSec_Request_n_", "MediaSec_Over_TLS_Only_n_",
    "Enable_802.1X_Authentication", "Proxy_Mode", "Use_Auto_Discovery__WPAD_", "PAC_URL", "Proxy_Host",
    "Proxy_Port", "Proxy_Server_Requires_Authentication", "Proxy_Username", "Proxy_Password",
    "VPN_Server", "VPN_User_Name", "VPN_Password", "VPN_Tunnel_Group", "Connect_on_Bootup",
]
SECTION_3_WEB_ONLY = [
    "Device.X_CISCO_SecuritySettings.FIPSMode", "Device.X_CISCO_IPv4Settings.ConnectionType",
    "Device.X_CISCO_IPv6Settings.ConnectionType", "Device.X_CISCO_StaticIPSettings.StaticIP",
    "Device.X_CISCO_StaticIPSettings.NetMask", "Device.X_CISCO_StaticIPSettings.Gateway",
]
SECTION_2 = {
    "Enable_TR-069": "Device.ManagementServer.EnableCWMP",
    "ACS_URL": "Device.ManagementServer.URL",
    "ACS_Username": "Device.ManagementServer.Username",
    "ACS_Password": "Device.ManagementServer.Password",
    "Connection_Request_Username": "Device.ManagementServer.ConnectionRequestUsername",
    "Connection_Request_Password": "Device.ManagementServer.ConnectionRequestPassword",
    "Periodic_Inform_Enable": "Device.ManagementServer.PeriodicInformEnable",
    "Periodic_Inform_Interval": "Device.ManagementServer.PeriodicInformInterval",
    "BACKUP_ACS_URL": "Device.X_CISCO_TR069.BACKUPACSURL",
    "BACKUP_ACS_User": "Device.X_CISCO_TR069.BACKUPACSUser",
    "BACKUP_ACS_Password": "Device.X_CISCO_TR069.BACKUPACSPassword",
    "CWMP_V1.2_Support": "Device.X_CISCO_TR069.CWMPV12Support",
    "TR-069_Traceability": "Device.X_CISCO_TR069.TR069Traceability",
}


def test_every_reference_setting_is_in_the_catalogue(catalogue) -> None:
    keys = {s.key for s in catalogue.settings}
    missing = [k for k in SECTION_3_ELEMENTS + SECTION_3_WEB_ONLY + list(SECTION_2) if k not in keys]
    assert missing == []
    for element, path in SECTION_2.items():
        assert catalogue.setting(element).path == path
    for key in SECTION_3_WEB_ONLY:
        assert catalogue.setting(key).element is None


def test_the_seed_published_path_is_the_only_seed_provenance(catalogue) -> None:
    seeded = [s for s in catalogue.settings if s.path_provenance == "seed"]
    assert [(s.element, s.path) for s in seeded] == [
        ("TLS_Cipher_List", "Device.X_CISCO_SecuritySettings.TLSCipherList")]


def test_convention_paths_follow_the_written_rule(catalogue) -> None:
    # docs/decisions/0002: the rule reproduces the seed-verified path, and every row that
    # claims "convention" is exactly what the rule derives.
    cipher = catalogue.setting("TLS_Cipher_List")
    assert conventional_path(cipher.name, cipher.location, False) == cipher.path
    for s in catalogue.settings:
        if s.path_provenance == "convention":
            assert conventional_path(s.name, s.location, s.per_extension) == s.path, s.key
            assert s.path.startswith("Device.X_CISCO_")


def test_standard_paths_exist_in_tr181_with_the_same_type_and_access(catalogue) -> None:
    tr181 = {}
    for line in (DATA / "tr181_managementserver.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, access, syntax = line.split()
            tr181[name] = (access, "string" if syntax == "dataType" else syntax)
    standard = [s for s in catalogue.settings if s.path_provenance == "standard"]
    assert len(standard) == 14  # 10 + the 4 STUN settings (issue 15)
    for s in standard:
        assert s.path.startswith("Device.ManagementServer.")
        access, syntax = tr181[s.path.rsplit(".", 1)[1]]
        assert syntax == s.tr069_type, s.key
        assert (access == "readWrite") == s.writable, s.key


def test_camel_name_examples() -> None:
    assert camel_name("Use Auto Discovery (WPAD)") == "UseAutoDiscoveryWPAD"
    assert camel_name("Enable 802.1X Authentication") == "Enable8021XAuthentication"
    assert camel_name("CWMP V1.2 Support") == "CWMPV12Support"


def test_lookup_by_element_concrete_element_path_and_name(catalogue) -> None:
    transport = catalogue.setting("SIP_Transport_n_")
    assert catalogue.resolve("SIP_Transport_1_") == (transport, 1)
    assert catalogue.resolve("SIP_Transport_12_") == (transport, 12)
    assert catalogue.resolve("Device.X_CISCO_Ext.3.SIPTransport") == (transport, 3)
    assert catalogue.resolve("Device.X_CISCO_Ext.{n}.SIPTransport") == (transport, None)
    assert catalogue.setting("FIPS Mode").path == "Device.X_CISCO_SecuritySettings.FIPSMode"
    assert transport.element_for(4) == "SIP_Transport_4_"
    assert transport.path_for(4) == "Device.X_CISCO_Ext.4.SIPTransport"
    assert catalogue.element_for("Device.X_CISCO_Ext.4.SIPTransport") == "SIP_Transport_4_"
    with pytest.raises(ValidationError, match="no cfg.xml element"):
        catalogue.element_for("Device.X_CISCO_SecuritySettings.FIPSMode")
    with pytest.raises(UnknownSettingError):
        catalogue.element_for("Device.X_CISCO_Nothing.Here")


def test_unknown_setting_suggests_the_right_key(catalogue) -> None:
    with pytest.raises(UnknownSettingError) as info:
        catalogue.setting("TLS_Cipher_Lst")
    assert info.value.suggestion == "TLS_Cipher_List"
    with pytest.raises(UnknownSettingError) as info:
        catalogue.setting("Connection Type")  # two settings share this web name
    assert "IPv4Settings" in str(info.value) and "IPv6Settings" in str(info.value)


def test_rules_are_attached_to_the_settings_they_name(catalogue) -> None:
    assert "proxy-manual-needs-host-port" in catalogue.setting("Proxy_Host").rules
    assert "rfc8760-needs-auth-invite" in catalogue.setting("Auth_INVITE_1_").rules
    assert catalogue.setting("Webex_Metrics_Enable").rules == ()


def test_models_extension_counts_and_lacking_settings(catalogue) -> None:
    assert catalogue.model("CP-7811-3PCC").extension_count == 1
    assert catalogue.model("cp-7851").extension_count == 16
    assert catalogue.model("8841").product_class == "CP-8841-3PCC"
    vpn = {s.key for s in catalogue.settings if s.feature == "vpn"}
    assert vpn == {"VPN_Server", "VPN_User_Name", "VPN_Password", "VPN_Tunnel_Group", "Connect_on_Bootup"}
    for pc in ("CP-6821-3PCC", "CP-7832-3PCC", "CP-8832-3PCC"):
        assert catalogue.model(pc).lacks == vpn
    assert catalogue.model("CP-8861-3PCC").lacks == frozenset()
    with pytest.raises(UnknownModelError, match="CP-9999"):
        catalogue.model("CP-9999")


def test_parameters_for_expands_extensions_and_drops_what_the_model_lacks(catalogue) -> None:
    per_ext = [s for s in catalogue.settings if s.per_extension]
    phone_wide = [s for s in catalogue.settings if not s.per_extension]
    params = catalogue.parameters_for("CP-8841-3PCC", None)
    assert len(params) == len(phone_wide) + 10 * len(per_ext)
    by_path = {p.path: p for p in params}
    assert by_path["Device.X_CISCO_Ext.10.SIPTransport"].element == "SIP_Transport_10_"
    assert "Device.X_CISCO_Ext.11.SIPTransport" not in by_path
    assert by_path["Device.ManagementServer.EnableCWMP"].default == "false"
    assert by_path["Device.ManagementServer.PeriodicInformInterval"].default == "20"
    assert by_path["Device.ManagementServer.Password"].secret
    assert not by_path["Device.ManagementServer.ParameterKey"].writable
    small = {p.path for p in catalogue.parameters_for("CP-6821-3PCC", None)}
    assert "Device.X_CISCO_VPNSettings.VPNServer" not in small
    assert "Device.X_CISCO_Ext.2.SIPTransport" in small and "Device.X_CISCO_Ext.3.SIPTransport" not in small


def test_firmware_bounds(catalogue) -> None:
    def paths(version):
        return {p.path for p in catalogue.parameters_for("CP-8851-3PCC", version)}

    old, seed000, split, unknown = paths("sip88xx.11-2-1MPP-100"), paths("11.3(7)"), paths("12.0(1)"), paths(None)
    rfc8760 = "Device.X_CISCO_SIPSettings.AuthSupportRFC8760"
    tls_min = "Device.X_CISCO_SecuritySettings.TLSMinVersion"
    tls_client = "Device.X_CISCO_SecuritySettings.TLSClientMinVersion"
    assert rfc8760 not in old and rfc8760 in seed000 and rfc8760 in split
    assert tls_min in seed000 and tls_min not in split
    assert tls_client not in seed000 and tls_client in split
    assert {rfc8760, tls_min, tls_client} <= unknown  # unknown firmware: every setting
    assert paths("not a version") == unknown


def test_parse_firmware() -> None:
    assert parse_firmware("12.0(1)") == (12, 0, 1)
    assert parse_firmware("sip78xx.11-3-7MPP0001-272") == (11, 3, 7)
    assert parse_firmware("11.3.2") == (11, 3, 2)
    assert parse_firmware("beta") is None


def test_override_file_changes_paths_for_matching_phones_only(datamodel_copy: Path) -> None:
    (datamodel_copy / "overrides" / "50-cp88.toml").write_text(
        'product_class = "CP-88??-3PCC"\n'
        'software_version = "12.*"\n'
        'absent = ["Device.X_CISCO_SecuritySettings.FIPSMode"]\n'
        'read_only = ["Firewall"]\n'
        "[paths]\n"
        'SIP_Transport_n_ = "Device.X_CISCO_Line.{n}.Transport"\n'
        'Proxy_Mode = "Device.X_CISCO_Proxy.Mode"\n'
        "[types]\n"
        'Proxy_Port = "string"\n'
    )
    cat = load_catalogue(datamodel_copy)
    assert cat.path_for("SIP_Transport_2_", "CP-8841-3PCC", "12.0.3") == "Device.X_CISCO_Line.2.Transport"
    assert cat.path_for("SIP_Transport_2_", "CP-8841-3PCC", "11.3.7") == "Device.X_CISCO_Ext.2.SIPTransport"
    assert cat.path_for("SIP_Transport_2_", "CP-7841-3PCC", "12.0.3") == "Device.X_CISCO_Ext.2.SIPTransport"
    assert cat.element_for("Device.X_CISCO_Line.7.Transport", "CP-8841-3PCC", "12.0.3") == "SIP_Transport_7_"
    params = {p.path: p for p in cat.parameters_for("CP-8841-3PCC", "12.0.3")}
    assert "Device.X_CISCO_Proxy.Mode" in params and "Device.X_CISCO_HTTPProxySettings.ProxyMode" not in params
    assert "Device.X_CISCO_SecuritySettings.FIPSMode" not in params
    assert not params["Device.X_CISCO_SecuritySettings.Firewall"].writable
    assert params["Device.X_CISCO_HTTPProxySettings.ProxyPort"].xsi_type == "string"


@pytest.mark.parametrize(
    "text, message",
    [
        ('product_class = "X"\nbogus = 1\n', "unknown keys"),
        ('software_version = "*"\n', "product_class"),
        ('product_class = "X"\n[paths]\nSIP_Transport_n_ = "Device.X.Transport"\n', "needs {n}"),
        ('product_class = "X"\n[types]\nFirewall = "float"\n', "float"),
        ('product_class = "X"\n[paths]\nNo_Such = "Device.X.Y"\n', "unknown setting key"),
        ('product_class = \n', "overrides"),
    ],
)
def test_bad_override_files_are_refused(datamodel_copy: Path, text: str, message: str) -> None:
    (datamodel_copy / "overrides" / "bad.toml").write_text(text)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(datamodel_copy)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('path_provenance = "seed"', 'path_provenance = "guess"', "path_provenance"),
        ('format = "cipher_list"', 'format = "magic"', "format"),
        ('tr069_type = "boolean"', 'tr069_type = "bool"', "tr069_type"),
        ('name = "TLS Cipher List"', 'name = "TLS Cipher List"\ncolour = "red"', "unknown fields"),
        ('path = "Device.X_CISCO_Ext.{n}.SIPTransport"', 'path = "Device.X_CISCO_Ext.SIPTransport"', "_n_"),
        ('min_firmware = "tls-split"', 'min_firmware = "someday"', "firmware"),
    ],
)
def test_inconsistent_settings_rows_are_refused(datamodel_copy: Path, old: str, new: str, message: str) -> None:
    file = datamodel_copy / "settings.toml"
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(datamodel_copy)


def test_rule_naming_an_unknown_setting_is_refused(datamodel_copy: Path) -> None:
    file = datamodel_copy / "rules.toml"
    file.write_text(file.read_text().replace('setting = "PAC_URL"', 'setting = "PAC_URI"'))
    with pytest.raises(CatalogueError, match="PAC_URI"):
        load_catalogue(datamodel_copy)


def test_missing_directory_names_the_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=DATAMODEL_ENV):
        load_catalogue(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogueError, match=DATAMODEL_ENV):
        load_catalogue(tmp_path / "empty")


def test_datamodel_dir_honours_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATAMODEL_ENV, str(tmp_path))
    assert datamodel_dir() == tmp_path
    monkeypatch.delenv(DATAMODEL_ENV)
    assert (datamodel_dir() / "settings.toml").is_file()


def test_cfgxml_only_settings_have_no_tr069_parameter(datamodel_copy: Path) -> None:
    from acs_security.mapping import validate_tr069
    from acs_security.mapping.overrides import parse_override, render_override

    text = ('product_class = "CP-78??-3PCC"\n'
            'cfgxml_only = ["Firewall_Config", "SIP_Transport_n_"]\n')
    (datamodel_copy / "overrides" / "60-cfg.toml").write_text(text)
    cat = load_catalogue(datamodel_copy)
    view = cat.view("CP-7841-3PCC", "11.3.7")
    assert not view.exposes(cat.setting("Firewall_Config")) and view.exposes(cat.setting("Firewall"))
    paths = {p.path for p in cat.parameters_for("CP-7841-3PCC", "11.3.7")}
    assert "Device.X_CISCO_SecuritySettings.FirewallOptions" not in paths
    assert not any(p.endswith(".SIPTransport") for p in paths)
    assert "Device.X_CISCO_SecuritySettings.FirewallOptions" in {
        p.path for p in cat.parameters_for("CP-8841-3PCC", "11.3.7")}
    fault = validate_tr069("Device.X_CISCO_SecuritySettings.FirewallOptions", "NO_ICMP_PING", "string",
                           product_class="CP-7841-3PCC", software_version="11.3.7", catalogue=cat)
    assert fault is not None and fault.code == 9005
    # The key survives a render/parse round trip (datamodel learn writes these files).
    again = parse_override(__import__("tomllib").loads(render_override(cat.overrides[0])), "x")
    assert again.cfgxml_only == {"Firewall_Config", "SIP_Transport_n_"}


def test_cfgxml_only_needs_a_cfgxml_element(datamodel_copy: Path) -> None:
    (datamodel_copy / "overrides" / "bad.toml").write_text(
        'product_class = "*"\ncfgxml_only = ["Device.X_CISCO_SecuritySettings.FIPSMode"]\n')
    with pytest.raises(CatalogueError, match="no cfg.xml element"):
        load_catalogue(datamodel_copy)
