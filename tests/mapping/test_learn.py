"""Override files learned from a phone's GetParameterNames result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acs_security.mapping import load_catalogue
from acs_security.mapping.learn import GpnParseError, ReportedName, learn_override, parse_gpn_result
from acs_security.mapping.overrides import render_override

SOAP = b"""<?xml version="1.0"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
 <soap-env:Body><cwmp:GetParameterNamesResponse><ParameterList>
  <ParameterInfoStruct><Name>Device.X_CISCO_SecuritySettings.</Name><Writable>0</Writable></ParameterInfoStruct>
  <ParameterInfoStruct><Name>Device.X_CISCO_SecuritySettings.TLSCipherList</Name><Writable>1</Writable></ParameterInfoStruct>
  <ParameterInfoStruct><Name>Device.ManagementServer.URL</Name><Writable>true</Writable></ParameterInfoStruct>
 </ParameterList></cwmp:GetParameterNamesResponse></soap-env:Body></soap-env:Envelope>"""


def test_parse_the_three_input_forms() -> None:
    assert parse_gpn_result(SOAP)[1] == ReportedName("Device.X_CISCO_SecuritySettings.TLSCipherList", True)
    as_json = json.dumps([{"Name": "Device.A.B", "Writable": False}, ["Device.C", 1], "Device.D"]).encode()
    assert parse_gpn_result(as_json) == [
        ReportedName("Device.A.B", False), ReportedName("Device.C", True), ReportedName("Device.D", None)]
    assert parse_gpn_result(b"# from a phone\nDevice.A.B 0\n\nDevice.C\n") == [
        ReportedName("Device.A.B", False), ReportedName("Device.C")]


@pytest.mark.parametrize("data", [b"", b"<a><b/></a>", b"<a", b"{\"x\": 1}", b"[{\"Writable\": 1}]", b"Device.A maybe",
                                  b"hello"])
def test_unreadable_inputs(data: bytes) -> None:
    with pytest.raises(GpnParseError):
        parse_gpn_result(data)


def phone_names() -> list[ReportedName]:
    """A CP-7841 that names its lines and proxy differently and has no FIPS setting."""
    cat = load_catalogue()
    result = []
    for p in cat.parameters_for("CP-7841-3PCC", None):
        if "FIPSMode" in p.path:
            continue
        name = p.path.replace("Device.X_CISCO_Ext.", "Device.Services.VoiceService.1.X_CISCO_Line.")
        name = name.replace("X_CISCO_HTTPProxySettings.ProxyHost", "X_CISCO_HTTPProxySettings.Host")
        result.append(ReportedName(name, not name.endswith("TLSCipherList") and p.writable))
    return result


def test_learn_finds_moved_absent_and_read_only_settings(datamodel_copy: Path) -> None:
    cat = load_catalogue()
    result = learn_override(phone_names(), cat, product_class="CP-7841-3PCC", source="lab phone")
    paths = dict(result.moved)
    assert paths["SIP_Transport_n_"] == "Device.Services.VoiceService.1.X_CISCO_Line.{n}.SIPTransport"
    # "Host" is too far from "Proxy Host" to guess: absent, and listed for a hand mapping.
    assert set(result.absent) == {"Device.X_CISCO_SecuritySettings.FIPSMode", "Proxy_Host"}
    assert result.unmatched == ("Device.X_CISCO_HTTPProxySettings.Host",)
    assert result.override.read_only == {"TLS_Cipher_List"}
    assert "TLS_Cipher_List" in result.found_at_catalogue_path
    # The written file loads and makes the catalogue speak the phone's names.
    (datamodel_copy / "overrides" / "lab.toml").write_text(render_override(result.override, ["learned in a test"]))
    copy = load_catalogue(datamodel_copy)
    assert (copy.path_for("SIP_Transport_4_", "CP-7841-3PCC")
            == "Device.Services.VoiceService.1.X_CISCO_Line.4.SIPTransport")
    assert copy.path_for("SIP_Transport_4_", "CP-8841-3PCC") == "Device.X_CISCO_Ext.4.SIPTransport"
    names = {p.path for p in copy.parameters_for("CP-7841-3PCC", None)}
    assert names == {r.name for r in phone_names()} - {"Device.X_CISCO_HTTPProxySettings.Host"}


def test_ambiguous_and_uncovered_settings_are_reported() -> None:
    cat = load_catalogue()
    names = [ReportedName("Device.X_CISCO_A.Firewall"), ReportedName("Device.X_CISCO_B.Firewall")]
    result = learn_override(names, cat)
    assert ("Firewall", ("Device.X_CISCO_A.Firewall", "Device.X_CISCO_B.Firewall")) in result.ambiguous
    assert "ACS_URL" in result.not_checked  # no Device.ManagementServer. name in the input
    assert "Firewall" not in result.override.paths
