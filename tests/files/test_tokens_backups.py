"""Signed file URLs and uploaded configurations (pure parts)."""

from __future__ import annotations

import pytest

from acs_security.files.backups import diff_configs, read_config
from acs_security.files.tokens import FileSigner, parse_file_path
from acs_security.mapping import CfgXmlError, load_catalogue


def test_a_token_round_trips_and_any_change_breaks_it():
    signer = FileSigner(b"k" * 32)
    path = signer.path(42, 1_800_000_900)
    token = parse_file_path(path)
    assert token is not None and (token.file_id, token.expires) == (42, 1_800_000_900)
    assert signer.check(token)
    assert not FileSigner(b"j" * 32).check(token)  # another server's key
    for forged in (path.replace("/42.", "/43."), path.replace(".1800000900.", ".1800000901.")):
        assert not signer.check(parse_file_path(forged))
    assert parse_file_path(path.encode()) == token
    assert parse_file_path(b"/files/\xff") is None
    with pytest.raises(ValueError):
        FileSigner(b"short")
    with pytest.raises(ValueError):
        signer.path(0, 10)
    assert "k" * 8 not in repr(signer)


def test_an_uploaded_config_is_sorted_out_for_the_phone():
    cat = load_catalogue()
    data = (b"<flat-profile>\n<Firewall>Enabled</Firewall>\n<Proxy_Password>abc</Proxy_Password>\n"
            b"<SIP_Transport_3_>TLS</SIP_Transport_3_>\n<Proxy_Port>0</Proxy_Port>\n<Bogus>1</Bogus>\n"
            b"<Firewall>Disabled</Firewall>\n</flat-profile>")
    config = read_config(data, product_class="CP-6821-3PCC", software_version="sip68xx.12-0-1MPP0001-276",
                         catalogue=cat)
    assert dict(config.values) == {"Proxy_Password": "abc", "Firewall": "Disabled"}
    assert config.unknown == (("Bogus", 6),)
    assert config.absent == (("SIP_Transport_3_", "CP-6821-3PCC has 2 extension(s)"),)
    assert [e for e, _, _ in config.invalid] == ["Proxy_Port"]
    assert any("repeated" in w for w in config.warnings)
    report = config.report()
    assert "abc" not in str(report) and report["elements"] == 2
    assert "abc" not in repr(config)
    with pytest.raises(CfgXmlError):
        read_config(b"<flat-profile>", product_class="CP-6821-3PCC", software_version=None, catalogue=cat)


def test_a_diff_names_changes_in_catalogue_order_and_masks_secrets():
    cat = load_catalogue()
    old = {"Firewall": "Enabled", "Proxy_Password": "one", "SIP_Transport_1_": "UDP", "PAC_URL": "http://p/x.pac"}
    new = {"Firewall": "Enabled", "Proxy_Password": "two", "SIP_Transport_1_": "TLS", "TLS_Min_Version": "TLS 1.2"}
    changes = [c.to_json() for c in diff_configs(old, new, catalogue=cat)]
    assert changes == [
        {"element": "TLS_Min_Version", "change": "added", "old": None, "new": "TLS 1.2", "secret": False},
        {"element": "PAC_URL", "change": "removed", "old": "http://p/x.pac", "new": None, "secret": False},
        {"element": "Proxy_Password", "change": "changed", "old": "********", "new": "********", "secret": True},
        {"element": "SIP_Transport_1_", "change": "changed", "old": "UDP", "new": "TLS", "secret": False},
    ]
    assert diff_configs(old, old, catalogue=cat) == []
