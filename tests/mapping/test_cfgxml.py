"""cfg.xml with every oddity: <Tag/> vs <Tag></Tag>, ua, repeats, unknown tags, per-extension
elements, the seeds' typos, malformed XML with line and column, refused constructs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.mapping import (
    CfgXmlError,
    InvalidValues,
    UnknownSettingError,
    ValidationError,
    parse_cfgxml,
    render_cfgxml,
)

SEED_PROFILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<flat-profile>
  <Restricted_Access_Domains ua="na">voiceip.com, voiceipl.com</Restricted_Access_Domains>
  <DHCP_Option_To_Use ua="na">66,160,159,150,60,43,125</DHCP_Option_To_Use>
  <TLS_Min_Version ua="na">TLS 1.1</TLS_Min_Version>
  <SIP_Transport_1_ ua="na">TLS</SIP_Transport_1_>
  <LDAP_Server ua="na">ldaps://10.45.76.79</LDAP_Server>
  <Firewall ua="na">Enabled</Firewall>
  <Firewall_Config ua="na">NO_ICMP_PING</Firewall_Config>
  <TLS_Cipher_List ua="na">RSA:!aNULL:!eNULL</TLS_Cipher_List>
  <TLS_Name_Validate_1_ ua="na">Yes</TLS_Name_Validate_1_>
  <MediaSec_Request_1_ ua="na">Yes</MediaSec_Request_1_>
  <Enable_802.1X_Authentication ua="rw">Yes</Enable_802.1X_Authentication>
  <Use_Auto_Discovery__WPAD_ ua="rw">Yes</Use_Auto_Discovery__WPAD_>
  <Proxy_Port ua="rw">3128</Proxy_Port>
  <Connect_on_Bootup ua="rw">No</Connect_on_Bootup>
</flat-profile>
"""


def test_seed_examples_parse_clean() -> None:
    cfg = parse_cfgxml(SEED_PROFILE)
    assert cfg.warnings == () and cfg.unknown == {}
    assert len(cfg.values) == 14
    assert cfg.values["TLS_Cipher_List"].value == "RSA:!aNULL:!eNULL"
    assert cfg.values["Proxy_Port"].ua == "rw" and cfg.values["Proxy_Port"].line == 15
    assert cfg.settable()["SIP_Transport_1_"] == "TLS"


def test_empty_element_leaves_unchanged_and_open_close_pair_sets_empty() -> None:
    cfg = parse_cfgxml(b'<flat-profile><Proxy_Host ua="rw"/><PAC_URL></PAC_URL>'
                       b'<Proxy_Username>\n</Proxy_Username></flat-profile>')
    assert cfg.values["Proxy_Host"].value is None and cfg.values["Proxy_Host"].ua == "rw"
    assert cfg.values["PAC_URL"].value == ""
    assert cfg.values["Proxy_Username"].value == "\n"
    assert cfg.settable() == {"PAC_URL": "", "Proxy_Username": "\n"}
    assert cfg.ua() == {"Proxy_Host": "rw"}


def test_self_closing_detection_ignores_slashes_in_attributes() -> None:
    cfg = parse_cfgxml(b'<flat-profile><PAC_URL x="a/>b"></PAC_URL><Proxy_Host x=\'/\' /></flat-profile>')
    assert cfg.values["PAC_URL"].value == "" and cfg.values["Proxy_Host"].value is None


def test_repeated_tag_last_wins_with_a_warning() -> None:
    cfg = parse_cfgxml(b"<flat-profile>\n<Firewall>Enabled</Firewall>\n<Firewall>Disabled</Firewall>\n</flat-profile>")
    assert cfg.values["Firewall"].value == "Disabled" and cfg.values["Firewall"].line == 3
    [warning] = cfg.warnings
    assert warning.line == 3 and "lines 2 and 3" in warning.message and "last one wins" in warning.message


def test_unknown_tags_are_kept_aside_with_a_warning() -> None:
    cfg = parse_cfgxml(b"<flat-profile>\n<Station_Name>lobby</Station_Name>\n"
                       b"<Tls_Cipher_List>HIGH</Tls_Cipher_List>\n</flat-profile>")
    assert cfg.values == {}
    assert cfg.unknown["Station_Name"].value == "lobby"
    assert [w.line for w in cfg.warnings] == [2, 3]
    assert "did you mean TLS_Cipher_List?" in cfg.warnings[1].message  # tags are case-sensitive


def test_per_extension_elements_and_literal_template() -> None:
    cfg = parse_cfgxml(b"<flat-profile><SIP_Transport_1_>TLS</SIP_Transport_1_>"
                       b"<SIP_Transport_10_>TCP</SIP_Transport_10_>"
                       b"<SIP_Transport_n_>UDP</SIP_Transport_n_></flat-profile>")
    assert cfg.settable() == {"SIP_Transport_1_": "TLS", "SIP_Transport_10_": "TCP"}
    assert "SIP_Transport_n_" in cfg.unknown


def test_seed_typo_auth_invite_gets_did_you_mean() -> None:
    data = b"<flat-profile>\n  <Auth_INVITE_1>Yes</Auth_INVITE_1_>\n</flat-profile>\n"  # seed 000
    with pytest.raises(CfgXmlError) as info:
        parse_cfgxml(data, source="phone.xml")
    error = info.value
    assert (error.line, error.column) == (2, 23)
    assert "mismatched tag" in error.message
    assert error.suggestion == "did you mean <Auth_INVITE_1_>Yes</Auth_INVITE_1_> ?"
    assert str(error).startswith("phone.xml:2:23: mismatched tag")


def test_seed_typo_rfc8760_closing_slash_gets_did_you_mean() -> None:
    data = b"<flat-profile>\n<Auth_Support_RFC8760>Yes</Auth_Support_RFC8760/>\n</flat-profile>"  # seed 000
    with pytest.raises(CfgXmlError) as info:
        parse_cfgxml(data)
    assert info.value.line == 2
    assert info.value.suggestion == "did you mean <Auth_Support_RFC8760>Yes</Auth_Support_RFC8760> ?"


@pytest.mark.parametrize(
    "data, line, column, message",
    [
        (b"<flat-profile>\n<Firewall>Enabled</Firewall>\n", 3, 1, "no element found"),
        (b"<flat-profile>\n<Firewall>Enabled & more</Firewall></flat-profile>", 2, 20, "not well-formed"),
        (b'<!DOCTYPE flat-profile [<!ENTITY x "y">]>\n<flat-profile/>', 1, 24, "DOCTYPE is not allowed"),
        (b"<flat_profile></flat_profile>", 1, 1, "needs <flat-profile>"),
        (b"<flat-profile>\n<Firewall><b>x</b></Firewall></flat-profile>", 2, 11, "no child elements"),
        (b'<flat-profile>\n  <Firewall ua="admin">Enabled</Firewall></flat-profile>', 2, 3, "na, ro, rw"),
        (b"\xff\xfe<\x00", 1, 1, "UTF-8"),
        (b"", 1, 1, "no element found"),
    ],
)
def test_refused_documents_say_where(data: bytes, line: int, column: int, message: str) -> None:
    with pytest.raises(CfgXmlError) as info:
        parse_cfgxml(data)
    assert (info.value.line, info.value.column) == (line, column)
    assert message in info.value.message


def test_billion_laughs_is_refused_before_expansion() -> None:
    data = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<flat-profile>&b;</flat-profile>')
    with pytest.raises(CfgXmlError, match="DOCTYPE"):
        parse_cfgxml(data)


def test_render_writes_ua_escapes_and_reads_back() -> None:
    values = {"Proxy_Username": "a<b>&c\r\n", "Proxy_Host": None, "PAC_URL": "", "SIP_Transport_2_": "TLS",
              "TLS_Cipher_List": "HIGH"}
    data = render_cfgxml(values, ua={"SIP_Transport_2_": "rw", "TLS_Cipher_List": None})
    text = data.decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<flat-profile>\n')
    assert '<Proxy_Host ua="rw"/>' in text and '<PAC_URL ua="rw"></PAC_URL>' in text
    assert "<TLS_Cipher_List>HIGH</TLS_Cipher_List>" in text  # ua None: no attribute
    assert '<SIP_Transport_2_ ua="rw">TLS</SIP_Transport_2_>' in text
    # catalogue order: Security Settings before HTTP proxy before Ext(n)
    assert text.index("TLS_Cipher_List") < text.index("PAC_URL") < text.index("SIP_Transport_2_")
    cfg = parse_cfgxml(data)
    assert {k: v.value for k, v in cfg.values.items()} == values


def test_render_refuses_what_the_phone_would_refuse() -> None:
    with pytest.raises(InvalidValues) as info:
        render_cfgxml({"Firewall": "On", "Proxy_Password": "x" * 300, "TLS_Cipher_List": "HIGH"},
                      ua={"TLS_Cipher_List": "all"})
    text = str(info.value)
    assert "Firewall" in text and "ua" in text and "x" * 300 not in text
    assert len(info.value.errors) == 2  # Proxy_Password has no length limit; TLS ua and Firewall value
    with pytest.raises(UnknownSettingError):
        render_cfgxml({"Bogus": "1"})
    with pytest.raises(ValidationError, match="no cfg.xml element"):
        render_cfgxml({"FIPS Mode": "Yes"})
    with pytest.raises(ValidationError, match="name the extension"):
        render_cfgxml({"SIP_Transport_n_": "TLS"})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200)
       | st.text(alphabet=st.sampled_from(list("<>/=\"' abflat-profileFirewall_?!&;\n")), max_size=120))
def test_any_bytes_are_a_document_or_a_cfgxml_error(data) -> None:
    try:
        cfg = parse_cfgxml(data)
    except CfgXmlError as exc:
        assert exc.line >= 1 and exc.column >= 1
    else:
        assert all(v.value is None or isinstance(v.value, str) for v in cfg.values.values())
