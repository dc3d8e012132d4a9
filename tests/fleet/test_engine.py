"""The job engine as the endpoint's provisioner: real CWMP bytes over in-memory HTTP, a
fake clock, the real store (SQLite in memory). The phones here are minimal scripted CPEs;
the simulated phones drive the same engine over loopback in tests/e2e."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred, succeed

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.fleet.live import JobOptions
from acs_security.fleet.selector import parse_selector
from acs_security.policy.document import parse_policy
from acs_security.service import FleetService
from acs_security.store.records import make_device_id
from tests.server.harness import inform, make_harness

POLICY = parse_policy(b'[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n')


class ScriptedPhones:
    """Answers connection requests by running a CWMP session through the harness.

    ``behaviour[serial]``: "ok" (SPV applied), "fault" (SPV fault 9007), "offline"
    (connection request refused), "silent" (accepts, never calls)."""

    def __init__(self, harness):
        self.h = harness
        self.behaviour: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.spv: dict[str, list[str]] = {}
        self.values: dict[str, dict[str, Any]] = {}
        # Extra Inform parameters per serial, and the URL each phone reports.
        self.extra: dict[str, tuple[m.ParameterValue, ...]] = {}
        self.url: dict[str, str] = {}

    def request(self, url, username, password):
        serial = url.rsplit("/", 1)[-1]
        mode = self.behaviour.get(serial, "ok")
        if mode == "offline":
            return succeed(ConnectionRequestResult(ResultKind.REFUSED, detail="refused"))
        if mode != "silent":
            self.h.clock.callLater(0.1, lambda: ensureDeferred(self.session(serial, "6 CONNECTION REQUEST")))
        return succeed(ConnectionRequestResult(ResultKind.ACCEPTED, status=200))

    async def session(self, serial, event):
        client = type(self.h.client)(self.h.resource)
        url = self.url.get(serial, f"http://cpe/{serial}")
        params = (m.ParameterValue("Device.ManagementServer.ConnectionRequestURL", url, "string"),
                  m.ParameterValue("Device.ManagementServer.ParameterKey", self.keys.get(serial, ""), "string"),
                  m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP-1", "string"),
                  *self.extra.get(serial, ()))
        resp = await client.post("http://acs/", data=inform(serial, (event,), params=params))
        body = await resp.content()
        cookies = {"acs_session": resp.cookies()["acs_session"]}
        resp = await client.post("http://acs/", data=b"", cookies=cookies)
        while resp.code == 200:
            env = parse_envelope(await resp.content())
            req = env.message
            if isinstance(req, m.GetParameterValues):
                values = self.values.get(serial, {})
                wrong = self.behaviour.get(serial) == "forgets"
                reply = m.GetParameterValuesResponse(tuple(
                    m.ParameterValue(n, "" if wrong else values.get(n, ""), "string") for n in req.names))
                resp = await client.post(
                    "http://acs/", data=build_envelope(reply, namespace=CWMP_1_0, cwmp_id=env.cwmp_id), cookies=cookies)
                continue
            assert isinstance(req, m.SetParameterValues)
            self.spv.setdefault(serial, []).append(req.parameter_key)
            self.values.setdefault(serial, {}).update({p.name: p.value for p in req.parameters})
            if self.behaviour.get(serial) == "fault":
                reply = m.Fault(9003, "", (
                    m.SetParameterValuesFault(req.parameters[0].name, 9007, "Invalid parameter value"),))
            else:
                self.keys[serial] = req.parameter_key
                reply = m.SetParameterValuesResponse(0)
            resp = await client.post("http://acs/", data=build_envelope(reply, namespace=CWMP_1_0, cwmp_id=env.cwmp_id),
                                     cookies=cookies)
        assert resp.code == 204, body


@pytest.fixture
def world():
    h = make_harness()
    phones = ScriptedPhones(h)
    engine = FleetEngine(store=h.dstore, clock=h.clock, http_requester=phones,
                         default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5),
                         random=lambda: 0.5)
    h.resource._provisioner = engine
    service = FleetService(h.dstore, engine=engine, clock=h.clock)
    for i in range(10):
        ensureDeferred(phones.session(f"P{i:03d}", "1 BOOT"))
    h.client.flush()
    assert h.store.count_devices() == 10
    yield h, phones, engine, service
    h.close()


def advance(h, seconds, step=0.1):
    for _ in range(int(seconds / step)):
        h.clock.advance(step)
        h.client.flush()


def submit(engine, h, *, options=JobOptions(),  # noqa: B008 - frozen, so one shared default is safe
           select="all", deadline=timedelta(hours=1)):
    d = ensureDeferred(engine.start()) if engine._loop is None else succeed(None)
    d.addCallback(lambda _: ensureDeferred(engine.submit(POLICY, parse_selector(select), options, deadline=deadline)))
    out = []
    d.addBoth(out.append)
    h.client.flush()
    assert out and not hasattr(out[0], "raiseException"), out
    return out[0]


def test_push_applies_to_every_device_once(world):
    h, phones, engine, service = world
    job = submit(engine, h)
    advance(h, 5)
    assert job.state == "completed"
    assert job.counts["applied"] == 10
    assert all(keys == [job.parameter_key] for keys in phones.spv.values()) and len(phones.spv) == 10
    # Durable: the store has every outcome.
    assert h.store.task_counts(job.id) == {"applied": 10}
    dev = make_device_id("00000C", "CP-8851-3PCC", "P000")
    params = h.store.device_parameters(dev)
    assert params["Device.X_CISCO_SecuritySettings.FirewallOptions"][0] == "NO_ICMP_PING"


def test_faulted_devices_are_named_with_parameter_and_code(world):
    h, phones, engine, service = world
    phones.behaviour["P003"] = "fault"
    job = submit(engine, h, options=JobOptions(max_fault_rate=0.5))
    advance(h, 5)
    assert job.counts["faulted"] == 1 and job.counts["applied"] == 9
    [task] = h.store.list_tasks(job.id, states=["faulted"])
    assert task.fault_code == 9003 and task.faults[0]["code"] == 9007
    assert task.faults[0]["name"].startswith("Device.X_CISCO_SecuritySettings.")


def test_offline_devices_wait_for_their_periodic_inform(world):
    h, phones, engine, service = world
    phones.behaviour["P001"] = "offline"
    phones.behaviour["P002"] = "silent"
    job = submit(engine, h)
    advance(h, 400)  # three connection requests each, with backoff; the silent one times out
    assert job.counts["applied"] == 8 and job.counts["pending"] == 2 and job.state == "running"
    ensureDeferred(phones.session("P001", "2 PERIODIC"))
    ensureDeferred(phones.session("P002", "2 PERIODIC"))
    advance(h, 2)
    assert job.counts["applied"] == 10 and job.state == "completed"


def test_deadline_makes_the_rest_unreachable(world):
    h, phones, engine, service = world
    phones.behaviour["P001"] = "offline"
    job = submit(engine, h, deadline=timedelta(seconds=60))
    advance(h, 70)
    assert job.counts["unreachable"] == 1 and job.state == "completed"


def test_canary_over_the_fault_threshold_halts_and_resume_continues(world):
    h, phones, engine, service = world
    phones.behaviour["P000"] = "fault"
    job = submit(engine, h, options=JobOptions(canary=2, wave_size=4, max_fault_rate=0.3))
    advance(h, 5)
    assert job.state == "halted" and "wave 0" in job.reason
    assert sum(job.counts.values()) == 10 and len(phones.spv) == 2  # nothing beyond the canary
    d = ensureDeferred(service.resume_job(job.id))
    h.client.flush()
    assert d.result["state"] == "running"
    advance(h, 10)
    assert job.state == "completed" and job.counts["applied"] == 9 and job.counts["faulted"] == 1


def test_cancel_stops_cleanly(world):
    h, phones, engine, service = world
    for i in range(10):
        phones.behaviour[f"P{i:03d}"] = "offline"
    job = submit(engine, h)
    advance(h, 1)
    d = ensureDeferred(service.cancel_job(job.id))
    h.client.flush()
    assert d.result["state"] == "cancelled" and d.result["cancelled"] == 10
    assert h.store.get_job(job.id).state == "cancelled"


def test_a_device_with_the_jobs_key_is_applied_without_another_spv(world):
    h, phones, engine, service = world
    phones.behaviour["P004"] = "silent"
    job = submit(engine, h)
    advance(h, 1)
    phones.keys["P004"] = job.parameter_key  # it applied the change; its answer was lost
    ensureDeferred(phones.session("P004", "2 PERIODIC"))
    advance(h, 3)
    assert "P004" not in phones.spv
    assert job.tasks[make_device_id("00000C", "CP-8851-3PCC", "P004")].state.value == "applied"


def test_dry_run_reports_changes_and_creates_nothing(world):
    h, phones, engine, service = world
    text = '[settings]\nFirewall = "Enabled"\nVPN_Server = "vpn.example.net"\n'
    d = ensureDeferred(service.submit_job({"policy": text, "select": "serial=P000,P001", "dry_run": True}))
    h.client.flush()
    result = d.result
    assert result["targets"] == 2 and result["totals"]["change"] == 2
    assert {c["path"] for c in result["devices"][0]["changes"]} >= {"Device.X_CISCO_SecuritySettings.Firewall"}
    assert h.store.count_jobs() == 0


def test_invalid_policy_is_refused_before_anything_is_sent(world):
    h, phones, engine, service = world
    d = ensureDeferred(service.submit_job({"policy": '[settings]\nTLS_Min_Version = "TLS 9"\n', "select": "all"}))
    h.client.flush()
    failure = d.result
    assert failure.value.status == 400 and "TLS_Min_Version" in failure.value.detail
    d.addErrback(lambda _: None)
    assert h.store.count_jobs() == 0 and phones.spv == {}


def test_readback_confirms_or_flags_a_device_that_did_not_keep_the_values(world):
    h, phones, engine, service = world
    phones.behaviour["P005"] = "forgets"
    job = submit(engine, h, options=JobOptions(readback=True, max_fault_rate=1.0))
    advance(h, 5)
    assert job.counts["applied"] == 9 and job.counts["faulted"] == 1
    [bad] = h.store.list_tasks(job.id, states=["faulted"])
    assert bad.device_id.endswith("P005") and "read-back differs" in bad.detail
    [good] = h.store.list_tasks(job.id, states=["applied"], limit=1)
    assert good.detail == "applied and read back"


def test_a_model_with_a_batch_size_gets_several_calls_and_only_the_last_carries_the_key(tmp_path, world):
    import shutil

    from acs_security.mapping import datamodel_dir, load_catalogue

    h, phones, engine, service = world
    shutil.copytree(datamodel_dir(), tmp_path / "dm")
    models = tmp_path / "dm" / "models.toml"
    models.write_text(models.read_text().replace('[models."CP-8851-3PCC"]\n',
                                                 '[models."CP-8851-3PCC"]\nspv_batch_size = 1\n'))
    engine._catalogue = load_catalogue(tmp_path / "dm")
    job = submit(engine, h, select="serial=P000")
    advance(h, 3)
    assert job.counts["applied"] == 1
    assert phones.spv["P000"] == [f"{job.parameter_key}.1", job.parameter_key]  # two settings, two calls
    assert phones.keys["P000"] == job.parameter_key


def test_resume_on_the_last_wave_releases_its_brake_instead_of_halting_again(world):
    h, phones, engine, service = world
    phones.behaviour["P000"] = "fault"
    phones.behaviour["P001"] = "fault"
    job = submit(engine, h, options=JobOptions(max_fault_rate=0.05, max_in_progress=2))  # one wave: the last
    advance(h, 5)
    assert job.state == "halted"
    ensureDeferred(service.resume_job(job.id))
    advance(h, 5)
    assert job.state == "completed" and job.counts["faulted"] == 2 and job.counts["applied"] == 8


def test_only_the_most_recent_finished_jobs_stay_in_memory(world):
    h, phones, engine, service = world
    engine.limits.keep_finished_jobs = 2
    jobs = []
    for _ in range(4):
        jobs.append(submit(engine, h, select="serial=P000"))
        advance(h, 2)
    assert all(j.state == "completed" for j in jobs)
    assert sorted(engine.jobs) == [jobs[2].id, jobs[3].id]
    d = ensureDeferred(service.job_summary(jobs[0].id))  # answered from the store
    h.client.flush()
    assert d.result["state"] == "completed" and d.result["applied"] == 1


@pytest.mark.parametrize("field, value", [("max_in_progress", 0), ("max_fault_rate", 2), ("wave", -3),
                                          ("canary", "abc"), ("deadline", "forever")])
def test_invalid_job_options_are_refused_and_nothing_is_created(world, field, value):
    h, phones, engine, service = world
    d = ensureDeferred(service.submit_job({"policy": '[settings]\nFirewall = "Enabled"\n', "select": "all",
                                           field: value}))
    h.client.flush()
    assert d.result.value.status == 400
    d.addErrback(lambda _: None)
    assert h.store.count_jobs() == 0


def watch_store_calls(dstore: Any) -> tuple[list[str], list[tuple[str, ...]]]:
    """Record the DeferredStore's calls (method names) and the reads asked with each Inform,
    both still carried out."""
    calls: list[str] = []
    reads: list[tuple[str, ...]] = []
    real_call, real_record = dstore.call, dstore.record_inform

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return real_call(method, *args, **kwargs)

    def record_inform(record: Any, **kwargs: Any) -> Any:
        reads.append(tuple(kwargs.get("reads", ())))
        return real_record(record, **kwargs)

    dstore.call, dstore.record_inform = call, record_inform
    return calls, reads


def test_a_push_session_reads_the_stored_values_with_its_inform(world):
    # Issue 17: the plan's known values come from the Inform's store hop
    # (store/deferred.py), not from a device_parameters call of their own.
    h, phones, engine, service = world
    calls, reads = watch_store_calls(h.dstore)
    job = submit(engine, h)
    advance(h, 5)
    assert job.counts["applied"] == 10
    assert reads == [("device_parameters",)] * 10
    assert "device_parameters" not in calls
    # Its task done, a phone's periodic session asks for nothing more than its Inform.
    ensureDeferred(phones.session("P000", "2 PERIODIC"))
    h.client.flush()
    assert reads[-1] == () and len(reads) == 11


def test_a_push_plans_against_the_values_read_with_the_inform(world):
    # A phone whose Inform already reports the policy's values gets no SetParameterValues:
    # the values read with the Inform are the ones the plan compares (not stale ones).
    h, phones, engine, service = world
    first = submit(engine, h, select="serial=P000")
    advance(h, 5)
    assert first.counts["applied"] == 1 and len(phones.spv["P000"]) == 1
    params = h.store.device_parameters(make_device_id("00000C", "CP-8851-3PCC", "P000"))
    phones.extra["P000"] = tuple(m.ParameterValue(name, value, "string")
                                 for name, (value, _t) in params.items()
                                 if name.startswith("Device.X_CISCO_SecuritySettings."))
    assert phones.extra["P000"]
    second = submit(engine, h, select="serial=P000")
    advance(h, 5)
    assert second.counts["applied"] == 1
    assert len(phones.spv["P000"]) == 1  # already compliant: nothing sent the second time
