"""The REST face against a running server: tokens and roles, a push, /metrics, problems."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet.threads import deferToThreadPool

from acs_security.server.api import ApiResource
from acs_security.server.api_desired import desired_routes
from acs_security.server.openapi import openapi_document
from acs_security.sim.fleet import SimulatedFleet
from tests.nbi.support import CR_PASS, CR_USER, RESOLVE, http, start_server
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
HARDENING = Path(__file__).resolve().parents[2] / "datamodel" / "examples" / "hardening.toml"


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_roles_tokens_push_and_metrics_over_loopback(tmp_path):
    async def go(reactor: Any) -> None:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        pool = reactor.getThreadPool()

        def call(*a: Any, **kw: Any) -> Any:
            return deferToThreadPool(reactor, pool, lambda: http(*a, **kw))

        fleet = SimulatedFleet(reactor, f"http://acs.example.net:{server.address('cwmp').port}/cwmp", phones=8,
                               resolve=RESOLVE, inform_interval=600, boot_ramp_s=0.3, seed=3,
                               cr_delay=(0.02, 0.05), retry_scale=0.02, cr_password_mode="shared",
                               cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
        try:
            base = server.url("api").rstrip("/")
            admin = server.issue_token("admin", "admin")
            viewer = server.issue_token("viewer", "viewer")
            # Health checks need nothing; everything else needs a token.
            assert (await call(base + "/healthz"))[0] == 200
            assert (await call(base + "/readyz"))[0] == 200
            for path in ("/api/v1/devices", "/metrics", "/api/v1/openapi.json", "/soap?wsdl"):
                code, headers, body = await call(base + path)
                assert code == 401, path
            code, headers, body = await call(base + "/api/v1/jobs")
            assert headers["WWW-Authenticate"].startswith("Bearer") and json.loads(body)["status"] == 401
            assert headers["Content-Type"] == "application/problem+json"
            # The admin makes an operator token through the API; the viewer may not.
            code, _, body = await call(base + "/api/v1/tokens", token=viewer, method="POST",
                                       body={"name": "ops", "role": "operator"})
            assert code == 403 and json.loads(body)["title"] == "forbidden"
            code, _, body = await call(base + "/api/v1/tokens", token=admin, method="POST",
                                       body={"name": "ops", "role": "operator"})
            assert code == 201
            operator = json.loads(body)["token"]
            code, _, body = await call(base + "/api/v1/tokens", token=admin)
            assert code == 200 and operator not in body.decode()
            assert {t["name"] for t in json.loads(body)["tokens"]} == {"admin", "viewer", "ops"}
            assert (await call(base + "/api/v1/tokens", token=admin, method="POST",
                               body={"name": "ops", "role": "viewer"}))[0] == 409

            await fleet.start()
            await wait_until(reactor, lambda: server.store.count_devices() >= 8, timeout=30, what="boot")
            code, _, body = await call(base + "/metrics", token=viewer)
            before = body.decode()
            assert code == 200 and metric(before, "acs_cwmp_informs_total", event="1 BOOT") >= 8
            request = {"policy": HARDENING.read_text(), "select": "all"}
            code, _, body = await call(base + "/api/v1/jobs", token=viewer, method="POST", body=request)
            assert code == 403
            code, _, body = await call(base + "/api/v1/jobs", token=operator, method="POST", body=request)
            assert code == 201, body
            job = json.loads(body)
            for _ in range(200):
                code, _, body = await call(base + f"/api/v1/jobs/{job['id']}", token=viewer)
                if json.loads(body)["state"] == "completed":
                    break
                await sleep(reactor, 0.1)
            summary = json.loads(body)
            assert summary["state"] == "completed" and summary["applied"] + summary["applied_pending_reboot"] == 8
            code, _, body = await call(base + f"/api/v1/jobs/{job['id']}/devices?limit=3&state=applied",
                                       token=viewer)
            page = json.loads(body)
            assert code == 200 and page["limit"] == 3 and len(page["devices"]) <= 3
            code, _, body = await call(base + "/metrics", token=viewer)
            after = body.decode()
            assert metric(after, "acs_cwmp_rpcs_total", rpc="SetParameterValues") >= 8
            assert metric(after, "acs_connection_requests_total", method="http") >= 8
            assert metric(after, "acs_tasks", state="applied") + metric(after, "acs_tasks",
                                                                         state="applied_pending_reboot") == 8
            assert metric(after, "acs_cwmp_session_duration_seconds_count") > metric(
                before, "acs_cwmp_session_duration_seconds_count")
            assert metric(after, "acs_store_call_seconds_count") > 0
            # Read-only operations of the issue.
            device = quote(server.store.list_devices(limit=1)[0].device_id, safe="")
            code, headers, body = await call(base + f"/api/v1/devices/{device}/cfgxml", token=viewer)
            assert code == 200, body and body.startswith(b"<?xml") and b"<TLS_Min_Version" in body
            code, _, body = await call(base + "/api/v1/policies/lint", token=viewer, method="POST",
                                       body={"policy": '[settings]\nFirewall = "Disabled"\n'})
            assert code == 200 and json.loads(body)["exit"] == 1
            code, _, body = await call(base + "/api/v1/catalogue?q=tls&limit=5", token=viewer)
            assert code == 200 and all("tls" in (s["name"] + s["path"]).lower() for s in json.loads(body)["settings"])
            code, _, body = await call(base + "/api/v1/policies/cfgxml", token=viewer, method="POST",
                                       body={"policy": "nonsense = ["})
            assert code == 400 and json.loads(body)["title"] == "invalid policy"
            # Revocation through the API takes effect at once.
            assert (await call(base + "/api/v1/tokens/ops", token=admin, method="DELETE"))[0] == 200
            assert (await call(base + "/api/v1/jobs", token=operator))[0] == 401
            assert (await call(base + "/api/v1/tokens/ops", token=admin, method="DELETE"))[0] == 404
        finally:
            await fleet.stop()
            await server.stop()

    run_in_reactor(go, timeout=90)


def test_every_route_is_in_the_openapi_document():
    doc = openapi_document()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    resource = ApiResource.__new__(ApiResource)
    ApiResource.__init__(resource, None, authenticator=None)  # type: ignore[arg-type]
    resource.add_routes(desired_routes(resource))  # what the server adds (desired state)
    for route in resource.routes:
        path = route.pattern.pattern[1:-1]
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path).replace("\\.", ".")
        assert (route.method, path) in documented, (route.method, path)
        op = doc["paths"][path][route.method.lower()]
        assert (op.get("security") == []) == (route.role is None), path
    assert len(documented) == len(resource.routes)
