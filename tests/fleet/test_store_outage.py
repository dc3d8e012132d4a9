"""The job engine when the store fails: real CWMP bytes over in-memory HTTP, a fake clock,
the real store (SQLite in memory) behind a switch that makes its calls fail as an outage
does (StoreUnavailable). End to end with real database faults: tests/e2e/test_dbfaults.py."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred, succeed
from twisted.logger import globalLogPublisher

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.fleet.live import JobOptions
from acs_security.fleet.selector import parse_selector
from acs_security.fleet.tasks import TaskState
from acs_security.store.deferred import DeferredStore
from acs_security.store.errors import StoreUnavailable
from acs_security.store.records import make_device_id
from tests.fleet.test_engine import POLICY
from tests.server.harness import InlineThreadPool, inform, make_harness


class Switch:
    """The store, whose calls fail with StoreUnavailable while ``down`` (or, by name, while
    listed in ``failing``), as they do when the database is unreachable."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.failing: set[str] = set()
        self.failed: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down or name in self.failing:
                self.failed[name] += 1
                raise StoreUnavailable(f"cannot {name}: the database at test is unavailable: down")
            return attr(*args, **kwargs)

        return call


class Phones:
    """Scripted CPEs: each accepted connection request runs a session through the endpoint.
    They keep the ParameterKey of the last SetParameterValues they applied and send it in
    their Informs (TR-069 A.3.2.1); a 503 ends a session (TR-069 Table 7: the CONNECTION
    REQUEST event is then dropped, the phone does not call again by itself)."""

    def __init__(self, h: Any) -> None:
        self.h = h
        self.keys: dict[str, str] = {}
        self.spv: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.answers: Counter[int] = Counter()

    def request(self, url: str, username: str, password: str) -> Any:
        serial = url.rsplit("/", 1)[-1]
        self.requests[serial] += 1
        self.h.clock.callLater(0.1, lambda: ensureDeferred(self.session(serial, "6 CONNECTION REQUEST")))
        return succeed(ConnectionRequestResult(ResultKind.ACCEPTED, status=200))

    async def session(self, serial: str, event: str) -> None:
        client = type(self.h.client)(self.h.resource)
        params = (m.ParameterValue("Device.ManagementServer.ConnectionRequestURL", f"http://cpe/{serial}", "string"),
                  m.ParameterValue("Device.ManagementServer.ParameterKey", self.keys.get(serial, ""), "string"),
                  m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP-1", "string"))
        resp = await client.post("http://acs/", data=inform(serial, (event,), params=params))
        self.answers[resp.code] += 1
        if resp.code != 200:
            assert resp.code == 503 and resp.headers.getRawHeaders("Retry-After"), resp.code
            return
        cookies = {"acs_session": resp.cookies()["acs_session"]}
        resp = await client.post("http://acs/", data=b"", cookies=cookies)
        while resp.code == 200:
            env = parse_envelope(await resp.content())
            assert env is not None
            req = env.message
            assert isinstance(req, m.SetParameterValues)
            self.spv[serial] += req.parameter_key.count("-job-")
            self.keys[serial] = req.parameter_key  # applied at once (SetParameterValues is atomic)
            reply = m.SetParameterValuesResponse(0)
            resp = await client.post("http://acs/", data=build_envelope(reply, namespace=CWMP_1_0,
                                                                        cwmp_id=env.cwmp_id), cookies=cookies)
        self.answers[resp.code] += 1
        assert resp.code in (204, 503), resp.code


@pytest.fixture
def world():
    h = make_harness()
    switch = Switch(h.store)
    h.dstore = DeferredStore(switch, h.clock, InlineThreadPool(), call_from_thread=lambda f, *a: f(*a))
    h.resource._store = h.dstore
    phones = Phones(h)
    engine = FleetEngine(store=h.dstore, clock=h.clock, http_requester=phones,
                         cr_credentials=lambda d: h.dstore.call("get_connection_request_credential", d),
                         default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5, cr_session_wait=20),
                         random=lambda: 0.5, store_available=lambda: not switch.down)
    h.resource._provisioner = engine
    for i in range(6):
        ensureDeferred(phones.session(f"P{i:03d}", "1 BOOT"))
    h.client.flush()
    assert h.store.count_devices() == 6
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    yield h, switch, phones, engine, events
    globalLogPublisher.removeObserver(events.append)
    h.close()


def advance(h: Any, seconds: float, step: float = 0.1) -> None:
    for _ in range(round(seconds / step)):
        h.clock.advance(step)
        h.client.flush()


def submit(engine: FleetEngine, h: Any) -> Any:
    out: list[Any] = []
    d = ensureDeferred(engine.start())
    d.addCallback(lambda _: ensureDeferred(engine.submit(POLICY, parse_selector("all"), JobOptions(),
                                                         deadline=timedelta(hours=1))))
    d.addBoth(out.append)
    h.client.flush()
    assert out and not hasattr(out[0], "raiseException"), out
    return out[0]


def device(serial: str) -> str:
    return make_device_id("00000C", "CP-8851-3PCC", serial)


def tracebacks(events: list[dict[str, Any]]) -> list[Any]:
    return [e.get("log_format") for e in events if "log_failure" in e]


def test_devices_refused_during_an_outage_are_requested_again_without_counting_an_attempt(world):
    h, switch, phones, engine, events = world
    job = submit(engine, h)
    advance(h, 0.55, step=0.05)  # the first tick sends the connection requests
    assert sum(phones.requests.values()) == 6
    switch.down = True  # the phones call in 0.1 s later and are answered 503
    advance(h, 30)
    assert phones.answers[503] == 6 and phones.spv == Counter()
    # No device is left waiting for a call that will not come (the phones dropped their
    # CONNECTION REQUEST event), no request went out meanwhile, and no attempt was used.
    assert sum(phones.requests.values()) == 6
    assert all(t.state is TaskState.PENDING and t.attempts == 0 for t in job.tasks.values())
    assert job.tasks[device("P000")].detail.startswith("called in while the store was unavailable")
    switch.down = False
    advance(h, 3)
    assert job.state == "completed" and job.counts[TaskState.APPLIED] == 6
    assert phones.spv == Counter({f"P{i:03d}": 1 for i in range(6)})  # each applied once
    assert all(t.attempts == 0 for t in job.tasks.values())
    assert h.store.task_counts(job.id) == {"applied": 6} and h.store.get_job(job.id).state == "completed"
    assert tracebacks(events) == []


def test_a_store_failure_mid_session_is_a_503_and_the_device_is_applied_once(world):
    h, switch, phones, engine, events = world
    switch.failing.add("set_device_parameters")  # after the phone applied the change
    job = submit(engine, h)
    advance(h, 1)
    assert sum(phones.spv.values()) == 6 and phones.answers[503] == 6
    assert all(t.state is TaskState.PENDING for t in job.tasks.values())  # the session was lost
    switch.failing.clear()
    advance(h, 15)  # requested again after the back-off; the Informs carry the job's key
    assert job.state == "completed" and job.counts[TaskState.APPLIED] == 6
    assert phones.spv == Counter({f"P{i:03d}": 1 for i in range(6)})  # no second SetParameterValues
    assert tracebacks(events) == []


def test_a_credential_read_failing_postpones_the_request_and_crashes_nothing(world):
    h, switch, phones, engine, events = world
    switch.failing.add("get_connection_request_credential")
    job = submit(engine, h)
    advance(h, 0.6)
    assert phones.requests == Counter()
    task = job.tasks[device("P000")]
    assert task.state is TaskState.PENDING and task.attempts == 0 and not task.cr_exhausted
    assert task.detail == "connection request postponed: the store is unavailable"
    switch.failing.clear()
    advance(h, 15)
    assert job.state == "completed" and job.counts[TaskState.APPLIED] == 6
    assert tracebacks(events) == []


def test_a_job_state_that_could_not_be_saved_is_saved_again(world):
    h, switch, phones, engine, events = world
    switch.failing.add("set_job_state")
    job = submit(engine, h)
    advance(h, 3)
    assert job.state == "completed" and h.store.get_job(job.id).state == "running"
    assert switch.failed["set_job_state"] >= 2  # tried again, a second apart
    switch.failing.clear()
    advance(h, 1.5)
    assert h.store.get_job(job.id).state == "completed" and h.store.get_job(job.id).finished_at is not None
    assert tracebacks(events) == []
