"""Faults of the database under a running push, end to end (issue 13 item 9).

The real server (in process, on the test's reactor), simulated phones on loopback and the
real database, made to fail by the database itself:

- PostgreSQL: the server's connections are terminated several times mid-push
  (``pg_terminate_backend``, found by the node's application_name); and the database
  refuses the server's role for 10 s mid-push (``ALTER ROLE .. NOLOGIN`` and its backends
  terminated). The shared PostgreSQL server is never stopped: the test runs the ACS as a
  role and schema of its own, created and dropped by the fixture.
- SQLite: a full disk, made by a ``PRAGMA max_page_count`` at the database's current size
  on the server's connections, then lifted.

Each time: the phones are answered 503 + Retry-After during the fault (never a 500 or a
CWMP fault), the server reconnects by itself, the outage is logged once when it begins and
once when it ends, and the job completes with every phone's SetParameterValues carrying
the job's ParameterKey received exactly once (counted on the phones, sim/phone.py). The
figures (connections terminated, time from the database's return to the first successful
session and to the job's completion) are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver, globalLogPublisher

from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from acs_security.store.engine import application_name
from tests.e2e.test_push import CR_PASS, CR_USER, HARDENING, fleet_for
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg_role(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(store URL, role): a role of this test that owns a schema of its own, so that the
    test can make PostgreSQL refuse and cut the ACS's connections without touching anyone
    else's. Dropped afterwards."""
    role = f"acs_dbf_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')
    url = sa.engine.make_url(postgres_url).set(username=role, password=None).update_query_dict(
        {"options": f"-csearch_path={role}"})
    try:
        yield url.render_as_string(hide_password=False), role
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{role}" LOGIN')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP SCHEMA "{role}" CASCADE')
            admin.execute(f'DROP ROLE "{role}"')


class Watch:
    """What the server said: its log events and its session entries, with times."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.events: list[dict[str, Any]] = []
        self.sessions: list[tuple[float, dict[str, Any]]] = []

    def __enter__(self) -> Watch:
        globalLogPublisher.addObserver(cast(ILogObserver, self.events.append))
        return self

    def __exit__(self, *exc: Any) -> None:
        globalLogPublisher.removeObserver(cast(ILogObserver, self.events.append))

    def session(self, entry: dict[str, Any]) -> None:
        self.sessions.append((self.reactor.seconds(), entry))

    def first_done_after(self, t: float) -> float | None:
        return next((at for at, e in self.sessions if at >= t and e.get("outcome") == "done"), None)

    def lines(self, start: str) -> list[dict[str, Any]]:
        return [e for e in self.events if str(e.get("log_format", "")).startswith(start)]

    def tracebacks(self) -> list[str]:
        return [str(e.get("log_format")) for e in self.events if "log_failure" in e]


def make_server(reactor: Any, tmp_path: Path, db: str, watch: Watch, **overrides: Any) -> AcsServer:
    (tmp_path / "cr.pw").write_text(CR_PASS + "\n")
    settings: dict[str, Any] = {
        "db": db, "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0", "cpe_auth": False,
        "cr_username": CR_USER, "cr_password_file": str(tmp_path / "cr.pw"), "cr_session_wait": 15,
        # Phones come back one second after a 503 (TR-069 3.7.1.5 Retry-After).
        "retry_after": 1, "session_timeout": 10}
    settings.update(overrides)
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor,
                       session_observer=watch.session)
    server.start()
    return server


async def booted_fleet(reactor: Any, server: AcsServer, n: int, **kwargs: Any) -> SimulatedFleet:
    fleet = fleet_for(reactor, server, n, boot_ramp_s=n / 150, **kwargs)
    await fleet.start()
    await wait_until(reactor, lambda: all(p.sessions_completed for p in fleet.phones), timeout=90,
                     what="boot informs")
    return fleet


async def settled(reactor: Any, server: AcsServer, watch: Watch) -> None:
    """Until the server logged the end of every outage (calls settle for 5 s first)."""
    await wait_until(reactor, lambda: server.store.health.outage is None
                     and len(watch.lines("store available again")) == server.store.health.outages,
                     timeout=30, what="the end of the outage in the log")


async def job_state(server: AcsServer, job_id: int) -> str:
    assert server.deferred_store is not None
    return (await server.deferred_store.call("get_job", job_id)).state


async def wait_job(reactor: Any, server: AcsServer, job_id: int, timeout: float) -> float:
    """When the job completed (reactor time)."""
    deadline = reactor.seconds() + timeout
    while await job_state(server, job_id) != "completed":
        if reactor.seconds() > deadline:
            raise AssertionError(f"job {job_id} did not complete in {timeout}s")
        await sleep(reactor, 0.25)
    return reactor.seconds()


def applied(fleet: SimulatedFleet, key: str) -> int:
    return sum(p.spv_by_key[key] for p in fleet.phones)


#: Session failures that are the ACS's answer (sim/cpe_session.py): an HTTP status other than
#: 200/204/503 (a 500 above all), a CWMP fault or anything else the phone cannot use. Only
#: "ACS busy" (503 + Retry-After) may come of a database fault; a phone's own network
#: trouble on a loaded machine is not the ACS's answer and is not counted here.
_ACS_ANSWERS = ("ACS answered", "the ACS ", "unusable", "unexpected", "empty answer", "401")


def answered_badly(fleet: SimulatedFleet) -> dict[str, int]:
    """How the ACS answered sessions otherwise than 200/204 or 503 + Retry-After."""
    return {reason: n for reason, n in fleet.stats.failures.items()
            if reason != "ACS busy" and (reason.startswith(_ACS_ANSWERS) or "where InformResponse" in reason)}


def metric(server: AcsServer, line_start: str) -> float:
    for line in server.metrics.render().decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def admin_sql(url: str, sql: str, *args: Any) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, args or None)
        return cur.fetchall() if cur.description else []


def report(title: str, **figures: Any) -> None:
    print(f"\n[dbfaults] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# -- PostgreSQL ------------------------------------------------------------------------------


def test_connections_terminated_mid_push_are_replaced_and_every_phone_is_applied_once(
        tmp_path, postgres_url, pg_role):
    n, node = 400, f"dbf-term-{os.getpid()}"
    db, role = pg_role
    app = application_name(node)

    async def go(reactor):
        def kill() -> int:
            rows = admin_sql(postgres_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                           "WHERE application_name = %s AND usename = %s", app, role)
            return sum(1 for (ok,) in rows if ok)

        with Watch(reactor) as watch:
            server = make_server(reactor, tmp_path, db, watch, node_id=node)
            fleet = None
            try:
                await server.start_engine()
                fleet = await booted_fleet(reactor, server, n, seed=31)
                job = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all",
                                                       "max_in_progress": 20})
                key = job["parameter_key"]
                await wait_until(reactor, lambda: applied(fleet, key) >= n // 10, timeout=60,
                                 what="a tenth of the fleet applied")
                terminated, kills = 0, []
                while len(kills) < 6 and applied(fleet, key) < n:
                    terminated += await deferToThreadPool(reactor, reactor.getThreadPool(), kill)
                    kills.append(reactor.seconds())
                    await sleep(reactor, 1.0)
                assert len(kills) >= 4, f"the push ended after {len(kills)} rounds of faults"
                last = kills[-1]
                done = await wait_job(reactor, server, job["id"], timeout=180)
                # From each cut to the next session that completed (none after the last one
                # when the job had nothing left to do).
                gaps = [first - at for at in kills if (first := watch.first_done_after(at)) is not None]
                summary = await server.service.job_summary(job["id"])
                await settled(reactor, server, watch)
                return (summary, terminated, len(kills), [p.spv_by_key[key] for p in fleet.phones],
                        answered_badly(fleet), fleet.stats.failures["ACS busy"], gaps, done - last,
                        watch, server.store.health.outages,
                        metric(server, 'acs_cwmp_http_503_total{reason="store_unavailable"}'))
            finally:
                if fleet is not None:
                    await fleet.stop()
                await server.stop()

    (summary, terminated, rounds, received, bad, busy, gaps, to_done, watch, outages,
     store_503) = run_in_reactor(go, timeout=400)
    report("connections terminated mid-push", phones=n, rounds=rounds, terminated=terminated,
           outages=outages, sessions_503=busy, store_503=store_503,
           next_session_max_s=round(max(gaps), 2), job_done_after_last_s=round(to_done, 1))
    assert terminated >= rounds  # every round cut at least one of the server's connections
    assert summary["state"] == "completed", summary
    assert summary["applied"] + summary["applied_pending_reboot"] == n, summary["counts"]
    assert received == [1] * n  # every phone got the job's SetParameterValues exactly once
    assert bad == {}, bad  # no 500, no CWMP fault, no other failure: only 503s
    assert watch.tracebacks() == []
    # The faults were felt, and each outage was logged once when it began and once at its end.
    assert outages >= 1
    started, ended = watch.lines("store unavailable"), watch.lines("store available again")
    assert len(started) == len(ended) == outages
    # Sessions went on after every cut but perhaps the last (the server reconnected by itself).
    assert len(gaps) >= rounds - 1 and max(gaps) < 10, gaps


def test_database_refusing_connections_for_10s_mid_push(tmp_path, postgres_url, pg_role):
    n, node = 300, f"dbf-down-{os.getpid()}"
    db, role = pg_role

    async def go(reactor):
        def refuse() -> int:
            admin_sql(postgres_url, f'ALTER ROLE "{role}" NOLOGIN')
            rows = admin_sql(postgres_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                           "WHERE usename = %s", role)
            return sum(1 for (ok,) in rows if ok)

        def allow() -> None:
            admin_sql(postgres_url, f'ALTER ROLE "{role}" LOGIN')

        def thread(fn: Any) -> Any:
            return deferToThreadPool(reactor, reactor.getThreadPool(), fn)

        with Watch(reactor) as watch:
            server = make_server(reactor, tmp_path, db, watch, node_id=node)
            fleet = None
            try:
                await server.start_engine()
                fleet = await booted_fleet(reactor, server, n, seed=32)
                job = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all",
                                                       "max_in_progress": 40})
                key = job["parameter_key"]
                await wait_until(reactor, lambda: applied(fleet, key) >= n // 5, timeout=60,
                                 what="a fifth of the fleet applied")
                assert applied(fleet, key) < n, "the push ended before the fault"
                busy_before = fleet.stats.failures["ACS busy"]
                terminated = await thread(refuse)
                down_at = reactor.seconds()
                await wait_until(reactor, lambda: server.store.health.outage is not None, timeout=10,
                                 what="the server to notice the outage")
                await sleep(reactor, 10 - (reactor.seconds() - down_at))
                during = {"unavailable": metric(server, 'acs_store_unavailable{kind="unreachable"}'),
                          "busy": fleet.stats.failures["ACS busy"] - busy_before}
                await thread(allow)
                back = reactor.seconds()
                done = await wait_job(reactor, server, job["id"], timeout=180)
                first = watch.first_done_after(back)
                summary = await server.service.job_summary(job["id"])
                await settled(reactor, server, watch)
                return (summary, terminated, during, [p.spv_by_key[key] for p in fleet.phones],
                        answered_badly(fleet), first - back if first else None, done - back, watch,
                        metric(server, 'acs_cwmp_http_503_total{reason="store_unavailable"}'),
                        metric(server, 'acs_store_unavailable{kind="unreachable"}'))
            finally:
                if fleet is not None:
                    await fleet.stop()
                await server.stop()

    (summary, terminated, during, received, bad, to_session, to_done, watch, store_503,
     unavailable_after) = run_in_reactor(go, timeout=400)
    report("database refusing connections for 10 s", phones=n, terminated=terminated,
           sessions_503_during=during["busy"], store_503_total=store_503,
           first_session_s=None if to_session is None else round(to_session, 2),
           job_done_s=round(to_done, 1))
    assert terminated >= 1
    assert during["unavailable"] == 1.0 and during["busy"] > 0  # phones were answered 503 meanwhile
    assert store_503 > 0 and unavailable_after == 0.0
    assert summary["state"] == "completed", summary
    assert summary["applied"] + summary["applied_pending_reboot"] == n, summary["counts"]
    assert received == [1] * n
    assert bad == {}, bad
    assert watch.tracebacks() == []
    started, ended = watch.lines("store unavailable"), watch.lines("store available again")
    assert len(started) == 1 and len(ended) == 1, (started, ended)
    report("... the outage as logged", duration_s=round(ended[0]["duration"], 2),
           failed_store_calls=ended[0]["failures"])
    assert ended[0]["duration"] >= 9.0
    assert to_session is not None and to_session < 15


# -- SQLite ----------------------------------------------------------------------------------


def test_sqlite_full_disk_is_answered_503_and_the_server_recovers_when_space_returns(tmp_path):
    n = 40

    async def go(reactor):
        with Watch(reactor) as watch:
            server = make_server(reactor, tmp_path, f"sqlite:///{tmp_path}/acs.db", watch)
            engine = server.store.engine
            full = {"on": False}

            def limit(dbapi_connection: Any, _record: Any) -> None:
                if full["on"]:
                    # No page beyond the database's current size: SQLITE_FULL, as a full disk.
                    cursor = dbapi_connection.cursor()
                    pages = cursor.execute("PRAGMA page_count").fetchone()[0]
                    cursor.execute(f"PRAGMA max_page_count = {pages}")
                    cursor.close()

            event.listen(engine, "connect", limit)
            fleets: list[SimulatedFleet] = []
            try:
                await server.start_engine()
                first = await booted_fleet(reactor, server, n, seed=33)
                fleets.append(first)
                job = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all"})
                key = job["parameter_key"]
                full["on"] = True
                engine.dispose()  # pooled connections are replaced by limited ones
                # New phones booting need new pages: their Informs cannot be stored.
                second = fleet_for(reactor, server, n, seed=34, serial_prefix="FULL", boot_ramp_s=0.5)
                fleets.append(second)
                await second.start()
                await wait_until(reactor, lambda: second.stats.failures["ACS busy"] >= n, timeout=60,
                                 what="503s while the database is full")
                during = {"full": metric(server, 'acs_store_unavailable{kind="full"}'),
                          "registered": server.store.count_devices()}
                full["on"] = False
                engine.dispose()
                back = reactor.seconds()
                await wait_until(reactor, lambda: all(p.sessions_completed for p in second.phones),
                                 timeout=60, what="the new phones' Informs once space returned")
                done = await wait_job(reactor, server, job["id"], timeout=120)
                summary = await server.service.job_summary(job["id"])
                await settled(reactor, server, watch)
                return (summary, during, server.store.count_devices(), [p.spv_by_key[key] for p in first.phones],
                        answered_badly(first), answered_badly(second), watch.first_done_after(back) - back,
                        done - back, watch, metric(server, 'acs_store_unavailable{kind="full"}'))
            finally:
                for fleet in fleets:
                    await fleet.stop()
                await server.stop()

    (summary, during, registered, received, bad_first, bad_second, to_session, to_done, watch,
     full_after) = run_in_reactor(go, timeout=300)
    report("SQLite database full", phones=2 * n, first_session_s=round(to_session, 2),
           job_done_s=round(to_done, 1))
    # The pages free at the limit hold a few new phones at most; the others were refused.
    assert during["full"] == 1.0 and during["registered"] < n + n // 4, during
    assert registered == 2 * n and full_after == 0.0
    assert summary["state"] == "completed", summary
    assert summary["applied"] + summary["applied_pending_reboot"] == n, summary["counts"]
    assert received == [1] * n
    assert bad_first == {} and bad_second == {}, (bad_first, bad_second)
    assert watch.tracebacks() == []
    started, ended = watch.lines("store unavailable"), watch.lines("store available again")
    assert len(started) == 1 and len(ended) == 1, (started, ended)
    assert started[0]["kind"] == "full"
