"""Assignments enforced in the session: the real CWMP endpoint and store (SQLite in memory),
a fake clock, scripted phones speaking real envelopes through StubTreq. No sockets, no time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred, succeed

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.desired.audit_side import AuditSide
from acs_security.desired.composite import CompositeProvisioner
from acs_security.desired.live import LiveAssignments
from acs_security.desired.session import DesiredSide
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.fleet.live import JobOptions
from acs_security.fleet.selector import parse_selector
from acs_security.policy.document import Policy, parse_policy
from acs_security.service import FleetService
from acs_security.store.records import make_device_id
from tests.server.harness import inform, make_harness

FIREWALL = "Device.X_CISCO_SecuritySettings.Firewall"
PING = "Device.X_CISCO_SecuritySettings.FirewallOptions"
HARD = '[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'
MODEL = "CP-8851-3PCC"


class Phone:
    """A scripted phone: values, attributes and ParameterKey; answers SPV, SPA and GPV as
    TR-069 says (SPV all or nothing, the key only on success)."""

    def __init__(self, h: Any, serial: str) -> None:
        self.h, self.serial = h, serial
        self.values: dict[str, str] = {FIREWALL: "Disabled", PING: ""}
        self.notify: dict[str, int] = {}
        self.key = ""
        self.rpcs: list[str] = []
        self.refuse = False
        self.drop = False  # walk away at the next SetParameterValues (the session times out)
        self.device_id = make_device_id("00000C", MODEL, serial)

    def change(self, path: str, value: str) -> tuple[str, ...]:
        """A person on the web page: the events the next Inform carries."""
        self.values[path] = value
        return ("4 VALUE CHANGE",) if self.notify.get(path) == 2 else ("2 PERIODIC",)

    async def session(self, *events: str, report: tuple[str, ...] = ()) -> list[str]:
        client = type(self.h.client)(self.h.resource)
        params = (m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP-1", "string"),
                  m.ParameterValue("Device.ManagementServer.ConnectionRequestURL", f"http://cpe/{self.serial}",
                                   "string"),
                  m.ParameterValue("Device.ManagementServer.ParameterKey", self.key, "string"),
                  *(m.ParameterValue(p, self.values[p], "string") for p in report))
        resp = await client.post("http://acs/", data=inform(self.serial, events or ("2 PERIODIC",), params=params))
        assert resp.code == 200
        cookies = {"acs_session": resp.cookies()["acs_session"]}
        resp = await client.post("http://acs/", data=b"", cookies=cookies)
        seen = []
        while resp.code == 200:
            env = parse_envelope(await resp.content())
            assert env is not None
            req = env.message
            seen.append(type(req).__name__)
            reply: m.Message
            if isinstance(req, m.SetParameterValues) and self.drop:
                self.rpcs.extend(seen)
                return seen
            if isinstance(req, m.SetParameterValues):
                if self.refuse:
                    reply = m.Fault(9003, "Invalid arguments", (m.SetParameterValuesFault(
                        req.parameters[0].name, 9007, "refused"),))
                else:
                    self.values.update({p.name: str(p.value) for p in req.parameters})
                    self.key = req.parameter_key
                    reply = m.SetParameterValuesResponse(0)
            elif isinstance(req, m.SetParameterAttributes):
                self.notify.update({s.name: s.notification for s in req.parameters})
                reply = m.SetParameterAttributesResponse()
            elif isinstance(req, m.GetParameterValues):
                reply = m.GetParameterValuesResponse(tuple(
                    m.ParameterValue(n, self.values.get(n, ""), "string") for n in req.names))
            else:
                raise AssertionError(f"unexpected {req!r}")
            resp = await client.post("http://acs/", data=build_envelope(reply, namespace=CWMP_1_0,
                                                                       cwmp_id=env.cwmp_id), cookies=cookies)
        assert resp.code == 204
        self.rpcs.extend(seen)
        return seen


class CountingStore:
    """The DeferredStore, with a count of each method called."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        return self.inner.call(method, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class World:
    def __init__(self) -> None:
        self.h = make_harness()
        self.store = CountingStore(self.h.dstore)
        self.h.resource._store = self.store
        self.phones: dict[str, Phone] = {}
        self.engine = FleetEngine(store=self.store, clock=self.h.clock, http_requester=self,
                                  default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5),
                                  random=lambda: 0.5)
        self.live = LiveAssignments(self.store, self.h.clock)
        self.side = DesiredSide(self.live, store=self.store, clock=self.h.clock, node="n1")
        self.audit = AuditSide(self.engine, self.live, self.side, store=self.store, clock=self.h.clock)
        self.h.resource._provisioner = CompositeProvisioner([self.engine, self.audit, self.side])
        self.run(self.engine.start())

    def request(self, url: str, username: str, password: str) -> Any:  # connection requests
        phone = self.phones[url.rsplit("/", 1)[-1]]
        self.h.clock.callLater(0.1, lambda: ensureDeferred(phone.session("6 CONNECTION REQUEST")))
        return succeed(ConnectionRequestResult(ResultKind.ACCEPTED, status=200))

    def run(self, coro: Any) -> Any:
        d = ensureDeferred(coro)
        self.h.client.flush()
        out: list[Any] = []
        d.addBoth(out.append)
        assert out, "did not finish"
        if hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]

    def phone(self, serial: str) -> Phone:
        self.phones[serial] = Phone(self.h, serial)
        return self.phones[serial]

    def assign(self, text: str = HARD, *, name: str = "hard", select: str = "all", priority: int = 0,
               mode: str = "enforce") -> Any:
        policy = parse_policy(text.encode(), source=f"{name}.toml")
        rec = self.h.store.create_assignment(name=name, policy=policy.to_json(), policy_name=f"{name}.toml",
                                             selector=select, priority=priority, mode=mode)
        self.run(self.live.refresh())
        return rec

    def advance(self, seconds: float, step: float = 0.1) -> None:
        for _ in range(int(seconds / step)):
            self.h.clock.advance(step)
            self.h.client.flush()


@pytest.fixture
def world():
    w = World()
    yield w
    w.h.close()


def test_a_new_phone_gets_its_assignment_and_notification_in_its_first_session(world):
    a = world.assign()
    phone = world.phone("P1")
    assert world.run(phone.session("0 BOOTSTRAP", "1 BOOT")) == ["SetParameterValues", "SetParameterAttributes"]
    assert phone.values[FIREWALL] == "Enabled" and phone.values[PING] == "NO_ICMP_PING"
    assert phone.key == f"acs-des-{a.id}-r1"
    assert phone.notify == {FIREWALL: 2, PING: 2}
    (row,) = world.h.store.device_rows(phone.device_id)
    assert (row.state, row.revision, row.notified_revision) == ("applied", 1, 1)


def test_a_compliant_phones_periodic_session_costs_no_store_read(world):
    world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    reads = world.store.calls.get("desired_device_state", 0)
    for _ in range(3):
        assert world.run(phone.session("2 PERIODIC")) == []
    assert world.store.calls.get("desired_device_state", 0) == reads
    assert world.store.calls.get("record_desired", 0) == 2  # the SPV outcome and the notification


def test_drift_on_the_web_page_is_recorded_and_corrected_in_the_same_session(world):
    world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    events = phone.change(FIREWALL, "Disabled")
    assert events == ("4 VALUE CHANGE",)
    assert world.run(phone.session(*events, report=(FIREWALL,))) == ["SetParameterValues"]
    assert phone.values[FIREWALL] == "Enabled"
    (line,) = world.h.store.drift_history(phone.device_id)
    assert (line.kind, line.setting, line.old_value, line.new_value, line.event, line.action) == (
        "drift", "Firewall", "Enabled", "Disabled", "4 VALUE CHANGE", "corrected")


def test_a_drift_whose_session_was_lost_is_corrected_at_the_next_session(world):
    world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    phone.change(FIREWALL, "Disabled")
    phone.drop = True  # the VALUE CHANGE session is lost before the correction is answered
    assert world.run(phone.session("4 VALUE CHANGE", report=(FIREWALL,))) == ["SetParameterValues"]
    world.advance(31)  # the ACS drops the idle session
    phone.drop = False
    # A plain periodic Inform (the change was reported already): not taken for settled.
    assert world.run(phone.session("2 PERIODIC")) == ["SetParameterValues"]
    assert phone.values[FIREWALL] == "Enabled"


def test_audit_mode_reports_drift_and_changes_nothing(world):
    world.assign(mode="audit")
    phone = world.phone("P1")
    phone.values[FIREWALL], phone.values[PING] = "Enabled", "NO_ICMP_PING"
    assert world.run(phone.session("1 BOOT")) == ["SetParameterAttributes"]  # notification, no values
    events = phone.change(PING, "")
    assert world.run(phone.session(*events, report=(PING,))) == []
    assert phone.values[PING] == ""
    (line,) = world.h.store.drift_history(phone.device_id)
    assert (line.action, line.new_value) == ("reported", "")
    assert world.h.store.device_rows(phone.device_id)[0].state == "drifted"


def test_a_phone_that_refuses_is_faulted_and_not_asked_again_every_session(world):
    world.assign()
    phone = world.phone("P1")
    phone.refuse = True
    assert world.run(phone.session("1 BOOT")) == ["SetParameterValues", "SetParameterAttributes"]
    (row,) = world.h.store.device_rows(phone.device_id)
    assert row.state == "faulted" and row.faults[0]["code"] == 9007
    assert world.run(phone.session("2 PERIODIC")) == []
    phone.refuse = False
    assert world.run(phone.session("1 BOOT")) == ["SetParameterValues"]  # a reboot: tried again
    assert world.h.store.device_rows(phone.device_id)[0].state == "applied"


def test_a_factory_reset_phone_is_brought_back(world):
    world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    phone.values, phone.notify, phone.key = {FIREWALL: "Disabled", PING: ""}, {}, ""
    assert world.run(phone.session("0 BOOTSTRAP", "1 BOOT")) == ["SetParameterValues", "SetParameterAttributes"]
    assert phone.values[FIREWALL] == "Enabled" and phone.notify[FIREWALL] == 2
    kinds = [line.kind for line in world.h.store.drift_history(phone.device_id)]
    assert kinds == ["factory_reset"]


def test_a_new_revision_is_sent_once_with_its_key(world):
    a = world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    policy = parse_policy(b'[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING,NO_ICMP_UNREACHABLE"\n')
    world.h.store.update_assignment(a.id, policy=policy.to_json(), policy_name="hard.toml", selector="all",
                                    priority=0, mode="enforce")
    world.run(world.live.refresh())
    assert world.run(phone.session("2 PERIODIC")) == ["SetParameterValues", "SetParameterAttributes"]
    assert phone.key == f"acs-des-{a.id}-r2" and phone.values[PING] == "NO_ICMP_PING,NO_ICMP_UNREACHABLE"
    assert world.run(phone.session("2 PERIODIC")) == []


def test_a_job_wins_its_session_and_the_next_session_enforces_again(world):
    world.assign()
    phone = world.phone("P1")
    world.run(phone.session("1 BOOT"))
    push = Policy(name="off", settings={"Firewall": "Disabled"})
    job = world.run(world.engine.submit(push, parse_selector("all"), JobOptions(), deadline=timedelta(hours=1)))
    world.advance(2)
    assert job.state == "completed" and phone.values[FIREWALL] == "Disabled"
    assert phone.key == job.parameter_key
    (line,) = world.h.store.job_conflicts(job.id)
    assert (line.assignment_name, line.old_value, line.new_value) == ("hard", "Enabled", "Disabled")
    assert world.h.store.device_rows(phone.device_id)[0].state == "overridden"
    # The conflict shows in the job's report too.
    report = world.run(FleetService(world.store, engine=world.engine, clock=world.h.clock).job_report(job.id))
    assert report["devices"][0]["conflicts"] == [{"assignment": "hard", "setting": "Firewall", "path": FIREWALL,
                                                  "job_value": "Disabled", "assignment_value": "Enabled"}]
    csv_report = world.run(FleetService(world.store, engine=world.engine).job_report(job.id, fmt="csv"))
    assert b",hard:Firewall," in csv_report
    assert world.run(phone.session("2 PERIODIC")) == ["SetParameterValues"]
    assert phone.values[FIREWALL] == "Enabled" and world.h.store.device_rows(phone.device_id)[0].state == "applied"


def test_an_audit_job_reads_judges_records_and_enforce_mode_corrects(world):
    a = world.assign()
    phones = [world.phone(f"P{i}") for i in range(3)]
    for p in phones:
        world.run(p.session("1 BOOT"))
    phones[1].values[FIREWALL] = "Disabled"  # changed without notification reaching the ACS
    job = world.run(world.engine.submit(Policy(name="audit", settings={}), parse_selector("all"),
                                        JobOptions(max_fault_rate=1.0), deadline=timedelta(hours=1), kind="audit",
                                        extra_options={"audit": {"assignments": [a.id]}}))
    world.advance(3)
    assert job.state == "completed" and job.counts["applied"] == 3
    readings = {r.device_id: r for r in world.h.store.audit_readings(job.id)}
    verdicts = {i["setting"]: i["verdict"] for i in readings[phones[1].device_id].items}
    assert verdicts == {"Firewall": "drifted", "Firewall_Config": "compliant"}
    assert all(i["verdict"] == "compliant" for i in readings[phones[0].device_id].items)
    # The same session corrected it (enforce mode), and the history says an audit found it.
    assert phones[1].rpcs[-2:] == ["GetParameterValues", "SetParameterValues"]
    assert phones[1].values[FIREWALL] == "Enabled"
    (line,) = world.h.store.drift_history(phones[1].device_id)
    assert (line.event, line.new_value, line.action) == (f"audit job {job.id}", "Disabled", "corrected")
