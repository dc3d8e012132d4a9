"""The web console over the real API resource, in memory: sign-in, cookie flags, security
headers on every answer, CSRF, roles as on the API, revocation and expiry honoured at once,
hostile input. No browser here (tests/console/test_browser.py has one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from acs_security.console import security as sec
from acs_security.console.resource import ConsoleResource
from acs_security.store import InformRecord, make_device_id
from tests.console.support import BASE, Browser, Console, make_console_harness

REPO = Path(__file__).resolve().parents[2]
LOCKOUT = (REPO / "datamodel" / "examples" / "lockout.toml").read_text()
HARDENING = (REPO / "datamodel" / "examples" / "hardening.toml").read_text()


@pytest.fixture
def console() -> Iterator[Console]:
    c = make_console_harness()
    yield c
    c.store.close()


def signed_in(console: Console, role: str = "operator", name: str | None = None) -> Browser:
    browser = Browser(console)
    answer = browser.sign_in(console.token(name or role, role))
    assert answer.status == 303, answer.body[:300]
    return browser


def no_inline_code(body: str) -> None:
    """What the CSP would block must not be in the page at all."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), "inline script"
    assert "<style" not in body and not re.search(r"\sstyle=", body), "inline style"
    assert not re.search(r"\son[a-z]+=", body), "inline event handler"
    assert "javascript:" not in body


def test_pages_need_a_sign_in_and_say_where_to_go_back(console: Console) -> None:
    answer = console.request("GET", "/fleet?select=all")
    assert answer.status == 303
    assert answer.header("location") == "/signin?next=%2Ffleet%3Fselect%3Dall"
    root = console.request("GET", "/")
    assert root.status == 303 and root.header("location") == "/fleet"


def test_sign_in_exchanges_a_token_for_a_strict_http_only_session_cookie(console: Console) -> None:
    browser = Browser(console)
    form = browser.get("/signin")
    assert form.status == 200
    pre = [c for c in form.headers["set-cookie"] if c.startswith("acs_signin=")]
    assert pre and "HttpOnly" in pre[0] and "SameSite=Strict" in pre[0] and "Max-Age=900" in pre[0]
    token = console.token("alice", "operator")
    answer = browser.post("/signin", {"csrf": form.csrf(), "token": token, "next": "/jobs"})
    assert answer.status == 303 and answer.header("location") == "/jobs"
    session = [c for c in answer.headers["set-cookie"] if c.startswith("acs_console=")]
    assert len(session) == 1
    parts = session[0].split("; ")
    assert {"Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={8 * 3600}"} <= set(parts)
    assert "Secure" not in parts  # plain HTTP here; tests below cover TLS
    assert token not in session[0]
    assert "acs_signin" not in browser.cookies  # the sign-in cookie is spent
    page = browser.get("/fleet")
    assert page.status == 200 and ">alice<" in page.body and ">operator<" in page.body
    assert console.store.count_console_sessions() == 1


def test_the_cookie_is_secure_with_the_host_prefix_behind_a_trusted_tls_proxy() -> None:
    console = make_console_harness(trusted=("0.0.0.0/0", "::/0"))
    try:
        browser = Browser(console)
        https = {"X-Forwarded-Proto": "https"}
        form = browser.get("/signin", headers=https)
        assert any(c.startswith("__Host-acs_signin=") and "Secure" in c for c in form.headers["set-cookie"])
        answer = browser.post("/signin", {"csrf": form.csrf(), "token": console.token("tls", "viewer")},
                              origin="https://console.test", headers=https)
        assert answer.status == 303, answer.body[:300]
        session = [c for c in answer.headers["set-cookie"] if c.startswith("__Host-acs_console=")]
        assert session and "Secure" in session[0].split("; ")
        assert browser.get("/fleet", headers=https).status == 200
    finally:
        console.store.close()


def test_x_forwarded_proto_from_anybody_else_is_ignored(console: Console) -> None:
    form = Browser(console).get("/signin", headers={"X-Forwarded-Proto": "https"})
    assert not any("Secure" in c for c in form.headers["set-cookie"])


@pytest.mark.parametrize("case", ["wrong token", "revoked token", "no csrf", "wrong csrf", "other site",
                                  "no sign-in cookie"])
def test_a_refused_sign_in_makes_no_session(console: Console, case: str) -> None:
    browser = Browser(console)
    token = console.token("bob", "admin")
    form = browser.get("/signin")
    fields = {"csrf": form.csrf(), "token": token}
    origin = BASE
    if case == "wrong token":
        fields["token"] = "acs_" + "A" * 43
    elif case == "revoked token":
        console.store.revoke_token("bob", datetime.fromtimestamp(console.clock.seconds(), UTC))
    elif case == "no csrf":
        del fields["csrf"]
    elif case == "wrong csrf":
        fields["csrf"] = sec.csrf_token(sec.new_secret(b"\x01" * 32))
    elif case == "other site":
        origin = "http://evil.example"
    else:
        browser.cookies.clear()
    answer = browser.post("/signin", fields, origin=origin)
    assert answer.status == 401 and "acs_console" not in browser.cookies
    assert 'id="signin-error"' in answer.body and token not in answer.body
    assert console.store.count_console_sessions() == 0


def test_every_answer_carries_the_security_headers(console: Console) -> None:
    browser = signed_in(console)
    for path in ("/fleet", "/jobs", "/policies", "/static/console.js", "/static/console.css", "/nope",
                 "/signin", "/jobs/42", "/devices/x"):
        answer = browser.get(path)
        assert answer.header("content-security-policy") == sec.CSP, path
        assert answer.header("x-content-type-options") == "nosniff", path
        assert answer.header("x-frame-options") == "DENY", path
        if (answer.header("content-type") or "").startswith("text/html"):
            no_inline_code(answer.body)
    assert console.request("GET", "/fleet").header("content-security-policy") == sec.CSP  # the redirect too
    assert browser.get("/jobs/42").status == 404
    assert browser.get("/static/console.js").header("content-type") == "text/javascript; charset=utf-8"


def test_the_api_is_untouched_and_a_session_cookie_is_no_api_credential(console: Console) -> None:
    browser = signed_in(console)
    health = console.request("GET", "/healthz")
    assert health.status == 200 and health.header("content-type") == "application/json"
    # A page of another site could make the browser send the cookie to the API: it must not count.
    api = browser.get("/api/v1/devices")
    assert api.status == 401 and api.header("content-type") == "application/problem+json"
    bearer = console.request("GET", "/api/v1/devices",
                             headers={"Authorization": f"Bearer {console.tokens['operator']}"})
    assert bearer.status == 200


def test_sign_out_needs_the_csrf_token_and_then_ends_the_session_everywhere(console: Console) -> None:
    browser = signed_in(console)
    cookie = dict(browser.cookies)
    forged = browser.post("/signout", {})
    assert forged.status == 403 and "CSRF" in forged.body
    assert browser.get("/fleet").status == 200  # nothing was changed
    cross = browser.post("/signout", {"csrf": browser.get("/fleet").csrf()}, origin="http://evil.example")
    assert cross.status == 403 and "cross-site" in cross.body
    done = browser.post("/signout", {"csrf": browser.get("/fleet").csrf()})
    assert done.status == 303 and done.header("location") == "/signin?why=signed-out"
    assert "acs_console" not in browser.cookies
    replay = console.request("GET", "/fleet", cookies=cookie)  # the old cookie, e.g. from another tab
    assert replay.status == 303 and (replay.header("location") or "").startswith("/signin")
    assert console.store.count_console_sessions() == 0


@pytest.mark.parametrize("how", ["store", "api"])
def test_a_revoked_token_ends_its_sessions_at_the_next_request(console: Console, how: str) -> None:
    browser = signed_in(console, "viewer", "carol")
    assert browser.get("/jobs").status == 200
    if how == "store":  # acs-security tokens revoke, or another node
        console.store.revoke_token("carol", datetime.fromtimestamp(console.clock.seconds(), UTC))
    else:
        admin = console.token("root", "admin")
        gone = console.request("DELETE", "/api/v1/tokens/carol", headers={"Authorization": f"Bearer {admin}"})
        assert gone.status == 200
    answer = browser.get("/jobs")
    assert answer.status == 303 and answer.header("location") == "/signin?next=%2Fjobs&why=revoked"
    live = browser.get("/jobs/1/live")
    assert live.status == 401  # the page's script is told, and goes to sign-in
    assert console.store.count_console_sessions(token_id=console.store.list_tokens()[0].id) == 0


def test_sessions_expire_when_idle_and_at_their_maximum_age() -> None:
    console = make_console_harness(max_age=3600, idle_timeout=600)
    try:
        browser = signed_in(console)
        console.clock.advance(599)
        assert browser.get("/fleet").status == 200  # a request resets the idle clock...
        console.clock.advance(599)
        assert browser.get("/fleet").status == 200
        console.clock.advance(600)
        idle = browser.get("/fleet")
        assert idle.status == 303 and (idle.header("location") or "").endswith("why=idle")
        browser = signed_in(console, name="again")
        for _ in range(8):
            console.clock.advance(500)
            last = browser.get("/fleet")
        assert last.status == 303 and (last.header("location") or "").endswith("why=expired")  # ...not the maximum
    finally:
        console.store.close()


def test_a_viewer_sees_operator_buttons_disabled_and_a_forged_push_is_refused(console: Console) -> None:
    viewer = signed_in(console, "viewer")
    page = viewer.get("/policies?example=hardening")
    assert page.status == 200
    for button in ("push", "dry-run"):
        match = re.search(rf'<button[^>]*id="{button}"[^>]*>', page.body)
        assert match is not None
        tag = match.group(0)
        assert re.search(r"\sdisabled[\s>]", tag) and 'title="needs the operator role"' in tag
    forged = viewer.post("/policies/push", {"csrf": page.csrf(), "policy": HARDENING, "select": "all"})
    assert forged.status == 403 and "needs the operator role" in forged.body
    assert viewer.post("/policies/dry-run", {"csrf": page.csrf(), "policy": HARDENING}).status == 403
    assert viewer.post("/jobs/1/cancel", {"csrf": page.csrf()}).status == 403
    # An operator passes the same checks: this harness runs no job engine, which the service says.
    operator = signed_in(console, "operator")
    page = operator.get("/policies?example=hardening")
    match = re.search(r'<button[^>]*id="push"[^>]*>', page.body)
    assert match is not None
    tag = match.group(0)
    assert "disabled" not in tag
    pushed = operator.post("/policies/push", {"csrf": page.csrf(), "policy": HARDENING, "select": "all"})
    assert pushed.status == 503 and "no job engine" in pushed.body


def test_every_console_route_takes_its_role_from_a_real_api_route(console: Console) -> None:
    resource = console.api.console
    assert isinstance(resource, ConsoleResource)
    checked = 0
    for r in resource.routes:
        if r.api is not None:
            assert resource.needs(r.api) in ("viewer", "operator", "admin")
            checked += 1
            if r.method == "POST" and r.pattern.pattern not in ("^/signout$",):
                # What changes something needs the role the API needs for the same change.
                assert r.api[0] == "POST"
    assert checked >= 10


def test_live_lint_names_the_lockout_with_its_reason_and_fix(console: Console) -> None:
    viewer = signed_in(console, "viewer")  # linting is a viewer's right on the API too
    csrf = viewer.get("/policies").csrf()
    answer = viewer.post("/policies/lint.fragment", {"csrf": csrf, "policy": LOCKOUT})
    assert answer.status == 200
    assert 'data-exit="2"' in answer.body and 'data-rule="restricted-domains-exclude-acs"' in answer.body
    assert "acs.example.net" in answer.body and "Fix:" in answer.body and "Why:" in answer.body
    assert "<html" not in answer.body  # a fragment, for the editor's script
    header_only = viewer.post("/policies/lint.fragment", {"policy": LOCKOUT}, headers={"X-CSRF-Token": csrf})
    assert header_only.status == 200
    broken = viewer.post("/policies/lint.fragment", {"csrf": csrf, "policy": "[settings]\nNo_Such = 1\nFirewall = 7\n"})
    assert broken.body.count('data-rule="datamodel"') >= 2  # every problem at once


def test_hostile_input_gets_a_precise_answer_and_is_escaped(console: Console) -> None:
    browser = signed_in(console)
    csrf = browser.get("/fleet").csrf()
    xss = browser.get("/devices/" + quote("<script>alert(1)</script>", safe=""))
    assert xss.status == 404 and "<script>alert" not in xss.body and "&lt;script&gt;" in xss.body
    assert 'id="who"' in xss.body  # an error page keeps the signed-in layout
    bad_select = browser.get("/fleet?select=" + quote("model~<b>x</b>"))
    assert bad_select.status == 400 and "<b>x" not in bad_select.body
    not_utf8 = console.request("POST", "/policies/lint", cookies=browser.cookies, raw=b"csrf=" + csrf.encode()
                               + b"&policy=%FF%FE", headers={"Content-Type": "application/x-www-form-urlencoded",
                                                               "Origin": BASE})
    assert not_utf8.status == 400
    json_body = console.request("POST", "/policies/lint", cookies=browser.cookies, raw=b'{"policy": 1}',
                                headers={"Content-Type": "application/json", "Origin": BASE,
                                         "X-CSRF-Token": csrf})
    assert json_body.status == 415
    huge = browser.post("/policies/lint", {"csrf": csrf, "policy": "x" * 600_000})
    assert huge.status == 413
    too_big_policy = browser.post("/policies/lint", {"csrf": csrf, "policy": "a" * 300_000})
    assert too_big_policy.status == 413 and "policy too large" in too_big_policy.body
    assert browser.get("/jobs?offset=-1").status == 400
    assert browser.get("/jobs?state=%3Cx%3E").status == 400


def test_sign_in_goes_back_only_to_a_console_page(console: Console) -> None:
    for target, expected in (("//evil.example/x", "/fleet"), ("https://evil.example", "/fleet"),
                             ("/\\evil.example", "/fleet"), ("/jobs?state=running", "/jobs?state=running")):
        browser = Browser(console)
        form = browser.get("/signin")
        token = console.token(f"n{len(console.tokens)}", "viewer")
        answer = browser.post("/signin", {"csrf": form.csrf(), "token": token, "next": target})
        assert answer.header("location") == expected, target


def test_the_fleet_page_filters_with_the_cli_selector_and_names_phones_by_serial_and_model(console: Console) -> None:
    now = datetime.fromtimestamp(console.clock.seconds(), UTC)
    records = []
    for i, (pc, fw) in enumerate([("CP-8851-3PCC", "sip88xx.12-0-1MPP0001-276")] * 3
                                 + [("CP-7841-3PCC", "sip78xx.11-3-7MPP0001-276")] * 2):
        records.append(InformRecord(
            device_id=make_device_id("00000C", pc, f"FCH{i:04d}"), oui="00000C", product_class=pc,
            serial_number=f"FCH{i:04d}", manufacturer="Cisco Systems, Inc.", software_version=fw,
            connection_request_url="http://192.0.2.1/cr" if i % 2 else None, udp_connection_request_address=None,
            parameter_key="", events=("2 PERIODIC",), inform_time=now, remote_address="192.0.2.1"))
    console.store.record_informs(records)
    browser = signed_in(console, "viewer")
    everything = browser.get("/fleet")
    assert 'id="total">5 devices' in everything.body
    assert "FCH0000 CP-8851-3PCC" in everything.body and "periodic Inform only" in everything.body
    newer = browser.get("/fleet?select=" + quote("firmware>=12.0(1)"))
    assert 'id="total">3 devices' in newer.body and "CP-7841" not in newer.body.split('id="devices"')[1]
    device = browser.get("/devices/" + quote(records[1].device_id, safe=""))
    assert device.status == 200 and "FCH0001 CP-8851-3PCC" in device.body
    assert "Restricted_Access_Domains" in device.body  # every catalogued setting of the model


def _register(console: Console, count: int) -> list[InformRecord]:
    now = datetime.fromtimestamp(console.clock.seconds(), UTC)
    records = [InformRecord(
        device_id=make_device_id("00000C", pc, f"FCH{i:04d}"), oui="00000C", product_class=pc,
        serial_number=f"FCH{i:04d}", manufacturer="Cisco Systems, Inc.", software_version="sip88xx.12-0-1MPP0001-276",
        connection_request_url=None, udp_connection_request_address=None, parameter_key="", events=("1 BOOT",),
        inform_time=now, remote_address="192.0.2.1")
        for i, pc in enumerate(["CP-8851-3PCC", "CP-8841-3PCC"] * (count // 2))]
    console.store.record_informs(records)
    return records


def test_an_assignment_from_the_editor_shows_on_the_compliance_pages(console: Console) -> None:
    records = _register(console, 6)
    operator = signed_in(console, "operator")
    page = operator.get("/policies?example=hardening")
    assert 'id="assign"' in page.body and "Compliance</a>" in page.body
    refused = operator.post("/policies/assign", {"csrf": page.csrf(), "policy": LOCKOUT, "assignment": "lock"})
    assert refused.status == 400 and 'id="refusal"' in refused.body and "restricted-domains-exclude-acs" in refused.body
    assert console.store.list_assignments() == []
    made = operator.post("/policies/assign", {"csrf": page.csrf(), "policy": HARDENING, "assignment": "harden",
                                              "select": "product_class=CP-8851-3PCC", "priority": "100"})
    assert made.status == 303
    assignment_id = console.store.find_assignment("harden").id
    assert made.header("location") == f"/compliance/{assignment_id}"
    overview = operator.get("/compliance")
    assert overview.status == 200 and ">harden<" in overview.body
    no_inline_code(overview.body)
    detail = operator.get(f"/compliance/{assignment_id}")
    assert detail.status == 200 and "3 selected device(s)" in detail.body
    assert detail.body.count('class="device"') == 3 and "FCH0000 CP-8851-3PCC" in detail.body
    assert 'id="by-model"' in detail.body and "CP-8851-3PCC" in detail.body.split('id="by-model"')[1]
    unknown = operator.get(f"/compliance/{assignment_id}?state=unknown")
    assert unknown.body.count('class="device"') == 3  # no session has judged them yet
    fleet = operator.get("/fleet")
    assert fleet.body.count('state-unknown">unknown') == 3 and fleet.body.count("no assignment") == 3
    device = operator.get("/devices/" + quote(records[0].device_id, safe=""))
    assert 'id="device-assignments"' in device.body and ">harden<" in device.body
    assert "acs.example.net,sip.example.net,prov.example.net" in device.body  # the desired value
    viewer = signed_in(console, "viewer")
    match = re.search(r'<button[^>]*id="toggle"[^>]*>', viewer.get(f"/compliance/{assignment_id}").body)
    assert match is not None
    tag = match.group(0)
    assert re.search(r"\sdisabled[\s>]", tag)
    csrf = viewer.get("/compliance").csrf()
    assert viewer.post(f"/compliance/{assignment_id}/disable", {"csrf": csrf}).status == 403
    assert console.store.find_assignment("harden").enabled is True
    assert operator.post(f"/compliance/{assignment_id}/disable", {"csrf": page.csrf()}).status == 303
    assert console.store.find_assignment("harden").enabled is False
