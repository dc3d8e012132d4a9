"""One test loads every catalogue row and round-trips a valid value through cfg.xml and
TR-069 (DESIGN.md: "The data model is data")."""

from __future__ import annotations

import pytest

from acs_security.mapping import (
    Setting,
    ValidationError,
    cfgxml_to_tr069,
    load_catalogue,
    parse_cfgxml,
    render_cfgxml,
    tr069_to_cfgxml,
    validate_tr069,
    validate_value,
)
from acs_security.mapping.convert import from_tr069_text, to_tr069_text

# A valid value per format that differs from every default (values from the seeds).
SAMPLES = {
    "string": "Example <&> user",
    "fqdn_list": "voiceip.com, voiceip1.com",
    "dhcp_options": "66,160,159,150,60,43,125,1",
    "dhcpv6_options": "160,17",
    "cipher_list": "RSA:!aNULL:!eNULL",
    "firewall_options": "NO_ICMP_PING,TCP:12000,UDP:8000:8010",
    "ldap_url": "ldaps://10.45.76.79",
    "pac_url": "http://proxy.department.branch.example.com/pac",
    "http_url": "https://acs.example.net:7547/cwmp",
    "host": "proxy.example.com",
    "port": "8080",
    "unsigned_int": "3600",
    "ipv4": "192.0.2.10",
    "netmask": "255.255.255.0",
}
MODEL = "CP-8841-3PCC"
CONSISTENT_PHONE = {
    "Proxy_Host": "proxy.example.com",
    "Proxy_Port": "3128",
    "Proxy_Username": "user",
    "Proxy_Password": "secret",
    "PAC_URL": "http://proxy.example.com/proxy.pac",
    "SIP_Transport_2_": "TLS",
    "Auth_INVITE_2_": "Yes",
    "LDAP_Server": "ldap://ldap.example.com",
}


def sample(setting: Setting) -> str:
    if setting.values:
        return next(v for v in reversed(setting.values) if v != setting.default)
    value = SAMPLES[setting.format]
    return value[: setting.max_length] if setting.max_length else value


def test_every_row_round_trips_through_cfgxml_and_tr069() -> None:
    cat = load_catalogue()
    checked = 0
    for setting in cat.settings:
        value = sample(setting)
        validate_value(setting, value, catalogue=cat)
        validate_value(setting, setting.default, catalogue=cat)
        n = 2 if setting.per_extension else None
        tr069 = to_tr069_text(setting, value)
        assert from_tr069_text(setting, tr069, setting.tr069_type) == value
        if setting.element is None:
            # Web-only settings and status parameters: TR-069 only; cfg.xml has no tag for them.
            fault = validate_tr069(setting.path_for(n), tr069, setting.tr069_type, product_class=MODEL)
            assert fault is None if setting.writable else (fault is not None and fault.code == 9008)
            with pytest.raises(ValidationError, match="no cfg.xml element"):
                render_cfgxml({setting.concrete_key(n): value}, catalogue=cat)
            checked += 1
            continue
        element = setting.element_for(n)
        assert element is not None
        document = render_cfgxml({element: value}, catalogue=cat)
        parsed = parse_cfgxml(document, catalogue=cat)
        assert parsed.values[element].value == value
        assert parsed.values[element].ua == setting.ua
        assert parsed.warnings == ()
        # The phone's other values satisfy the cross-setting rules (e.g. Proxy Mode Manual
        # needs a host), so that this one value can be sent alone.
        params = cfgxml_to_tr069(parsed, model=MODEL, current=CONSISTENT_PHONE, catalogue=cat)
        assert [tuple(p) for p in params] == [(setting.path_for(n), tr069, setting.tr069_type)]
        assert validate_tr069(setting.path_for(n), tr069, "xsd:" + setting.tr069_type, product_class=MODEL) is None
        assert tr069_to_cfgxml(params, model=MODEL, catalogue=cat) == {element: value}
        checked += 1
    assert checked == len(cat.settings) >= 55

