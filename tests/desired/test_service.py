"""The desired-state service layer without sockets: precise refusals that change nothing,
lookups, audits' preconditions (in-memory store, inline thread pool, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred

from acs_security.desired.service import DesiredService
from acs_security.service import FleetService, ServiceError
from tests.server.harness import make_harness

PING = '[settings]\nFirewall_Config = "NO_ICMP_PING"\n'


@pytest.fixture
def svc():
    h = make_harness()
    fleet = FleetService(h.dstore, clock=h.clock)
    yield DesiredService(h.dstore, fleet=fleet, clock=h.clock), h
    h.close()


def run(coro: Any) -> Any:
    out: list[Any] = []
    ensureDeferred(coro).addBoth(out.append)
    assert out, "did not finish"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def refused(coro: Any) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        run(coro)
    return info.value


@pytest.mark.parametrize(("request_", "status", "words"), [
    ({"policy": PING, "select": "all", "colour": "red"}, 400, "unknown field"),
    ({"select": "all"}, 400, "policy"),
    ({"policy": "x" * 300_000, "select": "all"}, 413, "exceeds"),
    ({"policy": PING, "select": "model="}, 400, "no value"),
    ({"policy": PING, "select": "all", "name": "has space"}, 400, "name"),
    ({"policy": PING, "select": "all", "priority": "high"}, 400, "priority"),
    ({"policy": PING, "select": "all", "priority": 10**9}, 400, "priority"),
    ({"policy": PING, "select": "all", "mode": "sometimes"}, 400, "mode"),
    ({"policy": PING, "select": "all", "force": "tr069-disabled"}, 400, "force"),
])
def test_bad_requests_are_refused_precisely_and_change_nothing(svc, request_, status, words):
    service, h = svc
    err = refused(service.assign(request_))
    assert err.status == status and words in f"{err.title} {err.detail}"
    assert h.store.list_assignments() == []


def test_an_invalid_policy_reports_every_problem_at_once(svc):
    service, h = svc
    err = refused(service.assign({"policy": '[settings]\nNo_Such_Setting = "1"\n[extensions]\napply_to = 7\n',
                                  "select": "all"}))
    assert err.status == 400 and "No_Such_Setting" in err.detail and "apply_to" in err.detail
    err = refused(service.assign({"policy": '[settings]\nFirewall = "Maybe"\n', "select": "all"}))
    assert err.status == 400 and "Firewall" in err.detail and "Maybe" in err.detail
    assert h.store.list_assignments() == []


def test_lookups_by_name_or_id_and_unknown_ones(svc):
    service, h = svc
    made = run(service.assign({"policy": PING, "select": "all", "name": "ping"}))
    assert made["created"] and made["selected"] == 0
    assert run(service.get_assignment(str(made["id"])))["name"] == "ping"
    assert run(service.get_assignment("ping"))["id"] == made["id"]
    assert refused(service.get_assignment("pong")).status == 404
    assert refused(service.compliance("pong")).status == 404
    assert refused(service.device_drift("00000C-nobody")).status == 404
    assert refused(service.device_desired("00000C-nobody")).status == 404
    assert refused(service.assignment_devices("ping", state="happy")).status == 400


def test_audits_need_a_job_engine_and_an_audit_job(svc):
    service, h = svc
    run(service.assign({"policy": PING, "select": "all", "name": "ping"}))
    assert refused(service.submit_audit({"select": "all"})).status == 503
    assert refused(service.submit_audit({"colour": "red"})).status == 400
    assert refused(service.audit_report(99)).status == 404
    assert refused(service.audit_report(1, fmt="xml")).status == 400
