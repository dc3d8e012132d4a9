"""The shared parameter tables: what each model and firmware has."""

from __future__ import annotations

import pytest

from acs_security.mapping import UnknownModelError
from acs_security.mapping.paths import parse_firmware
from acs_security.sim.table import DEFAULT_MODELS, software_version
from tests.sim.helpers import CATALOGUE, TABLES

SEC = "Device.X_CISCO_SecuritySettings."


@pytest.mark.parametrize("model", sorted(CATALOGUE.models))
@pytest.mark.parametrize("firmware", ["11.2(3)", "11.3(7)", "12.0(1)"])
def test_every_model_reports_a_software_version_the_catalogue_reads_back(model, firmware):
    info = CATALOGUE.model(model)
    text = software_version(model, info.family, firmware)
    assert parse_firmware(text) == parse_firmware(firmware)
    assert text.startswith("sip") and "MPP" in text


def test_extension_count_and_missing_features_follow_the_data_model():
    big = TABLES.get("CP-8851-3PCC", "12.0(1)")
    small = TABLES.get("CP-6821-3PCC", "12.0(1)")
    assert "Device.X_CISCO_Ext.10.SIPTransport" in big.params
    assert "Device.X_CISCO_Ext.11.SIPTransport" not in big.params
    assert "Device.X_CISCO_Ext.2.SIPTransport" in small.params
    assert "Device.X_CISCO_Ext.3.SIPTransport" not in small.params
    assert "Device.X_CISCO_VPNSettings.VPNServer" in big.params
    assert "Device.X_CISCO_VPNSettings.VPNServer" not in small.params  # seed 001: no VPN


def test_firmware_decides_which_tls_minimum_setting_exists():
    before = TABLES.get("CP-7841-3PCC", "11.3(7)")
    after = TABLES.get("CP-7841-3PCC", "12.0(1)")
    old = TABLES.get("CP-7841-3PCC", "11.2(3)")
    assert SEC + "TLSMinVersion" in before.params and SEC + "TLSClientMinVersion" not in before.params
    assert SEC + "TLSClientMinVersion" in after.params and SEC + "TLSMinVersion" not in after.params
    assert SEC + "FIPSMode" not in old.params and SEC + "TLSMinVersion" not in old.params


def test_tables_are_shared_and_hold_standard_parameters_and_objects():
    assert TABLES.get("CP-8851-3PCC", "12.0(1)") is TABLES.get("cp-8851", "12.0(1)")
    table = TABLES.get("CP-7832-3PCC", "12.0(1)")
    for path in ("Device.DeviceInfo.SerialNumber", "Device.DeviceInfo.SoftwareVersion",
                 "Device.ManagementServer.URL", "Device.ManagementServer.ParameterKey",
                 "Device.ManagementServer.CWMPRetryMinimumWaitInterval"):
        assert path in table.params
    assert table.params["Device.ManagementServer.ParameterKey"].writable is False
    assert table.params["Device.ManagementServer.Password"].secret is True
    assert "Device.ManagementServer." in table.objects["Device."]
    assert "Device.ManagementServer.URL" in table.objects["Device.ManagementServer."]
    assert set(table.parameters_under("Device.")) == set(table.params)
    assert table.params["Device.X_CISCO_SecuritySettings.FIPSMode"].reboot is True


def test_unknown_model_and_bad_firmware_are_refused():
    with pytest.raises(UnknownModelError):
        TABLES.get("CP-9999", "12.0(1)")
    with pytest.raises(ValueError, match="not a version"):
        TABLES.get("CP-8851-3PCC", "latest")


def test_default_models_are_known():
    for model in DEFAULT_MODELS:
        assert CATALOGUE.model(model).product_class == model
