"""Schemathesis: requests generated from the OpenAPI document against the running server.

Bounded (a few examples per operation, no deadline per example), so the test takes seconds.
Asserts no 5xx and that every answer (status, content type, body) matches the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.threads import deferToThreadPool

from tests.nbi.support import start_server
from tests.support import run_in_reactor

schemathesis = pytest.importorskip("schemathesis")  # the test extra installs it
pytestmark = pytest.mark.e2e


def fuzz(base: str, token: str, doc: dict[str, Any]) -> list[str]:
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_dict(doc)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    tested: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=8, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=checks)

        run()
        tested.append(operation.label)
    return tested


def test_schemathesis_finds_no_5xx_and_no_schema_violation(tmp_path: Path) -> None:
    from acs_security.server.openapi import openapi_document

    async def go(reactor: Any) -> list[str]:
        server = start_server(reactor, tmp_path)
        await server.start_engine()
        try:
            token = server.issue_token("schemathesis-admin-5d1e", "admin")
            base = server.url("api").rstrip("/")
            return await deferToThreadPool(reactor, reactor.getThreadPool(), fuzz, base, token,
                                           openapi_document())
        finally:
            await server.stop()

    tested = run_in_reactor(go, timeout=120)
    assert "POST /api/v1/jobs" in tested and "POST /api/v1/assignments" in tested and len(tested) == 32
