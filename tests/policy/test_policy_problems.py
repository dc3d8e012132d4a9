"""Every problem of a policy document in one answer, and TOML types refused precisely
(issue 13.5): the parser, lint (CLI), the service's submit (REST/SOAP) and its guardrails."""

from __future__ import annotations

import json

import pytest

from acs_security.cli import main as cli_main
from acs_security.policy.document import PolicyError, parse_policy
from acs_security.policy.guardrails import AcsContext, lint_document
from acs_security.service import ServiceError
from tests.policy.test_guardrails import fleet  # noqa: F401 - the fixture, shared

ACS = AcsContext(acs_host="acs.example.net", provisioning_hosts=("prov.example.net",))

SEVERAL = b"""
[settings]
TLS_Min_Version = "TLS 9"
Firewal = "Enabled"
Firewall = true
Restricted_Access_Domains = "http://x"
Proxy_Port = 70000

[extensions]
apply_to = [0]
SIP_Transport = "TCPX"
TLS_Name_Validate = true
"""


def problems(doc: bytes) -> list[str]:
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    return err.value.errors


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    found = problems(SEVERAL)
    assert len(found) == 8, found
    expected = ["unknown setting 'Firewal' (did you mean 'Firewall'?)", "Firewall (", "apply_to: [0]",
                "TLS_Name_Validate (", "TLS_Min_Version (", "Restricted_Access_Domains (",
                "Proxy_Port (", "SIP_Transport_1_ ("]
    for text in expected:
        assert sum(p.startswith(text) for p in found) == 1, (text, found)


@pytest.mark.parametrize("line, words", [
    # A boolean for an enumerated Yes/No setting: the type given, the type expected, the strings accepted.
    ("[extensions]\nTLS_Name_Validate = true", 'TLS_Name_Validate (Device.X_CISCO_Ext.{n}.TLSNameValidate): a TOML '
     'boolean (true) was given; the setting takes a string: "Yes" or "No" (write TLS_Name_Validate = "Yes")'),
    ("[settings]\nFirewall = false", 'a TOML boolean (false) was given; the setting takes a string: '
     '"Enabled" or "Disabled"'),
    ("[settings]\nTLS_Min_Version = 1.2", 'a TOML float (1.2) was given; the setting takes a string: one of '
     '"TLS 1.0", "TLS 1.1", "TLS 1.2"'),
    ("[settings]\nRestricted_Access_Domains = [\"a.example.net\"]", 'a TOML array (["a.example.net"]) was '
     "given; the setting takes a string in cfg.xml form"),
    ("[settings]\nProxy_Port = \"80\"\nProxy_Host = {a = 1}", "a TOML table ({a = 1}) was given"),
    ("[settings]\nProxy_Port = true", "a TOML boolean (true) was given; the setting takes an integer or a "
     "string of digits"),
    ("[settings]\nProxy_Port = 1979-05-27", "a TOML date (1979-05-27) was given"),
])
def test_wrong_toml_types_name_setting_type_given_and_type_expected(line: str, words: str) -> None:
    found = problems(line.encode() + b"\n")
    assert any(words in p for p in found), found


def test_numbers_are_taken_as_numbers_where_the_setting_is_one() -> None:
    p = parse_policy(b"[settings]\nProxy_Port = 3128\nProxy_Host = \"proxy.example.net\"\n"
                     b"Proxy_Mode = \"Manual\"\nPeriodic_Inform_Interval = 3600\n")
    assert p.settings["Proxy_Port"] == "3128" and p.settings["Periodic_Inform_Interval"] == "3600"


def test_a_secret_of_the_wrong_type_is_not_shown() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(b"[settings]\nProxy_Password = 31415926\n")
    (problem,) = err.value.problems
    assert "31415926" not in problem.text and problem.value is None and "a TOML integer was given" in problem.text


def test_policy_table_and_structure_problems_are_listed_with_the_rest() -> None:
    found = problems(b'settings = "x"\n[policy]\nname = 5\nnmae = "x"\n[extensions]\nSIP_Transport = "UDPX"\n')
    assert "[settings] must be a table, not a TOML string" in found
    assert "[policy] nmae: unknown key; [policy] takes name and description" in found
    assert "[policy] name: a TOML integer was given; a string is expected" in found
    assert any(p.startswith("SIP_Transport_1_ (") for p in found) and len(found) == 4


def test_deeply_nested_toml_is_a_problem_not_a_crash() -> None:
    assert problems(b"a = " + b"[" * 5000 + b"]" * 5000) == [
        "TOML nested too deeply (arrays or inline tables inside each other)"]


def test_cfgxml_unknown_elements_and_invalid_values_together() -> None:
    found = problems(b"<flat-profile><TLS_Min_Version>TLS 9</TLS_Min_Version><Firewall>x</Firewall>"
                     b"<Foo>1</Foo></flat-profile>")
    assert found[0] == "unknown element Foo" and len(found) == 3
    assert any("TLS_Min_Version" in p for p in found) and any("Firewall" in p for p in found)


def test_partial_policy_holds_only_the_lines_without_a_problem() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(b'[settings]\nFirewall = true\nTLS_Min_Version = "TLS 9"\nTLS_Cipher_List = "HIGH"\n'
                     b'[extensions]\nSIP_Transport = "TLS"\n')
    partial = err.value.partial
    assert partial is not None
    assert dict(partial.settings) == {"TLS_Cipher_List": "HIGH"}
    assert dict(partial.extension_settings) == {"SIP_Transport_n_": "TLS"}
    assert [p.setting for p in err.value.problems] == ["Firewall", "TLS_Min_Version"]


def test_lint_gives_datamodel_problems_and_guardrail_findings_in_one_answer() -> None:
    # A wrong type on one line, and a lockout on another line that is valid in itself.
    policy, found = lint_document(b'[settings]\nFirewall = true\nRestricted_Access_Domains = "sip.example.net"\n',
                                  source="p.toml", context=ACS)
    assert policy is None
    rules = [f.rule for f in found]
    assert "datamodel" in rules and "restricted-domains-exclude-acs" in rules
    firewall = next(f for f in found if f.rule == "datamodel")
    assert firewall.settings == ("Firewall",) and firewall.value == "true" and "TOML boolean" in firewall.reason


def test_cli_lint_reports_every_problem(tmp_path, capsys) -> None:
    path = tmp_path / "several.toml"
    path.write_bytes(SEVERAL)
    assert cli_main(["policy", "lint", "--json", str(path)]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == 8 and out["policy"] is None
    assert cli_main(["policy", "lint", str(path)]) == 2
    assert "8 error(s)" in capsys.readouterr().out


def test_submit_and_dry_run_answer_every_problem_with_findings(fleet) -> None:  # noqa: F811
    h, service, run = fleet
    policy = SEVERAL.decode() + '\n'
    for dry_run in (False, True):
        with pytest.raises(ServiceError) as info:
            run(service.submit_job({"policy": policy, "select": "all", "dry_run": dry_run}))
        exc = info.value
        assert (exc.status, exc.title) == (400, "invalid policy")
        for name in ("Firewal'", "Firewall (", "apply_to", "TLS_Name_Validate", "TLS_Min_Version",
                     "Restricted_Access_Domains", "Proxy_Port", "SIP_Transport_1_"):
            assert name in exc.detail, name
        assert exc.findings is not None and len([f for f in exc.findings if f["rule"] == "datamodel"]) == 8
    # With a lockout among the valid lines, the guardrails' finding comes in the same answer.
    with pytest.raises(ServiceError) as info:
        run(service.submit_job({"policy": '[settings]\nFirewall = true\nRestricted_Access_Domains = "x.example.net"\n',
                                "select": "all"}))
    assert {f["rule"] for f in info.value.findings or []} >= {"datamodel", "restricted-domains-exclude-acs"}
    assert h.store.count_jobs() == 0
