"""How a push sends each setting: SetParameterValues where the phone has the parameter, a
cfg.xml Download for the settings its model and firmware take only from cfg.xml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acs_security.fleet.plancache import PlanCache
from acs_security.mapping import load_catalogue
from acs_security.mapping.paths import datamodel_dir
from acs_security.policy.document import load_policy
from acs_security.policy.plan import plan_device

HARDENING = Path(datamodel_dir()) / "examples" / "hardening.toml"
VERSION = "sip78xx.11-3-7MPP0001-276"


@pytest.fixture()
def cat(tmp_path):
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides", "examples"))
    (target / "overrides").mkdir()
    (target / "overrides" / "10-78xx.toml").write_text(
        'product_class = "CP-78??-3PCC"\nsource = "test"\n'
        'cfgxml_only = ["Firewall_Config", "TLS_Name_Validate_n_"]\n')
    return load_catalogue(target)


def test_auto_sends_cfgxml_only_settings_in_the_file(cat):
    plan = plan_device(load_policy(HARDENING, catalogue=cat), product_class="CP-7841-3PCC",
                       software_version=VERSION, catalogue=cat)
    assert [f.element for f in plan.download] == ["Firewall_Config"] + [f"TLS_Name_Validate_{n}_" for n in range(1, 5)]
    sent = {p.path for p in plan.params}
    assert "Device.X_CISCO_SecuritySettings.Firewall" in sent
    assert not sent & plan.download_paths
    assert len(plan.changes) == len(plan.params) + len(plan.download)
    assert plan.download[0].param.path == "Device.X_CISCO_SecuritySettings.FirewallOptions"
    # A model the override does not name: everything by SetParameterValues.
    other = plan_device(load_policy(HARDENING, catalogue=cat), product_class="CP-8851-3PCC",
                        software_version=VERSION, catalogue=cat)
    assert other.download == () and other.params


def test_download_sends_every_element_and_spv_skips_cfgxml_only(cat):
    policy = load_policy(HARDENING, catalogue=cat)
    everything = plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION,
                             catalogue=cat, method="download")
    assert everything.params == () and len(everything.download) == 13
    spv = plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION,
                      catalogue=cat, method="spv")
    assert spv.download == ()
    reasons = dict(spv.skipped)
    assert "cfg.xml only" in reasons["Firewall_Config"] and "cfg.xml only" in reasons["TLS_Name_Validate_3_"]
    with pytest.raises(ValueError, match="method"):
        plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION, method="tftp")


def test_known_values_keep_compliant_file_settings_out(cat):
    policy = load_policy(HARDENING, catalogue=cat)
    first = plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION, catalogue=cat)
    known = {p.path: p.value for p in first.params} | {f.param.path: f.param.value for f in first.download}
    again = plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION,
                        known=known, catalogue=cat)
    assert again.nothing_to_do and not again.download
    forced = plan_device(policy, product_class="CP-7841-3PCC", software_version=VERSION,
                         known=known, force_all=True, catalogue=cat)
    assert len(forced.download) == 5


def test_plan_cache_keys_on_the_file_settings_paths_too(cat):
    policy = load_policy(HARDENING, catalogue=cat)

    def plan(pc, sv, known, force_all):
        return plan_device(policy, product_class=pc, software_version=sv, known=known,
                           force_all=force_all, catalogue=cat)

    cache = PlanCache(plan)
    first = cache.plan("CP-7841-3PCC", VERSION, {})
    known = {f.param.path: f.param.value for f in first.download}
    # Only file settings differ between the two known maps: the cache must tell them apart.
    assert cache.plan("CP-7841-3PCC", VERSION, known).download == ()
    assert cache.plan("CP-7841-3PCC", VERSION, {}).download == first.download
