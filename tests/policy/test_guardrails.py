"""Guardrails: each rule on the policies that trip it and on the ones that do not, the
ACS facts taken from a ServerConfig, and the refusal inside FleetService.submit_job (real
store, real engine, CWMP over StubTreq; no sockets, no real time)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from acs_security.cli import main as cli_main
from acs_security.policy.document import Policy, parse_policy
from acs_security.policy.guardrails import (
    ERROR,
    FORCEABLE,
    RULES,
    WARNING,
    AcsContext,
    UnknownRuleError,
    acs_tls_suites,
    blocking,
    check_force,
    context_from_config,
    exit_code,
    lint_document,
    lint_policy,
)
from acs_security.server.config import DEFAULT_TLS_CIPHERS, load_config
from acs_security.service import FleetService, ServiceError

REPO = Path(__file__).resolve().parents[2]
HARDENING = REPO / "datamodel" / "examples" / "hardening.toml"
FIPS = "Device.X_CISCO_SecuritySettings.FIPSMode"
ACS = AcsContext(acs_host="acs.example.net", provisioning_hosts=("prov.example.net",))
HTTPS_ECDSA = AcsContext(acs_host="acs.example.net", https=True, tls_max_version="TLS 1.2",
                         tls_suites=acs_tls_suites(DEFAULT_TLS_CIPHERS, "ecdsa"))


def lint(doc: str, context: AcsContext = ACS):
    return lint_policy(parse_policy(doc.encode()), context=context)


def rules(findings) -> list[str]:
    return [f.rule for f in findings]


def test_fips_mode_is_refused_with_the_seed_words_and_a_fix():
    [f] = lint(f'[settings]\n"{FIPS}" = "Yes"\n')
    assert (f.rule, f.severity, f.settings, f.value) == ("fips-mode-over-tr069", ERROR, (FIPS,), "Yes")
    assert f.forceable
    assert "seed 000 'Enable FIPS Mode'" in f.source and "TR069 is Disabled" in f.source
    assert "TR-069" in f.reason and f.fix
    assert lint(f'[settings]\n"{FIPS}" = "No"\n') == []


def test_disabling_tr069_is_refused():
    assert rules(lint('[settings]\n"Enable_TR-069" = "No"\n')) == ["tr069-disabled"]
    assert lint('[settings]\n"Enable_TR-069" = "Yes"\n') == []


@pytest.mark.parametrize("domains, expected", [
    ("sip.example.net", ["restricted-domains-exclude-acs", "restricted-domains-exclude-provisioning"]),
    ("acs.example.net,sip.example.net", ["restricted-domains-exclude-provisioning"]),
    ("example.net", []),  # a parent domain covers both hosts (seed 000 FQDN list)
    ("ACS.Example.NET., prov.example.net", []),
    ("", []),  # an empty list restricts nothing
])
def test_restricted_domains_must_cover_the_acs_and_provisioning_hosts(domains, expected):
    assert rules(lint(f'[settings]\nRestricted_Access_Domains = "{domains}"\n')) == expected


def test_restricted_domains_details_and_unknown_or_ip_acs_hosts():
    [acs, prov] = lint('[settings]\nRestricted_Access_Domains = "sip.example.net"\n')
    assert "acs.example.net" in acs.reason and acs.extra["acs_host"] == "acs.example.net"
    assert prov.extra["hosts"] == ["prov.example.net"] and "prov.example.net" in prov.fix
    [unknown] = lint('[settings]\nRestricted_Access_Domains = "sip.example.net"\n', AcsContext())
    assert (unknown.rule, unknown.severity) == ("acs-host-unknown", WARNING) and "public_url" in unknown.fix
    [ip] = lint('[settings]\nRestricted_Access_Domains = "example.net"\n', AcsContext(acs_host="192.0.2.7"))
    assert ip.rule == "restricted-domains-exclude-acs" and "IP address" in ip.reason


def test_acs_url_change_must_stay_inside_the_restricted_domains():
    out = lint('[settings]\nACS_URL = "https://acs2.example.org/cwmp"\n'
               'Restricted_Access_Domains = "example.net,prov.example.net"\n')
    assert rules(out) == ["acs-url-outside-restricted-domains"]
    assert out[0].value == "https://acs2.example.org/cwmp" and "acs2.example.org" in out[0].fix
    assert lint('[settings]\nACS_URL = "https://acs2.example.net/cwmp"\n'
                'Restricted_Access_Domains = "example.net"\n') == []


def test_tls_min_version_above_the_acs_maximum_only_over_https():
    doc = '[settings]\nTLS_Client_Min_Version = "TLS 1.3"\n'
    [f] = lint(doc, HTTPS_ECDSA)
    assert f.rule == "tls-min-above-acs-max" and "Protocol alert" in f.source and "TLS 1.2" in f.reason
    assert lint(doc, AcsContext(acs_host="acs.example.net", https=True, tls_max_version="TLS 1.3")) == []
    assert lint(doc, ACS) == []  # phones reach the ACS over plain HTTP: no TLS to break


def test_cipher_list_without_a_suite_of_the_acs_is_refused():
    [f] = lint('[settings]\nTLS_Cipher_List = "aRSA:!eNULL"\n', HTTPS_ECDSA)  # RSA suites vs an ECDSA cert
    assert f.rule == "cipher-list-no-common-suite" and f.value == "aRSA:!eNULL"
    assert set(f.extra["acs_suites"]) == set(HTTPS_ECDSA.tls_suites)
    assert lint('[settings]\nTLS_Cipher_List = "ECDHE+AESGCM:!aNULL"\n', HTTPS_ECDSA) == []
    # blank: TR-069 falls back to curl's DEFAULT suites (seed 000), which the ACS shares
    assert lint('[settings]\nTLS_Cipher_List = ""\n', HTTPS_ECDSA) == []


def test_weak_suites_and_legacy_tls_versions_are_warnings():
    out = lint('[settings]\nTLS_Cipher_List = "HIGH:MD5"\nTLS_Min_Version = "TLS 1.0"\n')
    assert {(f.rule, f.severity) for f in out} == {("weak-cipher-suites", WARNING),
                                                   ("tls-legacy-version-allowed", WARNING)}
    weak = next(f for f in out if f.rule == "weak-cipher-suites").extra["weak"]
    assert "NULL-MD5" in weak["MD5"] and any(n.startswith("ADH") for n in weak["anonymous"])
    assert lint('[settings]\nTLS_Cipher_List = "ECDHE+AESGCM:!aNULL:!eNULL"\nTLS_Min_Version = "TLS 1.2"\n') == []


def test_sip_and_firewall_hygiene_warnings():
    out = lint('[settings]\nFirewall = "Disabled"\n'
               '[extensions]\nMediaSec_Request = "Yes"\nTLS_Name_Validate = "Yes"\n')
    # SIP Transport defaults to UDP; the data model's own advice comes along as a warning
    assert rules(out) == ["datamodel/tls-name-validate-only-with-sip-tls", "firewall-disabled", "mediasec-over-udp"]
    assert out[0].severity == WARNING and "default" in out[2].settings[1]
    out = lint('[settings]\nSIP_Transport_2_ = "TLS"\nTLS_Name_Validate_2_ = "No"\n'
               '[extensions]\nMediaSec_Request = "Yes"\nSIP_Transport = "TLS"\n')
    assert rules(out) == ["tls-name-validate-off"] and out[0].settings == ("TLS_Name_Validate_2_", "SIP_Transport_2_")


def test_proxy_credentials_warning_masks_the_password():
    out = lint('[settings]\nProxy_Mode = "Manual"\nProxy_Host = "proxy.example.net"\n'
               'Proxy_Server_Requires_Authentication = "Yes"\nProxy_Username = "ops"\n'
               'Proxy_Password = "pr0xy-Secret-77"\n')
    assert rules(out) == ["proxy-credentials-cleartext"] and out[0].value == "********"
    assert "pr0xy-Secret-77" not in json.dumps([f.to_json() for f in out]) + repr(out)


def test_what_the_data_model_refuses_cannot_be_forced():
    # Built directly (as Policy.from_json does), bypassing the parser's own refusal.
    policy = Policy(name="p", settings={"Proxy_Mode": "Manual", "TLS_Min_Version": "TLS 9"})
    out = lint_policy(policy, context=ACS)
    assert {"proxy-manual-without-host", "datamodel"} <= set(rules(out))
    model = [f for f in out if f.rule == "datamodel"]
    assert all(not f.forceable for f in model) and any(f.settings == ("TLS_Min_Version",) for f in model)
    assert rules(blocking(out, {"proxy-manual-without-host"})) == ["datamodel"] * len(model)
    assert "datamodel" not in FORCEABLE
    with pytest.raises(UnknownRuleError, match="datamodel"):
        check_force(["datamodel"])
    with pytest.raises(UnknownRuleError, match="fips-mode-over-tr96"):
        check_force(["fips-mode-over-tr96"])
    assert check_force(["fips-mode-over-tr069"]) == {"fips-mode-over-tr069"}


STUN_ADDR = "Device.ManagementServer.STUNServerAddress"
STUN_PORT = "Device.ManagementServer.STUNServerPort"
STUN_ACS = AcsContext(acs_host="acs.example.net", stun_host="stun.example.net", stun_port=3478)


def test_stun_server_must_be_inside_the_restricted_domains():
    doc = '[settings]\nRestricted_Access_Domains = "example.net"\nSTUNServerAddress = "stun.other.org"\n'
    (finding,) = [f for f in lint(doc) if f.rule.startswith("stun")]
    assert finding.rule == "stun-server-outside-restricted-domains" and finding.severity == "error"
    assert finding.settings == (STUN_ADDR, "Restricted_Access_Domains") and finding.value == "stun.other.org"
    assert "not in Restricted Access Domains 'example.net'" in finding.reason
    assert finding.fix == "add stun.other.org (or a parent domain) to Restricted_Access_Domains"
    ip = '[settings]\nRestricted_Access_Domains = "example.net"\nSTUNServerAddress = "192.0.2.7"\n'
    (by_ip,) = [f for f in lint(ip) if f.rule.startswith("stun")]
    assert "IP address" in by_ip.reason and "DNS name" in by_ip.fix
    assert [f for f in lint('[settings]\nRestricted_Access_Domains = "example.net"\n'
                            'STUNServerAddress = "acs.example.net"\n') if f.rule.startswith("stun")] == []


def test_stun_server_must_be_this_acs():
    ok = '[settings]\nSTUNEnable = "Yes"\nSTUNServerAddress = "STUN.example.net"\nSTUNServerPort = 3478\n'
    assert rules(lint(ok, STUN_ACS)) == []
    other = lint('[settings]\nSTUNServerAddress = "stun.isp.example"\n', STUN_ACS)
    assert rules(other) == ["stun-server-not-this-acs"]
    assert other[0].settings == (STUN_ADDR,)
    assert "this ACS's STUN server (stun.example.net:3478)" in other[0].reason
    assert other[0].fix.startswith("set STUNServerAddress = 'stun.example.net' and STUNServerPort = 3478")
    port = lint('[settings]\nSTUNServerPort = 19302\n', STUN_ACS)
    assert rules(port) == ["stun-server-not-this-acs"] and port[0].settings == (STUN_PORT,)
    # Unknown STUN address (no public_url, no stun_public): not checked.
    assert rules(lint('[settings]\nSTUNServerAddress = "stun.isp.example"\n')) == []
    ctx = context_from_config(load_config(environ={}, overrides={"public_url": "http://ACS.example.net/"}))
    assert (ctx.stun_host, ctx.stun_port) == ("acs.example.net", 3478)
    ctx = context_from_config(load_config(environ={}, overrides={"stun_public": "198.51.100.9:3479"}))
    assert (ctx.stun_host, ctx.stun_port) == ("198.51.100.9", 3479)
    assert context_from_config(load_config(environ={}, overrides={"stun_listen": "off"})).stun_host is None


def test_stun_settings_plan_as_tr181_parameters():
    from acs_security.policy.plan import plan_device

    policy = parse_policy(b'[settings]\nSTUNEnable = "Yes"\nSTUNServerAddress = "acs.example.net"\n'
                          b'STUNServerPort = 3478\nSTUNMinimumKeepAlivePeriod = 30\n')
    plan = plan_device(policy, product_class="CP-8851-3PCC", software_version="sip88xx.12-0-1MPP0001-276",
                       known=None, force_all=True)
    assert plan.error is None and plan.skipped == ()
    sent = {p.path: (p.value, p.xsi_type) for p in plan.params}
    assert sent["Device.ManagementServer.STUNEnable"] == ("true", "boolean")
    assert sent["Device.ManagementServer.STUNServerAddress"] == ("acs.example.net", "string")
    assert sent["Device.ManagementServer.STUNServerPort"] == ("3478", "unsignedInt")
    assert sent["Device.ManagementServer.STUNMinimumKeepAlivePeriod"] == ("30", "unsignedInt")


def test_stun_server_outside_the_devices_known_domains_is_skipped_for_that_device():
    from acs_security.policy.plan import plan_device

    policy = parse_policy(b'[settings]\nSTUNEnable = "Yes"\nSTUNServerAddress = "stun.other.org"\n')
    rad = "Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains"
    args = {"product_class": "CP-8851-3PCC", "software_version": "sip88xx.12-0-1MPP0001-276", "force_all": True}
    plan = plan_device(policy, known={rad: "example.net"}, **args)
    assert [k for k, _ in plan.skipped] == [STUN_ADDR]
    assert "leave out the STUN server 'stun.other.org'" in plan.skipped[0][1]
    assert [p.path for p in plan.params] == ["Device.ManagementServer.STUNEnable"]
    # A device whose list covers it, or has none, gets it.
    for known in ({rad: "other.org, example.net"}, {rad: ""}, {}):
        assert STUN_ADDR in [p.path for p in plan_device(policy, known=known, **args).params]


def test_lint_document_reports_parse_errors_and_exit_codes():
    policy, out = lint_document(b'[settings]\nTLS_Min_Version = "TLS 1.5"\n', source="p.toml", context=ACS)
    assert policy is None and rules(out) == ["datamodel"] and "TLS 1.5" in out[0].reason
    assert exit_code(out) == 2
    policy, out = lint_document(HARDENING.read_bytes(), source="h.toml",
                                context=AcsContext(acs_host="acs.example.net"))
    assert policy is not None and policy.name == "hardening" and out == [] and exit_code(out) == 0
    assert exit_code(lint('[settings]\nFirewall = "Disabled"\n')) == 1
    assert all(r.source and r.title for r in RULES.values())


def test_context_from_config_and_the_acs_suites():
    http = context_from_config(load_config(environ={}, overrides={
        "public_url": "http://ACS.example.net:7547/cwmp", "provisioning_hosts": "Prov.example.net, fw.example.net"}))
    assert (http.acs_host, http.https, http.tls_suites) == ("acs.example.net", False, frozenset())
    assert http.provisioning_hosts == ("prov.example.net", "fw.example.net")
    tls = context_from_config(load_config(environ={}, overrides={
        "https_listen": "127.0.0.1:0", "tls_cert": "c.pem", "tls_key": "k.pem", "tls_max_version": "TLS 1.2",
        "tls_ciphers": "ECDHE+AESGCM:RSA+AESGCM"}), certificate_auth="rsa")
    assert tls.https and tls.acs_host is None and tls.tls_max_version == "TLS 1.2"
    assert tls.tls_suites == {"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
                              "AES256-GCM-SHA384", "AES128-GCM-SHA256"}
    everything = acs_tls_suites(DEFAULT_TLS_CIPHERS)
    assert not any(s.startswith("DHE-") for s in everything)  # no DH parameters: never chosen
    assert acs_tls_suites(DEFAULT_TLS_CIPHERS, "ecdsa") < everything
    with pytest.raises(ValueError, match="selects no suite"):
        acs_tls_suites("NOTHING-AT-ALL")
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers("NOTHING-AT-ALL")


def test_policy_lint_command_text_json_and_exit_codes(tmp_path, capsys):
    bad = tmp_path / "fips.toml"
    bad.write_text(f'[settings]\n"{FIPS}" = "Yes"\nFirewall = "Disabled"\n')
    assert cli_main(["policy", "lint", str(bad)]) == 2
    text = capsys.readouterr().out
    assert "ERROR fips-mode-over-tr069" in text and "push --force fips-mode-over-tr069" in text
    assert "WARNING firewall-disabled" in text and "a push would be refused" in text
    rad = tmp_path / "rad.toml"
    rad.write_text('[settings]\nRestricted_Access_Domains = "sip.example.net"\n')
    assert cli_main(["policy", "lint", str(rad), "--json", "--public-url", "https://acs.example.net/",
                     "--provisioning-host", "prov.example.net"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert [f["rule"] for f in data["findings"]] == ["restricted-domains-exclude-acs",
                                                     "restricted-domains-exclude-provisioning"]
    assert data["context"]["https"] is True and data["exit_code"] == 2 and data["errors"] == 2
    assert cli_main(["policy", "lint", str(HARDENING), "--public-url", "http://acs.example.net/"]) == 0
    assert "clean" in capsys.readouterr().out
    warn = tmp_path / "warn.toml"
    warn.write_text('[settings]\nFirewall = "Disabled"\n')
    assert cli_main(["policy", "lint", str(warn)]) == 1
    assert cli_main(["policy", "lint", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


# ------------------------------------------------------------------ inside submit_job

@pytest.fixture
def fleet():
    from twisted.internet.defer import ensureDeferred

    from acs_security.fleet.engine import EngineLimits, FleetEngine
    from tests.server.harness import inform, make_harness, run

    h = make_harness()
    engine = FleetEngine(store=h.dstore, clock=h.clock, limits=EngineLimits(tick=0.5), random=lambda: 0.5)
    h.resource._provisioner = engine
    service = FleetService(h.dstore, engine=engine, clock=h.clock, acs_context=ACS)

    async def register(serial: str) -> None:
        resp = await h.client.post("http://acs/", data=inform(serial, ("1 BOOT",)))
        await resp.content()
        resp = await h.client.post("http://acs/", data=b"", cookies={"acs_session": resp.cookies()["acs_session"]})
        await resp.content()

    for i in range(3):
        run(h, register(f"G{i:03d}"))
    assert h.store.count_devices() == 3
    ensureDeferred(engine.start())
    yield h, service, lambda coro: run(h, coro)
    h.close()


def test_submit_job_refuses_before_anything_is_created(fleet):
    h, service, run = fleet
    policy = f'[settings]\n"{FIPS}" = "Yes"\nFirewall = "Enabled"\n'
    with pytest.raises(ServiceError) as info:
        run(service.submit_job({"policy": policy, "select": "all"}))
    exc = info.value
    assert (exc.status, exc.title) == (400, "policy refused by guardrails")
    assert "fips-mode-over-tr069" in exc.detail and "Nothing was sent" in exc.detail
    assert [f["rule"] for f in exc.findings] == ["fips-mode-over-tr069"]
    assert h.store.count_jobs() == 0
    for bad, title in ((["fips-mode-over-tr96"], "unknown guardrail rule"), ("fips-mode-over-tr069", "invalid force")):
        with pytest.raises(ServiceError) as info:
            run(service.submit_job({"policy": policy, "select": "all", "force": bad}))
        assert info.value.title == title and h.store.count_jobs() == 0
    plan = run(service.submit_job({"policy": policy, "select": "all", "dry_run": True}))
    assert plan["refused_by"] == ["fips-mode-over-tr069"] and plan["findings"][0]["rule"] == "fips-mode-over-tr069"
    assert plan["targets"] == 3 and h.store.count_jobs() == 0
    job = run(service.submit_job({"policy": policy, "select": "all", "force": ["fips-mode-over-tr069"]}))
    assert job["total"] == 3 and [f["rule"] for f in job["findings"]] == ["fips-mode-over-tr069"]
    assert h.store.count_jobs() == 1


def test_refusal_reaches_the_api_as_problem_details_with_findings(fleet):
    from datetime import UTC, datetime

    from treq.testing import StubTreq

    from acs_security.server.api import ApiResource
    from acs_security.server.auth import TokenAuthenticator, hash_token
    from acs_security.store.tokens import TokenRecord

    h, service, run = fleet
    token = "t" * 43
    record = TokenRecord(1, "ops", "operator", datetime(2026, 1, 1, tzinfo=UTC), None, None, hash_token(token))

    async def lookup(digest):
        return record if digest == record.token_sha256 else None

    client = StubTreq(ApiResource(service, authenticator=TokenAuthenticator(lookup, h.clock)))
    body = json.dumps({"policy": '[settings]\nRestricted_Access_Domains = "sip.example.net"\n', "select": "all"})

    async def post():
        resp = await client.post("http://api/api/v1/jobs", data=body.encode(),
                                 headers={"Content-Type": ["application/json"], "Authorization": [f"Bearer {token}"]})
        return resp.code, json.loads(await resp.content())

    from twisted.internet.defer import ensureDeferred

    d = ensureDeferred(post())
    client.flush()
    out = []
    d.addBoth(out.append)
    code, problem = out[0]
    assert code == 400 and problem["title"] == "policy refused by guardrails"
    assert [f["rule"] for f in problem["findings"]] == ["restricted-domains-exclude-acs",
                                                        "restricted-domains-exclude-provisioning"]
    assert h.store.count_jobs() == 0
