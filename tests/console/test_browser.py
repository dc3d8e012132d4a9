"""The web console in a real browser: Debian's headless Chromium driven by Selenium against the
real server and 200 simulated phones on loopback.

One server and one fleet for the module (booting 200 phones is the slow part); the tests run
in order, as an operator's day would: sign in, push and watch it live, open a faulted phone,
lint a lockout policy and see it refused, then a viewer who cannot press operator buttons
and whose forged requests the server refuses, and a revocation that signs the browser out.
Screenshots of each page go to ``ACS_CONSOLE_SHOTS`` (docs/console/ for the docs) or the
test's temporary folder. Waits are for conditions with generous limits, never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acs_security.sim.faults import FaultKind
from tests.console.stack import Stack, chromium

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
PHONES = 200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Phones call back 0.3-1.2 s after a connection request and the push goes in waves, so
    # the job runs for several seconds at least: long enough to be watched live.
    s = Stack(tmp_path_factory.mktemp("console"), phones=PHONES, faults="reject=0.05", cr_delay=(0.3, 1.2))
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("ACS_CONSOLE_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = chromium(tmp_path_factory.mktemp("downloads"))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(driver.acs_profile, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - a page in between two loads: try again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def el(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def els(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def shoot(driver: Any, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"{name}.png"))


def sign_in(driver: Any, stack: Stack, token: str) -> None:
    driver.get(stack.url + "/jobs")
    wait_for(lambda: el(driver, "#token"), what="the sign-in form")
    el(driver, "#token").send_keys(token)
    el(driver, "#signin").click()
    wait_for(lambda: driver.current_url.endswith("/jobs") and els(driver, "#who"), what="the jobs page")


def no_console_errors(driver: Any) -> None:
    """The browser reported no error: no CSP violation, no failed script (answers with an
    error status, which the tests ask for, are the network's entries)."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert errors == []


def test_sign_in_and_watch_a_push_to_200_phones_live(stack: Stack, browser: Any, shots: Path) -> None:
    browser.get(stack.url + "/")
    wait_for(lambda: el(browser, "#token"), what="the sign-in page")
    shoot(browser, shots, "signin")
    sign_in(browser, stack, stack.token("alice", "operator"))
    assert el(browser, "#who").text == "alice" and el(browser, "#role").text == "operator"
    cookie = browser.get_cookie("acs_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # no script can read the session

    browser.get(stack.url + "/fleet")
    assert el(browser, "#total").text == f"{PHONES} devices"
    shoot(browser, shots, "fleet")

    browser.get(stack.url + "/policies?example=hardening")
    wait_for(lambda: "would go ahead" in el(browser, "#lint-verdict").text, what="the example's lint")
    for name, value in (("#select", "all"), ("#canary", "10"), ("#wave", "20"), ("#max_fault_rate", "1")):
        field = el(browser, name)
        field.clear()
        field.send_keys(value)
    el(browser, "#push").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: "/jobs/" in browser.current_url and els(browser, "#live"), what="the job page")
    job_id = int(browser.current_url.rsplit("/", 1)[1])
    # A mark on this page load: it survives live updates, a reload would wipe it.
    browser.execute_script("window.acsMark = 'same page';")
    seen: list[tuple[str | None, int]] = []

    def progressed() -> bool:
        mark = browser.execute_script("return window.acsMark || null;")
        finished = int(el(browser, "#finished").text)
        updated = el(browser, "#live").get_attribute("data-updated")
        seen.append((mark, finished))
        if mark and updated and 0 < finished < PHONES and not els(browser, "#live-shot-taken"):
            shoot(browser, shots, "job-live")
            browser.execute_script("document.body.appendChild(document.createElement('i')).id = 'live-shot-taken';")
        return el(browser, "#job-state").text == "completed"

    wait_for(progressed, timeout=240, what="the job to complete")
    live = [f for mark, f in seen if mark == "same page" and 0 < f < PHONES]
    assert live, f"no progress seen without a reload: {seen[:5]} ... {seen[-5:]}"
    assert len({f for _, f in seen}) >= 2  # the numbers moved on the page
    assert stack.fleet is not None
    rejecting = {p.serial for p in stack.fleet.phones if p.faults & FaultKind.REJECT}
    counts = {s: int(el(browser, f"#count-{s}").text) for s in ("applied", "applied_pending_reboot", "faulted")}
    assert counts["faulted"] == len(rejecting) > 0
    assert counts["applied"] + counts["applied_pending_reboot"] + counts["faulted"] == PHONES
    assert el(browser, "#percent").text == "100.0%"
    assert len(els(browser, "#outcome-chart rect")) >= 2  # the outcomes over time, drawn
    assert el(browser, "#cancel").get_attribute("disabled") is not None  # a completed job cannot be cancelled
    shoot(browser, shots, "job")
    stack.job_id = job_id  # type: ignore[attr-defined]
    no_console_errors(browser)


def test_cancel_a_running_job(stack: Stack, browser: Any) -> None:
    browser.get(stack.url + "/policies")
    policy = '[policy]\nname = "no-ping"\n[settings]\nFirewall_Config = "NO_ICMP_PING,NO_ICMP_UNREACHABLE"\n'
    browser.execute_script("arguments[0].value = arguments[1];", el(browser, "#policy"), policy)
    # Phones of a model the compliance test below leaves alone.
    for name, value in (("#select", "product_class=CP-6821-3PCC"), ("#canary", "3"), ("#wave", "5"),
                        ("#max_fault_rate", "1")):
        el(browser, name).clear()
        el(browser, name).send_keys(value)
    el(browser, "#push").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: "/jobs/" in browser.current_url and els(browser, "#cancel"), what="the new job's page")
    assert el(browser, "#job-state").text == "running" and el(browser, "#cancel").is_enabled()
    el(browser, "#cancel").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: el(browser, "#job-state").text == "cancelled", timeout=60, what="the cancelled job")
    assert int(el(browser, "#count-cancelled").text) > 0  # the phones of the waves not yet reached
    assert el(browser, "#cancel").get_attribute("disabled") is not None


def test_open_a_faulted_phone(stack: Stack, browser: Any, shots: Path) -> None:
    job_id = stack.job_id  # type: ignore[attr-defined]
    browser.get(f"{stack.url}/jobs/{job_id}")
    el(browser, "#tasks-faulted").click()
    wait_for(lambda: "tasks=faulted" in browser.current_url, what="the faulted phones")
    rows = els(browser, "#tasks tbody tr.task-faulted")
    assert stack.fleet is not None
    rejecting = {p.serial for p in stack.fleet.phones if p.faults & FaultKind.REJECT}
    assert len(rows) == len(rejecting)
    link = el(browser, "#tasks tbody tr.task-faulted a.device")
    label = link.text
    serial = label.split(" ")[0]
    assert serial in rejecting and "CP-" in label  # named by serial number and model
    link.click()
    wait_for(lambda: els(browser, "#device-title"), what="the device page")
    assert el(browser, "#device-title").text == label and el(browser, "#serial").text == serial
    faults = el(browser, "#device-jobs").text
    assert "9007" in faults and "Invalid parameter value" in faults and "Device.X_CISCO_" in faults
    assert els(browser, "#settings tbody tr")  # the catalogued settings with their known values
    shoot(browser, shots, "device")

    # The report as the operator downloads it, both formats.
    report = json.loads(browser.execute_script(
        f"return await (await fetch('/jobs/{job_id}/report.json')).text();"))
    faulted = [d for d in report["devices"] if d["state"] == "faulted"]
    assert {d["serial_number"] for d in faulted} == rejecting
    csv_text = browser.execute_script(f"return await (await fetch('/jobs/{job_id}/report.csv')).text();")
    assert csv_text.startswith("serial_number,product_class") and len(csv_text.splitlines()) == PHONES + 1


def test_lint_a_lockout_policy_live_and_see_it_refused(stack: Stack, browser: Any, shots: Path) -> None:
    lockout = (REPO / "datamodel" / "examples" / "lockout.toml").read_text()
    hardening = (REPO / "datamodel" / "examples" / "hardening.toml").read_text()
    browser.get(stack.url + "/policies")

    def paste(text: str) -> None:
        # What a paste does: the text changes and an input event fires (the editor lints on it).
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('input'));", el(browser, "#policy"), text)

    paste(hardening)
    wait_for(lambda: "would go ahead" in el(browser, "#lint-verdict").text, what="the clean lint")
    paste(lockout)
    wait_for(lambda: "would be refused" in el(browser, "#lint-verdict").text, what="the live lint of the lockout")
    finding = el(browser, '#lint li[data-rule="restricted-domains-exclude-acs"]')
    assert "acs.example.net" in finding.text and "Fix:" in finding.text and "Why:" in finding.text
    shoot(browser, shots, "policy-lint")
    el(browser, "#policy").send_keys(" ")  # typed, not pasted: the lint still runs on each change
    assert stack.server is not None
    jobs_before = stack.server.store.count_jobs()
    el(browser, "#push").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: els(browser, "#refusal"), what="the refusal")
    refusal = el(browser, "#refusal")
    assert "refused by guardrails" in refusal.text and "Nothing was sent" in refusal.text
    assert refusal.get_attribute("data-status") == "400"
    assert el(browser, "#policy").get_attribute("value").strip() == lockout.strip()  # the text is kept
    assert stack.server.store.count_jobs() == jobs_before  # nothing was created, nothing sent
    shoot(browser, shots, "policy-refused")

    el(browser, "#policy").clear()
    paste(hardening)
    el(browser, "#select").clear()
    el(browser, "#select").send_keys("product_class=CP-8851-3PCC")
    el(browser, "#dry-run").click()
    wait_for(lambda: els(browser, "#plan"), what="the dry run")
    assert els(browser, "#plan-devices tbody tr") and "CP-8851-3PCC" in el(browser, "#plan-devices").text
    assert stack.server.store.count_jobs() == jobs_before
    no_console_errors(browser)


def test_assign_a_policy_and_see_compliance_by_model(stack: Stack, browser: Any, shots: Path) -> None:
    from twisted.internet.defer import Deferred

    browser.get(stack.url + "/policies?example=hardening")
    el(browser, "#select").clear()
    el(browser, "#select").send_keys("product_class=CP-8851-3PCC")
    el(browser, "#assignment").send_keys("hardening-8851")
    el(browser, "#assign").click()
    wait_for(lambda: "/compliance/" in browser.current_url and els(browser, "#by-model"), what="the assignment")
    assert stack.fleet is not None and stack.server is not None
    selected = [p for p in stack.fleet.phones if p.product_class == "CP-8851-3PCC"]
    assert f"{len(selected)} selected device(s)" in browser.page_source
    # The phones took the same values from the push: an audit reads them back and judges them.
    desired = stack.server.desired_service
    assert desired is not None
    stack.call(lambda: Deferred.fromCoroutine(desired.submit_audit({"select": "product_class=CP-8851-3PCC"})))
    rejecting = {p.serial for p in selected if p.faults & FaultKind.REJECT}

    def judged() -> bool:
        browser.refresh()
        return int(el(browser, "#by-model tbody td:nth-child(3)").text) == len(selected) and \
            "unknown" not in [e.text for e in els(browser, "#assignment-devices .state")]

    wait_for(judged, timeout=120, what="the audit's verdicts")
    states = [e.text for e in els(browser, "#assignment-devices .state")]
    assert states.count("compliant") == len(selected) - len(rejecting)
    shoot(browser, shots, "assignment")
    browser.get(stack.url + "/compliance")
    assert "hardening-8851" in el(browser, "#assignments").text
    shoot(browser, shots, "compliance")
    no_console_errors(browser)


def test_a_viewer_cannot_press_operator_buttons_and_forged_requests_are_refused(
        stack: Stack, browser: Any, shots: Path) -> None:
    job_id = stack.job_id  # type: ignore[attr-defined]
    browser.get(stack.url + "/fleet")
    el(browser, "#signout").click()
    wait_for(lambda: els(browser, "#why"), what="the signed-out page")
    assert browser.get_cookie("acs_console") is None
    sign_in(browser, stack, stack.token("victor", "viewer"))
    assert el(browser, "#role").text == "viewer"
    browser.get(f"{stack.url}/jobs/{job_id}")
    assert el(browser, "#cancel").get_attribute("disabled") is not None
    assert el(browser, "#cancel").get_attribute("title") == "needs the operator role"
    browser.get(stack.url + "/policies?example=hardening")
    for button in ("#push", "#dry-run"):
        assert not el(browser, button).is_enabled()
    assert el(browser, "#lint-button").is_enabled()  # linting is a viewer's right, as on the API
    shoot(browser, shots, "policies-viewer")
    assert stack.server is not None
    jobs_before = stack.server.store.count_jobs()
    forged = browser.execute_script("""
        const csrf = document.querySelector('input[name="csrf"]').value;
        const push = await fetch('/policies/push', {method: 'POST', body: new URLSearchParams(
            {csrf: csrf, policy: document.getElementById('policy').value, select: 'all'})});
        const cancel = await fetch('/jobs/1/resume', {method: 'POST', body: new URLSearchParams({csrf: csrf})});
        const nocsrf = await fetch('/policies/lint', {method: 'POST', body: new URLSearchParams({policy: 'x'})});
        return [push.status, await push.text(), cancel.status, nocsrf.status];
    """)
    assert forged[0] == 403 and "needs the operator role" in forged[1]
    assert forged[2] == 403 and forged[3] == 403
    assert stack.server.store.count_jobs() == jobs_before

    # The viewer's token is revoked (here through the API, as an admin would): the next page
    # the browser asks for is the sign-in page, on this node and every other.
    admin = stack.token("root", "admin")
    revoked = browser.execute_script(
        "const r = await fetch('/api/v1/tokens/victor', {method: 'DELETE', headers: {Authorization: "
        "'Bearer ' + arguments[0]}}); return r.status;", admin)
    assert revoked == 200
    browser.get(f"{stack.url}/jobs/{job_id}")
    wait_for(lambda: els(browser, "#why"), what="the sign-in page after the revocation")
    assert "revoked" in el(browser, "#why").text
    no_console_errors(browser)
