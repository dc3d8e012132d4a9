"""API refusals over real HTTP (issue 13.6): 401/403 counted in acs_nbi_refusals_total by
face and reason, their log lines limited per source address with a summary per window."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver, globalLogPublisher

from tests.nbi.support import http, start_server
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e
ENVELOPE = (b'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:n="urn:acs-security:nbi:1"><s:Body><n:CancelJob><n:job_id>1</n:job_id></n:CancelJob>'
            b"</s:Body></s:Envelope>")


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def flood(base: str, viewer: str) -> list[int]:
    codes = []
    for i in range(20):  # wrong tokens
        codes.append(http(base + "/api/v1/jobs", token=f"acs_wrong{i}")[0])
    for _ in range(5):  # no credentials at all
        codes.append(http(base + "/api/v1/devices")[0])
    for _ in range(4):  # a viewer pushing
        codes.append(http(base + "/api/v1/jobs", token=viewer, method="POST", body={"policy": "x"})[0])
    basic = "Basic " + base64.b64encode(b"viewer:acs_wrong").decode()
    for _ in range(3):  # SOAP: a wrong token, then a viewer cancelling
        codes.append(http(base + "/soap", method="POST", body=None, headers={"Authorization": basic})[0])
    for _ in range(2):
        codes.append(_soap(base, viewer))
    return codes


def _soap(base: str, viewer: str) -> int:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(base + "/soap", data=ENVELOPE, method="POST",
                                 headers={"Content-Type": "text/xml", "Authorization": f"Bearer {viewer}"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_refusals_are_counted_and_their_lines_limited(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []

    async def go(reactor: Any) -> tuple[list[int], str]:
        # A window longer than the test: the summary is written when the server stops, so
        # a slow machine cannot split the flood over two windows.
        server = start_server(reactor, tmp_path, refusal_log_burst=3, refusal_log_window=600)
        globalLogPublisher.addObserver(cast(ILogObserver, events.append))
        try:
            viewer = server.issue_token("viewer", "viewer")
            base = server.url("api").rstrip("/")
            pool = reactor.getThreadPool()
            codes = await deferToThreadPool(reactor, pool, flood, base, viewer)
            _, _, body = await deferToThreadPool(reactor, pool, http, base + "/metrics", token=viewer)
            # SOAP refusals reach the reactor thread by callFromThread: wait for their count.
            await wait_until(reactor, lambda: server.metrics.api_refusals.labels("soap", "forbidden")._value.get() == 2,
                             timeout=30, what="the SOAP refusals")
            assert not any(e.get("log_namespace") == "acs_security.refusals" for e in events)
            return codes, body.decode()
        finally:
            await server.stop()
            globalLogPublisher.removeObserver(cast(ILogObserver, events.append))

    codes, text = run_in_reactor(go, timeout=90)
    assert codes == [401] * 25 + [403] * 4 + [401] * 3 + [500] * 2  # SOAP 1.1: a Client fault is HTTP 500
    assert metric(text, "acs_nbi_refusals_total", face="rest", reason="unauthorized") == 25
    assert metric(text, "acs_nbi_refusals_total", face="rest", reason="forbidden") == 4
    assert metric(text, "acs_nbi_refusals_total", face="soap", reason="unauthorized") == 3
    lines = [e for e in events if e.get("log_namespace") in ("acs_security.api", "acs_security.soap")
             and "refused" in str(e.get("log_format"))]
    assert len(lines) == 3, [e.get("log_format") for e in lines]
    assert "the token is not valid" in lines[0]["reason"] and lines[0]["remote"] == "127.0.0.1"
    assert lines[0]["log_level"].name == "warn"
    summaries = [e for e in events if e.get("log_namespace") == "acs_security.refusals"]
    assert len(summaries) == 1
    s = summaries[0]
    assert s["source"] == "127.0.0.1" and s["refusals"] == 34 - 3
    assert s["reasons"] == {
        "unauthorized: the token is not valid": 20 - 3 + 3,  # REST after the 3 lines, and SOAP's basic
        "unauthorized: this needs an API token: send Authorization: Bearer <token>": 5,
        "forbidden: this needs the operator role; the token has the viewer role": 4 + 2}
    assert sum(s["reasons"].values()) == s["refusals"] and s["summary"].startswith("31 more refusals from 127.0.0.1")
