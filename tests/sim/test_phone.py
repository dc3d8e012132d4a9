"""A phone's values, events and lifecycle, and the lockout predicates (pure)."""

from __future__ import annotations

import pytest

from acs_security.cwmp import messages as m
from acs_security.sim.lockout import AcsTlsFacts, covers_host, tls_lockout_reason
from acs_security.sim.phone import UnknownParameterError
from tests.sim.helpers import CATALOGUE, FixedClock, environment, make_phone

SEC = "Device.X_CISCO_SecuritySettings."
MS = "Device.ManagementServer."
RESTRICTED = "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains"


def test_values_come_from_identity_environment_and_catalogue_defaults():
    clock = FixedClock(1_000.0)
    phone = make_phone("CP-7841-3PCC", "11.3(7)", env=environment(clock))
    phone.boot_time = 900.0
    params = phone.params
    assert params["Device.DeviceInfo.SerialNumber"] == "SIM00000001"
    assert params["Device.DeviceInfo.ProductClass"] == "CP-7841-3PCC"
    assert params["Device.DeviceInfo.SoftwareVersion"] == "sip78xx.11-3-7MPP0001-276"
    assert params["Device.DeviceInfo.UpTime"] == "100"
    assert params[SEC + "TLSMinVersion"] == "TLS 1.1"  # factory default, seed 000
    assert params[MS + "EnableCWMP"] == "true"
    assert params[MS + "ConnectionRequestUsername"] == "cr-SIM00000001"
    assert len(params) == len(phone.table.params) and RESTRICTED in params
    with pytest.raises(UnknownParameterError):
        params["Device.Nope"]


def test_per_phone_credentials_are_deterministic_and_distinct_shared_mode_is_shared():
    env = environment()
    a, b = make_phone(serial="SIM00000001", env=env), make_phone(serial="SIM00000002", env=env)
    assert a.cr_credentials() == make_phone(serial="SIM00000001", env=environment()).cr_credentials()
    assert a.cr_credentials()[1] != b.cr_credentials()[1]
    shared = environment(cr_mode="shared", cr_username="acs", cr_password="pw")
    assert make_phone(env=shared).cr_credentials() == ("acs", "pw")
    assert make_phone(env=shared).params[MS + "UDPConnectionRequestAddress"] == ""
    with pytest.raises(ValueError, match="cr_mode"):
        environment(cr_mode="random")


def test_events_accumulate_without_repeats_and_failures_discard_connection_requests():
    phone = make_phone()
    for code in ("1 BOOT", "2 PERIODIC", "2 PERIODIC", "6 CONNECTION REQUEST"):
        phone.add_event(code)
    phone.add_event("M Reboot", "a")
    phone.add_event("M Reboot", "b")
    assert phone.events == [("1 BOOT", ""), ("2 PERIODIC", ""), ("6 CONNECTION REQUEST", ""),
                            ("M Reboot", "a"), ("M Reboot", "b")]
    phone.session_failed()
    assert ("6 CONNECTION REQUEST", "") not in phone.events and phone.retry_count == 1
    sent = phone.inform_events()
    phone.add_event("4 VALUE CHANGE")  # raised during the session: stays for the next one
    phone.inform_delivered(sent)
    assert phone.events == [("4 VALUE CHANGE", "")] and phone.retry_count == 0


def test_local_change_with_active_notification_raises_value_change_and_goes_in_the_inform():
    phone = make_phone()
    phone.set_attribute(SEC + "TLSCipherList", 2, None)
    phone.set_param(SEC + "TLSCipherList", "HIGH")
    assert phone.events == [("4 VALUE CHANGE", "")]
    names = [p.name for p in phone.inform_parameters()]
    assert SEC + "TLSCipherList" in names
    assert names[:6] == ["Device.RootDataModelVersion", "Device.DeviceInfo.HardwareVersion",
                         "Device.DeviceInfo.SoftwareVersion", "Device.DeviceInfo.ProvisioningCode",
                         MS + "ParameterKey", MS + "ConnectionRequestURL"]
    with pytest.raises(UnknownParameterError):
        phone.set_param("Device.Nope", "x")


def test_reboot_factory_reset_and_transfer_complete_events():
    phone = make_phone()
    phone.store({MS + "ParameterKey": "k9", SEC + "TLSCipherList": "HIGH"})
    phone.reboot(5.0, "cmd")
    assert phone.events == [("1 BOOT", ""), ("M Reboot", "cmd")] and phone.boot_time == 5.0
    phone.factory_reset(6.0)
    assert phone.events == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert phone.params[MS + "ParameterKey"] == "" and phone.params[SEC + "TLSCipherList"] == ""
    phone.transfer_done("dl", 9016, "404", m.UNKNOWN_TIME, m.UNKNOWN_TIME, rebooted=False)
    assert phone.transfers and phone.transfers[0].fault.code == 9016
    assert ("7 TRANSFER COMPLETE", "") in phone.events and ("M Download", "dl") in phone.events
    phone.transfer_delivered()
    assert phone.transfers is None


@pytest.mark.parametrize("domains, host, covered", [
    ("", "acs.example.net", True),
    ("acs.example.net,sip.example.net", "acs.example.net", True),
    ("example.net", "acs.example.net", True),
    ("ACS.Example.NET.", "acs.example.net", True),
    ("sip.example.net", "acs.example.net", False),
    ("xample.net", "acs.example.net", False),
    ("example.net", "", False),
])
def test_restricted_domains_cover_the_host(domains, host, covered):
    assert covers_host(domains, host) is covered


def test_policy_lockouts_fips_tr069_off_and_restricted_domains():
    phone = make_phone()
    assert phone.lockout_reason() is None
    phone.store({RESTRICTED: "sip.example.net"})
    assert "Restricted Access Domains" in (phone.lockout_reason() or "")
    phone.store({RESTRICTED: "acs.example.net,sip.example.net"})
    assert phone.lockout_reason() is None
    phone.store({MS + "EnableCWMP": "false"})
    assert phone.lockout_reason() == "Enable TR-069 = No"
    phone.store({SEC + "FIPSMode": "Yes"})
    assert (phone.lockout_reason() or "").startswith("FIPS Mode = Yes disables TR-069")


def test_tls_lockout_predicate_for_versions_and_ciphers():
    acs12 = AcsTlsFacts(max_version="TLS 1.2", suites=frozenset({"ECDHE-ECDSA-AES128-GCM-SHA256"}))
    acs13 = AcsTlsFacts(max_version="TLS 1.3", suites=acs12.suites)
    new = make_phone("CP-8851-3PCC", "12.0(1)")
    old = make_phone("CP-8851-3PCC", "11.3(7)")
    assert tls_lockout_reason(new.lookup, acs12, CATALOGUE) is None
    new.store({SEC + "TLSClientMinVersion": "TLS 1.3"})
    assert "above the ACS's highest version TLS 1.2" in (tls_lockout_reason(new.lookup, acs12, CATALOGUE) or "")
    assert tls_lockout_reason(new.lookup, acs13, CATALOGUE) is None
    old.store({SEC + "TLSCipherList": "aRSA"})  # RSA-only suites against an ECDSA ACS
    assert "shares no suite" in (tls_lockout_reason(old.lookup, acs13, CATALOGUE) or "")
    old.store({SEC + "TLSCipherList": "ECDHE+AESGCM"})
    assert tls_lockout_reason(old.lookup, acs13, CATALOGUE) is None
    with pytest.raises(ValueError):
        AcsTlsFacts(min_version="TLS 1.3", max_version="TLS 1.2")
