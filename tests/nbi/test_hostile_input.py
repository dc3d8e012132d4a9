"""Hostile input on the management API and /soap over real HTTP (issue 13.4): every body
is refused with a client error and a precise reason before it is parsed, nothing is
logged as a crash, and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver, globalLogPublisher

from tests.nbi.support import start_server
from tests.support import run_in_reactor

pytestmark = pytest.mark.e2e
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def send(url: str, data: bytes | None, *, token: str | None, content_type: str | None = "application/json",
         method: str = "POST", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def envelope(body: bytes) -> bytes:
    return (b'<?xml version="1.0"?><s:Envelope xmlns:s="' + SOAP_ENV.encode() + b'" '
            b'xmlns:n="urn:acs-security:nbi:1"><s:Body>' + body + b"</s:Body></s:Envelope>")


LINT = "/api/v1/policies/lint"
JOBS = "/api/v1/jobs"
GOOD_LINT = json.dumps({"policy": '[settings]\nFirewall = "Enabled"\n'}).encode()

REST_CASES: list[tuple[str, str, bytes, str, int, str, str]] = [
    # name, path, body, content type, status, title, words in the detail
    ("100000 levels deep", LINT, b"[" * 100_000 + b"]" * 100_000, "application/json", 400,
     "too deeply nested", "100000 levels deep; at most 32"),
    ("deep object", JOBS, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "application/json", 400,
     "too deeply nested", "at most 32"),
    ("5000-digit integer", LINT, b'{"policy": 1' + b"0" * 5000 + b"}", "application/json", 400,
     "number out of range", "5001 digits"),
    ("infinite float", JOBS, b'{"policy": "x", "select": "all", "max_fault_rate": 1e999}', "application/json",
     400, "number out of range", "1e999"),
    ("NaN", JOBS, b'{"policy": "x", "select": "all", "max_fault_rate": NaN}', "application/json", 400,
     "malformed JSON", "NaN"),
    ("lone surrogate", LINT, b'{"policy": "[settings]\\n\\"\\ud800\\" = 1\\n"}', "application/json", 400,
     "malformed JSON", "lone surrogate"),
    ("duplicate keys", LINT, b'{"policy": "[settings]\\nFirewall = \\"Enabled\\"\\n", "policy": "x"}',
     "application/json", 400, "duplicate key", "'policy' appears twice"),
    ("invalid UTF-8", LINT, b'{"policy": "\xff\xfe"}', "application/json", 400, "malformed JSON", "not UTF-8"),
    ("text/plain", LINT, GOOD_LINT, "text/plain", 415, "unsupported media type", "application/json"),
    ("form post", JOBS, b"policy=x", "application/x-www-form-urlencoded", 415, "unsupported media type",
     "application/json"),
    ("UTF-16 charset", LINT, GOOD_LINT, "application/json; charset=utf-16", 415, "unsupported media type",
     "UTF-8"),
]

SOAP_CASES: list[tuple[str, bytes, str, dict[str, str], int, str, str]] = [
    # name, body, content type, headers, status, faultcode, words in the faultstring
    ("DOCTYPE with entities", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     + envelope(b"<n:LintPolicy><n:policy>&b;</n:policy></n:LintPolicy>")[21:], "text/xml", {}, 400,
     "Client.BadRequest", "DOCTYPE or entity declaration is not allowed in a SOAP request"),
    ("external entity", b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>', "text/xml", {},
     400, "Client.BadRequest", "DOCTYPE"),
    ("UTF-7 DOCTYPE", b'<?xml version="1.0" encoding="UTF-7"?>+ADw-+ACE-DOCTYPE a+AD4-+ADw-a/+AD4-', "text/xml",
     {}, 400, "Client.BadRequest", "DOCTYPE is not allowed"),
    ("100000 levels deep", envelope(b"<n:LintPolicy>" + b"<a>" * 100_000 + b"</a>" * 100_000
                                    + b"</n:LintPolicy>"), "text/xml", {}, 400, "Client.BadRequest", "malformed XML"),
    ("40 levels deep", envelope(b"<n:LintPolicy>" + b"<a>" * 40 + b"</a>" * 40 + b"</n:LintPolicy>"),
     "text/xml", {}, 400, "Client.BadRequest", "nested deeper than 16 elements"),
    ("50000 attributes", envelope(b"<n:LintPolicy " + b" ".join(b'a%d="1"' % i for i in range(50_000))
                                  + b"><n:policy>x</n:policy></n:LintPolicy>"), "text/xml", {}, 400,
     "Client.BadRequest", "50000 attributes, the limit is 10000"),
    ("empty body", b"", "text/xml", {}, 400, "Client.BadRequest", "the body is empty"),
    ("not XML", b"hello", "text/xml", {}, 400, "Client.BadRequest", "malformed XML"),
    ("UTF-16", envelope(b"<n:LintPolicy><n:policy>x</n:policy></n:LintPolicy>").decode().encode("utf-16"),
     "text/xml", {}, 400, "Client.BadRequest", "NUL byte"),
    ("JSON content type", b"{}", "application/json", {}, 415, "Client.UnsupportedMediaType", "text/xml"),
    ("SOAP 1.2 content type", envelope(b"<n:ListJobs/>"), "application/soap+xml", {}, 415,
     "Client.UnsupportedMediaType", "SOAP 1.2"),
    ("corrupt gzip", b"\x1f\x8b garbage", "text/xml", {"Content-Encoding": "gzip"}, 400, "Client.BadRequest",
     "corrupt gzip"),
    ("brotli", b"x", "text/xml", {"Content-Encoding": "br"}, 415, "Client.UnsupportedMediaType", "not supported"),
    ("gzip bomb", gzip.compress(b" " * (4 * 1024 * 1024)), "text/xml", {"Content-Encoding": "gzip"}, 413,
     "Client.RequestTooLarge", "decompressed body exceeds the limit"),
]


def probe(base: str, admin: str, viewer: str) -> dict[str, Any]:
    out: dict[str, Any] = {"rest": {}, "soap": {}}
    for name, path, body, ctype, *_ in REST_CASES:
        out["rest"][name] = send(base + path, body, token=admin, content_type=ctype)
    for name, body, ctype, headers, *_ in SOAP_CASES:
        out["soap"][name] = send(base + "/soap", body, token=admin, content_type=ctype, headers=headers)
    # Operations the checks let through still answer precisely: a forbidden role, a job id
    # beyond the store's integers (was a Server fault with a traceback: OverflowError).
    out["forbidden"] = send(base + "/soap", envelope(b"<n:CancelJob><n:job_id>1</n:job_id></n:CancelJob>"),
                            token=viewer, content_type="text/xml; charset=utf-8")
    out["huge job id"] = send(base + "/soap", envelope(b"<n:GetJob><n:job_id>" + b"9" * 30
                                                       + b"</n:job_id></n:GetJob>"),
                              token=admin, content_type="text/xml")
    out["huge offset"] = send(base + "/soap", envelope(b"<n:ListJobs><n:offset>" + b"9" * 30
                                                       + b"</n:offset></n:ListJobs>"),
                              token=admin, content_type="text/xml")
    out["deep TOML"] = send(base + LINT, json.dumps({"policy": "a = " + "[" * 5000 + "]" * 5000}).encode(),
                            token=admin)
    # The server keeps serving: an ordinary lint on both faces.
    out["rest ok"] = send(base + LINT, GOOD_LINT, token=admin)
    out["soap ok"] = send(base + "/soap", envelope(b'<n:LintPolicy><n:policy>[settings]\nFirewall = "Enabled"\n'
                                                   b"</n:policy></n:LintPolicy>"),
                          token=admin, content_type="text/xml; charset=utf-8")
    return out


def fault(body: bytes) -> tuple[str, str]:
    root = etree.fromstring(body)
    f = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert f is not None, body[:300]
    return str(f.findtext("faultcode")).partition(":")[2], str(f.findtext("faultstring"))


def test_hostile_bodies_get_client_errors_and_no_crash(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events: list[dict[str, Any]] = []

    async def go(reactor: Any) -> dict[str, Any]:
        # Every refusal line of this test's many requests from one address is wanted here
        # (test_refusal_log.py tests the rate limit).
        server = start_server(reactor, tmp_path, refusal_log_burst=1000)
        globalLogPublisher.addObserver(cast(ILogObserver, events.append))
        try:
            admin = server.issue_token("admin", "admin")
            viewer = server.issue_token("viewer", "viewer")
            base = server.url("api").rstrip("/")
            return await deferToThreadPool(reactor, reactor.getThreadPool(), probe, base, admin, viewer)
        finally:
            globalLogPublisher.removeObserver(cast(ILogObserver, events.append))
            await server.stop()

    caplog.set_level(logging.WARNING)
    out = run_in_reactor(go, timeout=120)
    for name, _path, _body, _ctype, status, title, words in REST_CASES:
        code, headers, body = out["rest"][name]
        problem = json.loads(body)
        assert (code, problem["title"]) == (status, title), (name, problem)
        assert words in problem["detail"], (name, problem)
        assert headers["Content-Type"] == "application/problem+json"
    for name, _body, _ctype, _headers, status, faultcode, words in SOAP_CASES:
        code, headers, body = out["soap"][name]
        assert code == status, (name, body[:300])
        assert headers["Content-Type"].startswith("text/xml")
        got_code, text = fault(body)
        assert got_code == faultcode and words in text, (name, got_code, text)
    # Faults answered by the operations: SOAP 1.1 / WS-I R1126, HTTP 500 with a Client fault.
    code, _, body = out["forbidden"]
    assert code == 500 and fault(body) == ("Client.Forbidden", "this needs the operator role; the token has "
                                                                "the viewer role")
    code, _, body = out["huge job id"]
    assert fault(body)[0] == "Client.NoSuchJob"
    code, _, body = out["huge offset"]
    assert fault(body)[0] == "Client.InvalidPage"
    code, _, body = out["deep TOML"]
    assert code == 200 and "nested too deeply" in json.loads(body)["findings"][0]["reason"]
    assert out["rest ok"][0] == 200 and json.loads(out["rest ok"][2])["findings"] is not None
    assert out["soap ok"][0] == 200 and b"LintPolicyResponse" in out["soap ok"][2]
    # No crash anywhere: no "API request failed", no critical line, no traceback from spyne.
    texts = [str(e.get("log_format")) for e in events]
    assert not any("request failed" in t for t in texts)
    assert not any(e.get("log_level") is not None and e["log_level"].name == "critical" for e in events)
    assert not any(e.get("log_failure") is not None for e in events)
    assert not [r for r in caplog.records if r.name.startswith("spyne") and r.exc_info], \
        [r.getMessage()[:200] for r in caplog.records if r.name.startswith("spyne")]
    # The forbidden SOAP call is one line, with the operation and the token's name.
    lines = [e for e in events if e.get("log_namespace") == "acs_security.soap" and "CancelJob" in str(e.get("reason"))]
    assert len(lines) == 1 and "token viewer" in lines[0]["reason"], lines
