"""The cfgxml and datamodel commands, through the real ``acs-security`` entry point."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from acs_security.cli import main

PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<flat-profile>
  <TLS_Cipher_List ua="na">RSA:!aNULL:!eNULL</TLS_Cipher_List>
  <Firewall_Config ua="na">NO_ICMP_PING,TCP:12000,UDP:8000:8010</Firewall_Config>
  <Enable_TR-069 ua="na">Yes</Enable_TR-069>
  <ACS_Password ua="na">Sup3rSecret</ACS_Password>
  <Proxy_Host ua="rw"/>
  <SIP_Transport_2_ ua="rw">TLS</SIP_Transport_2_>
  <Station_Name>lobby</Station_Name>
</flat-profile>
"""


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "phone.xml"
    path.write_text(PROFILE)
    return path


def test_to_tr069_table_masks_secrets_and_warns_on_stderr(profile: Path, capsys) -> None:
    assert main(["cfgxml", "to-tr069", str(profile), "--model", "CP-8841-3PCC"]) == 0
    out, err = capsys.readouterr()
    assert "Device.X_CISCO_SecuritySettings.TLSCipherList\txsd:string\tRSA:!aNULL:!eNULL" in out
    assert "Device.ManagementServer.EnableCWMP\txsd:boolean\ttrue" in out
    assert "Device.ManagementServer.Password\txsd:string\t********" in out and "Sup3rSecret" not in out + err
    assert "unknown element <Station_Name>" in err


def test_round_trip_through_json(profile: Path, tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.json"
    assert main(["cfgxml", "to-tr069", str(profile), "--model", "7821", "--json", "-o", str(params)]) == 0
    doc = json.loads(params.read_text())
    assert doc["model"] == "CP-7821-3PCC" and doc["unchanged"] == ["Proxy_Host"]
    assert {"path": "Device.X_CISCO_Ext.2.SIPTransport", "value": "TLS", "type": "string"} in doc["parameters"]
    capsys.readouterr()
    back = tmp_path / "back.xml"
    assert main(["cfgxml", "from-tr069", str(params), "-o", str(back)]) == 0
    text = back.read_text()
    assert '<SIP_Transport_2_ ua="rw">TLS</SIP_Transport_2_>' in text
    assert '<Proxy_Host ua="rw"/>' in text
    assert '<ACS_Password ua="na">Sup3rSecret</ACS_Password>' in text
    assert "Station_Name" not in text


def test_refused_profile_exits_non_zero_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<flat-profile>\n<Proxy_Mode>Manual</Proxy_Mode>\n<VPN_Server>vpn.example.com</VPN_Server>\n</flat-profile>\n")
    out_file = tmp_path / "out.json"
    assert main(["cfgxml", "to-tr069", str(bad), "--model", "CP-6821-3PCC", "--json", "-o", str(out_file)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and not out_file.exists()
    assert "Proxy_Host" in err and "has no vpn settings" in err
    assert list(tmp_path.iterdir()) == [bad]


def test_malformed_profile_points_at_the_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "typo.xml"
    bad.write_text("<flat-profile>\n<Auth_INVITE_1>Yes</Auth_INVITE_1_>\n</flat-profile>\n")
    assert main(["cfgxml", "to-tr069", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "did you mean <Auth_INVITE_1_>Yes</Auth_INVITE_1_> ?" in err


def test_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["cfgxml", "to-tr069", str(tmp_path / "missing.xml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    not_json = tmp_path / "x.json"
    not_json.write_text("<flat-profile/>")
    assert main(["cfgxml", "from-tr069", str(not_json)]) == 1
    assert "to-tr069 --json" in capsys.readouterr().err
    assert main(["cfgxml", "to-tr069", str(not_json), "--model", "CP-1"]) == 1
    assert "unknown phone model 'CP-1'" in capsys.readouterr().err
    assert main(["datamodel", "export"]) == 2
    assert "--bbf" in capsys.readouterr().err


def test_check_reports_warnings_and_errors(profile: Path, tmp_path: Path, capsys) -> None:
    assert main(["cfgxml", "check", str(profile), "--model", "CP-8841-3PCC"]) == 0
    out, err = capsys.readouterr()
    assert "6 setting(s) OK, 1 unknown element(s) ignored" in out
    assert main(["datamodel", "check", "TLS_Cipher_List", "RSA:!aNULL:!eNULL"]) == 0
    out = capsys.readouterr().out
    assert "AES128-GCM-SHA256" in out and "TLS 1.3 suites" in out
    assert main(["datamodel", "check", "Firewall_Config", "UDP:0"]) == 1
    assert "outside 1-65535" in capsys.readouterr().err
    assert main(["datamodel", "check", "TLS_Name_Validate_1_", "No"]) == 0
    assert "warning: " in capsys.readouterr().err


def test_show(capsys) -> None:
    assert main(["datamodel", "show"]) == 0
    out = capsys.readouterr().out
    assert "TLS_Cipher_List" in out and "(web only)" in out
    assert main(["datamodel", "show", "SIP_Transport_2_", "--model", "7841"]) == 0
    out = capsys.readouterr().out
    assert "Device.X_CISCO_Ext.2.SIPTransport" in out and "mediasec-over-tls-only-needs-sip-tls" in out
    assert main(["datamodel", "show", "TLS_Cipher_List", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path_provenance"] == "seed" and "SUITEB192" in info["cipher_keywords"]
    assert main(["datamodel", "show", "--model", "CP-6821-3PCC"]) == 0
    out = capsys.readouterr().out
    assert "VPNServer" not in out and "Device.X_CISCO_Ext.2.AuthINVITE" in out
    assert main(["datamodel", "show", "No_Such"]) == 1


def test_export_and_learn_write_files(tmp_path: Path, capsys) -> None:
    exported = tmp_path / "x-cisco.xml"
    assert main(["datamodel", "export", "--bbf", "-o", str(exported)]) == 0
    assert exported.read_bytes().startswith(b"<?xml")
    gpn = tmp_path / "gpn.txt"
    gpn.write_text("Device.ManagementServer.URL 1\nDevice.X_CISCO_SecuritySettings.TLSCipherList 0\n"
                   "Device.X_CISCO_Line.1.SIPTransport 1\n")
    override = tmp_path / "lab.toml"
    assert main(["datamodel", "learn", str(gpn), "--product-class", "CP-78*", "-o", str(override)]) == 0
    text = override.read_text()
    assert 'product_class = "CP-78*"' in text
    assert '"SIP_Transport_n_" = "Device.X_CISCO_Line.{n}.SIPTransport"' in text
    assert 'read_only = ["TLS_Cipher_List"]' in text
    # --cfgxml-only: what the phone does not report goes by cfg.xml Download, not skipped.
    cfg_only = tmp_path / "cfg.toml"
    assert main(["datamodel", "learn", str(gpn), "--cfgxml-only", "-o", str(cfg_only)]) == 0
    data = tomllib.loads(cfg_only.read_text())
    assert "Firewall_Config" in data["cfgxml_only"] and "Firewall_Config" not in data["absent"]
    assert "Device.X_CISCO_SecuritySettings.FIPSMode" in data["absent"]  # no element: stays absent
    assert "cfgxml_only" not in tomllib.loads(text)
    bad = tmp_path / "bad.txt"
    bad.write_text("hello")
    assert main(["datamodel", "learn", str(bad), "-o", str(tmp_path / "never.toml")]) == 1
    assert not (tmp_path / "never.toml").exists()
