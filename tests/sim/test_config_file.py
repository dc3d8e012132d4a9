"""A simulated phone's cfg.xml: installed by its own rules, all or nothing, with a reboot
when a setting applies at boot; and its configuration written for an Upload."""

from __future__ import annotations

import shutil

from acs_security.mapping import load_catalogue, parse_cfgxml
from acs_security.mapping.paths import datamodel_dir
from acs_security.sim.config_file import install_config, phone_config, render_phone_config
from acs_security.sim.faults import FaultKind
from acs_security.sim.phone import Phone, PhoneEnvironment
from acs_security.sim.table import ModelTables
from tests.sim.helpers import FixedClock, make_phone

SEC = "Device.X_CISCO_SecuritySettings."


def test_a_file_is_installed_whole_and_unknown_elements_are_ignored():
    phone = make_phone("CP-6821-3PCC", "11.3(7)")
    body = (b"<flat-profile><Firewall>Enabled</Firewall><Firewall_Config>NO_ICMP_PING</Firewall_Config>"
            b"<VPN_Server>vpn.example.net</VPN_Server><SIP_Transport_5_>TLS</SIP_Transport_5_>"
            b"<Proxy_Host/><Not_A_Phone_Setting>x</Not_A_Phone_Setting></flat-profile>")
    assert install_config(phone, body) == (0, "", False)
    assert phone.params[SEC + "FirewallOptions"] == "NO_ICMP_PING"
    assert "Device.X_CISCO_VPNSettings.VPNServer" not in phone.params  # a 6821 has no VPN: ignored


def test_one_refused_value_changes_nothing():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    before = dict(phone.params)
    body = b"<flat-profile><Firewall>Disabled</Firewall><Proxy_Port>99999</Proxy_Port></flat-profile>"
    code, text, reboot = install_config(phone, body)
    assert (code, reboot) == (9018, False) and "1 invalid value" in text and "99999" not in text
    assert dict(phone.params) == before


def test_rules_see_the_phones_other_values():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    assert install_config(phone, b"<flat-profile><Proxy_Mode>Manual</Proxy_Mode></flat-profile>")[0] == 9018
    ok = (b"<flat-profile><Proxy_Host>p.example.net</Proxy_Host><Proxy_Port>3128</Proxy_Port>"
          b"</flat-profile>")
    assert install_config(phone, ok)[0] == 0
    # Host and port are on the phone now: Manual alone is fine.
    assert install_config(phone, b"<flat-profile><Proxy_Mode>Manual</Proxy_Mode></flat-profile>")[0] == 0


def test_a_boot_setting_reboots_and_a_refusing_firmware_refuses():
    phone = make_phone("CP-8851-3PCC", "12.0(1)")
    assert install_config(phone, b"<flat-profile><Connect_on_Bootup>Yes</Connect_on_Bootup></flat-profile>") \
        == (0, "", True)
    refusing = make_phone(faults=FaultKind.REFUSE_FILE)
    assert install_config(refusing, b"<flat-profile><Firewall>Enabled</Firewall></flat-profile>")[0] == 9018


def test_cfgxml_only_settings_live_in_the_file_only(tmp_path):
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides", "examples"))
    (target / "overrides").mkdir()
    (target / "overrides" / "x.toml").write_text('product_class = "CP-7841-3PCC"\ncfgxml_only = ["Firewall_Config"]\n')
    cat = load_catalogue(target)
    phone = Phone("SIM1", ModelTables(cat).get("CP-7841-3PCC", "11.3(7)"),
                  PhoneEnvironment(cat, FixedClock(), acs_url="http://acs/"))
    assert SEC + "FirewallOptions" not in phone.params
    assert phone.cfg_value("Firewall_Config") == ""
    body = b"<flat-profile><Firewall_Config>NO_ICMP_PING</Firewall_Config></flat-profile>"
    assert install_config(phone, body)[0] == 0
    assert phone.cfg_value("Firewall_Config") == "NO_ICMP_PING"
    assert parse_cfgxml(render_phone_config(phone)).settable()["Firewall_Config"] == "NO_ICMP_PING"


def test_the_uploaded_configuration_holds_every_setting_and_no_password():
    phone = make_phone("CP-7841-3PCC", "11.3(7)")
    assert install_config(phone, b"<flat-profile><Proxy_Password>pw-123</Proxy_Password>"
                                 b"<SIP_Transport_4_>TLS</SIP_Transport_4_></flat-profile>")[0] == 0
    data = render_phone_config(phone)
    cfg = parse_cfgxml(data, catalogue=load_catalogue())
    assert not cfg.unknown and b"pw-123" not in data
    assert cfg.values["Proxy_Password"].value is None  # <Proxy_Password/>: leave as is
    assert cfg.settable()["SIP_Transport_4_"] == "TLS"
    assert "SIP_Transport_5_" not in cfg.values  # a 7841 has 4 lines
    assert cfg.settable()["Periodic_Inform_Enable"] in ("Yes", "No")  # TR-181 booleans in cfg.xml form
    assert phone_config(phone, secrets=True)["Proxy_Password"] == "pw-123"
