"""cfg.xml Downloads and configuration Uploads in the job engine: real CWMP bytes and real
file requests over in-memory HTTP, a fake clock, the real store (SQLite in memory). The
phones are scripted here; the simulated phones do the same over loopback in tests/e2e."""

from __future__ import annotations

import itertools
import shutil
from datetime import timedelta
from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred, succeed

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.files.offers import FileOffers
from acs_security.files.tokens import FileSigner
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.fleet.live import JobOptions
from acs_security.fleet.selector import parse_selector
from acs_security.httpauth.digest import DigestVerifier
from acs_security.mapping import load_catalogue, parse_cfgxml
from acs_security.mapping.paths import datamodel_dir
from acs_security.policy.document import parse_policy
from acs_security.server.files import CwmpRoot, FileResource
from acs_security.store.records import make_device_id
from tests.server.harness import inform, make_harness

POLICY = parse_policy(b'[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'
                      b'Proxy_Mode = "Manual"\nProxy_Host = "proxy.example.net"\nProxy_Port = "3128"\n')
PHONES = 4


class Phones:
    """Scripted phones: they answer SetParameterValues, take a Download (Status 1), fetch
    the file, and report the TransferComplete in their next session; they answer Upload
    with a PUT of their configuration. ``mode[serial]``: ok, bad-file (TransferComplete
    9018), refuse (Download answered with fault 9000), lose (fetch, then never report),
    deaf (accept the Download, never fetch)."""

    def __init__(self, world: Any) -> None:
        self.w = world
        self.mode: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.spv: dict[str, list[str]] = {}
        self.downloads: dict[str, list[m.Download]] = {}
        self.fetched: dict[str, list[bytes]] = {}
        self.pending: dict[str, list[tuple[str, int]]] = {}
        self.boot_after: set[str] = set()
        self.notified: dict[str, list[str]] = {}

    def request(self, url, username, password):
        serial = url.rsplit("/", 1)[-1]
        self.w.clock.callLater(0.1, lambda: ensureDeferred(self.session(serial, "6 CONNECTION REQUEST")))
        return succeed(ConnectionRequestResult(ResultKind.ACCEPTED, status=200))

    async def session(self, serial: str, *events: str) -> None:
        client = self.w.session_client()
        transfers = self.pending.pop(serial, [])
        if transfers:
            events = ("7 TRANSFER COMPLETE", *(["1 BOOT"] if serial in self.boot_after else []), *events)
        params = (m.ParameterValue("Device.ManagementServer.ConnectionRequestURL", f"http://cpe/{serial}", "string"),
                  m.ParameterValue("Device.ManagementServer.ParameterKey", self.keys.get(serial, ""), "string"),
                  m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip78xx.11-3-7MPP0001-276", "string"))
        resp = await client.post("http://acs/", data=inform(serial, events, params=params,
                                                             product_class="CP-7841-3PCC"))
        assert resp.code == 200, await resp.content()
        await resp.content()
        cookies = {"acs_session": resp.cookies()["acs_session"]}
        for n, (key, code) in enumerate(transfers):
            tc = m.TransferComplete(key, m.TransferCompleteFault(code, "file corrupted" if code else ""),
                                    m.UNKNOWN_TIME, m.UNKNOWN_TIME)
            resp = await client.post("http://acs/", data=build_envelope(tc, namespace=CWMP_1_0, cwmp_id=f"t{n}"),
                                     cookies=cookies)
            answer = parse_envelope(await resp.content())
            assert answer is not None and isinstance(answer.message, m.TransferCompleteResponse)
        resp = await client.post("http://acs/", data=b"", cookies=cookies)
        after: list[Any] = []
        while resp.code == 200:
            env = parse_envelope(await resp.content())
            assert env is not None
            req = env.message
            if isinstance(req, m.SetParameterValues):
                self.spv.setdefault(serial, []).append(req.parameter_key)
                self.keys[serial] = req.parameter_key
                reply: m.Message = m.SetParameterValuesResponse(0)
            elif isinstance(req, m.Download):
                self.downloads.setdefault(serial, []).append(req)
                if self.mode.get(serial) == "refuse":
                    reply = m.Fault(9000, "Method not supported")
                else:
                    reply = m.DownloadResponse(1)
                    after.append(req)
            elif isinstance(req, m.Upload):
                reply = m.UploadResponse(1)
                after.append(req)
            elif isinstance(req, m.SetParameterAttributes):  # an assignment's notification
                self.notified.setdefault(serial, []).extend(s.name for s in req.parameters)
                reply = m.SetParameterAttributesResponse()
            else:
                raise AssertionError(f"unexpected {req!r}")
            resp = await client.post("http://acs/", data=build_envelope(reply, namespace=CWMP_1_0, cwmp_id=env.cwmp_id),
                                     cookies=cookies)
        assert resp.code == 204
        for req in after:
            await self.transfer(serial, req)

    async def transfer(self, serial: str, req: Any) -> None:
        mode = self.mode.get(serial, "ok")
        if mode == "deaf":
            return
        if isinstance(req, m.Upload):
            resp = await self.w.client.request("PUT", req.url, data=b"<flat-profile><Firewall>Enabled</Firewall>"
                                                                  b"<Bogus>1</Bogus></flat-profile>")
            await resp.content()
            self.pending.setdefault(serial, []).append((req.command_key, 0 if resp.code < 300 else 9011))
            self.w.clock.callLater(1.0, lambda: ensureDeferred(self.session(serial, "M Upload")))
            return
        resp = await self.w.client.get(req.url)
        body = await resp.content()
        assert resp.code == 200, body
        self.fetched.setdefault(serial, []).append(body)
        if mode == "lose":
            return
        code = 9018 if mode == "bad-file" else 0
        if mode == "flaky":  # the first transfer breaks on the way, the next ones work
            code, self.mode[serial] = 9017, "ok"
        self.pending.setdefault(serial, []).append((req.command_key, code))
        # The phone reports in its next session (after its reboot when it rebooted).
        self.w.clock.callLater(1.0, lambda: ensureDeferred(self.session(serial, "M Download")))


class World:
    def __init__(self, catalogue=None) -> None:
        h = make_harness()
        self.h, self.clock, self.store, self.ds = h, h.clock, h.store, h.dstore
        self.catalogue = catalogue or load_catalogue()
        self.phones = Phones(self)
        signer = FileSigner(b"s" * 32)
        counter = itertools.count()
        self.files = FileResource(store=h.dstore, clock=h.clock, signer=signer,
                                  verifier=DigestVerifier("acs-security", b"n" * 32),
                                  random_bytes=lambda n: next(counter).to_bytes(n, "big"), catalogue=self.catalogue)
        self.client = StubTreq(CwmpRoot(h.resource, self.files))
        self.engine = self.new_engine()
        for i in range(PHONES):
            self.run(self.phones.session(f"P{i}", "1 BOOT"))

    def session_client(self) -> Any:
        """Where a phone's next session goes (one node here)."""
        return self.client

    def new_engine(self) -> FleetEngine:
        offers = FileOffers(store=self.ds, signer=FileSigner(b"s" * 32), clock=self.clock,
                            base_url="http://acs.example.net:7547", ttl=60, transfer_timeout=600, fetch_wait=30,
                            find_credential=lambda **kw: self.ds.call("find_cpe_credential", **kw))
        engine = FleetEngine(store=self.ds, clock=self.clock, http_requester=self.phones,
                             default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5),
                             random=lambda: 0.5, catalogue=self.catalogue, files=offers)
        engine.transfer_check = 1.0
        self.h.resource._provisioner = engine
        return engine

    def run(self, coro: Any) -> Any:
        d = ensureDeferred(coro)
        self.client.flush()
        out: list[Any] = []
        d.addBoth(out.append)
        assert out, "did not finish"
        if hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]

    def advance(self, seconds: float, step: float = 0.1) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.client.flush()

    def submit(self, options: JobOptions, policy=POLICY, kind: str = "push") -> Any:
        if self.engine._loop is None:
            self.run(self.engine.start())
        return self.run(self.engine.submit(policy, parse_selector("all"), options, deadline=timedelta(hours=2),
                                           kind=kind))

    def device(self, serial: str) -> str:
        return make_device_id("00000C", "CP-7841-3PCC", serial)


@pytest.fixture
def world():
    w = World()
    yield w
    w.h.close()


def test_method_download_sends_one_file_and_waits_for_the_transfer_complete(world):
    world.phones.boot_after.add("P1")
    job = world.submit(JobOptions(method="download"))
    world.advance(5)
    assert job.state == "completed" and job.counts["applied"] == PHONES
    assert world.phones.spv == {}  # every setting went in the file
    for serial in ("P0", "P1"):
        [download] = world.phones.downloads[serial]
        assert download.command_key.startswith(job.parameter_key + ".")  # the job's key and the transfer's tag
        assert download.file_type == "3 Vendor Configuration File"
        [body] = world.phones.fetched[serial]
        cfg = parse_cfgxml(body)
        assert cfg.settable()["Proxy_Host"] == "proxy.example.net" and len(cfg.values) == 5
    tasks = {r.device_id: r for r in world.store.list_tasks(job.id)}
    assert tasks[world.device("P1")].detail == "applied by a cfg.xml Download after a reboot"
    assert tasks[world.device("P0")].detail == "applied by a cfg.xml Download"
    # The file's values are what the ACS now knows of the phone; the file's content is gone.
    params = world.store.device_parameters(world.device("P0"))
    assert params["Device.X_CISCO_HTTPProxySettings.ProxyHost"][0] == "proxy.example.net"
    rec = world.store.device_file(world.device("P0"), kind="download", job_id=job.id)
    assert rec.state == "completed" and world.store.get_file(rec.id).content is None


def test_transfer_faults_and_refused_downloads_become_outcomes(world):
    world.phones.mode.update({"P0": "bad-file", "P1": "refuse"})
    job = world.submit(JobOptions(method="download", max_fault_rate=1.0))
    world.advance(5)
    assert job.state == "completed" and job.counts["faulted"] == 2 and job.counts["applied"] == 2
    tasks = {r.device_id: r for r in world.store.list_tasks(job.id)}
    bad, refused = tasks[world.device("P0")], tasks[world.device("P1")]
    assert (bad.fault_code, bad.fault_string) == (9018, "file corrupted")
    assert refused.fault_code == 9000 and "refused the Download" in refused.detail
    assert world.store.device_file(world.device("P1"), kind="download", job_id=job.id).state == "failed"
    assert world.store.device_parameters(world.device("P0")).get(
        "Device.X_CISCO_HTTPProxySettings.ProxyHost") is None  # not applied: not known


def test_auto_sends_cfgxml_only_settings_in_a_file_after_the_spv(tmp_path):
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides", "examples"))
    (target / "overrides").mkdir()
    (target / "overrides" / "78xx.toml").write_text('product_class = "CP-78??-3PCC"\n'
                                                   'cfgxml_only = ["Proxy_Host", "Proxy_Port"]\n')
    w = World(load_catalogue(target))
    try:
        job = w.submit(JobOptions())
        w.advance(5)
        assert job.state == "completed" and job.counts["applied"] == PHONES
        key = job.parameter_key
        # The SetParameterValues does not carry the job's key: the transfer tells the end.
        assert all(keys == [f"{key}.1"] for keys in w.phones.spv.values())
        body = w.phones.fetched["P2"][0]
        assert set(parse_cfgxml(body).values) == {"Proxy_Host", "Proxy_Port"}
    finally:
        w.h.close()


def test_a_lost_session_after_the_download_sends_no_second_one(world):
    world.phones.mode["P0"] = "deaf"  # took the Download, will never fetch
    job = world.submit(JobOptions(method="download"))
    world.advance(3)
    task = job.tasks[world.device("P0")]
    assert task.state.value == "transferring"
    # Make the engine forget the transfer (as a crash before DownloadResponse was stored
    # would): the next session finds the file still out and waits instead of resending.
    task.state = type(task.state)("pending")
    job.counts["transferring"] -= 1
    job.counts["pending"] += 1
    job.queue.append(task)
    world.advance(2)
    assert len(world.phones.downloads["P0"]) == 1 and task.state.value == "transferring"
    assert "may still be out" in task.detail
    # The file expires unfetched: nothing reached the phone, so it is offered again.
    world.phones.mode["P0"] = "ok"
    world.advance(70)
    assert len(world.phones.downloads["P0"]) == 2
    assert job.state == "completed" and job.counts["applied"] == PHONES


def test_a_fetched_file_without_transfer_complete_times_out(world):
    world.phones.mode["P2"] = "lose"
    job = world.submit(JobOptions(method="download", max_fault_rate=1.0))
    world.advance(5)
    assert job.tasks[world.device("P2")].state.value == "transferring"
    world.advance(600)
    assert job.state == "completed" and job.counts["faulted"] == 1
    [row] = world.store.list_tasks(job.id, states=["faulted"])
    assert row.detail == "no TransferComplete within 600 s of the Download"


def test_a_restarted_engine_takes_the_transfer_complete_and_sends_nothing_again(world):
    world.phones.mode.update({f"P{i}": "lose" for i in range(PHONES)})
    job = world.submit(JobOptions(method="download"))
    world.advance(3)
    assert job.counts["transferring"] == PHONES
    world.run(world.engine.stop())
    # A new engine on the same store (the server restarted); the phones then report.
    world.engine = world.new_engine()
    world.run(world.engine.start())
    resumed = world.engine.jobs[job.id]
    assert resumed.counts["transferring"] == PHONES and resumed.active == PHONES
    for i in range(PHONES):
        world.phones.pending[f"P{i}"] = [(world.phones.downloads[f"P{i}"][0].command_key, 0)]
        world.run(world.phones.session(f"P{i}", "M Download"))
    world.advance(2)
    assert resumed.state == "completed" and resumed.counts["applied"] == PHONES
    assert all(len(d) == 1 for d in world.phones.downloads.values())
    # A TransferComplete repeated (the phone did not see the acknowledgement) changes nothing.
    world.phones.pending["P0"] = [(world.phones.downloads["P0"][0].command_key, 9018)]
    world.run(world.phones.session("P0", "M Download"))
    assert world.store.list_tasks(job.id, device_id=world.device("P0"))[0].state == "applied"


def test_a_backup_job_asks_for_uploads_and_keeps_versions(world):
    from acs_security.policy.document import Policy

    job = world.submit(JobOptions(), policy=Policy(name="backup", settings={}), kind="backup")
    world.advance(5)
    assert job.state == "completed" and job.counts["applied"] == PHONES
    backup = world.store.get_backup(world.device("P3"))
    assert backup.version == 1 and backup.report["unknown"] == [{"element": "Bogus", "line": 1}]
    tasks = {r.device_id: r for r in world.store.list_tasks(job.id)}
    assert tasks[world.device("P3")].detail == "backup version 1"
    again = world.submit(JobOptions(), policy=Policy(name="backup", settings={}), kind="backup")
    world.advance(5)
    assert again.counts["applied"] == PHONES and world.store.get_backup(world.device("P3")).uploads == 2


def test_a_transfer_broken_on_the_way_is_offered_again_and_an_old_report_is_ignored(world):
    world.phones.mode["P3"] = "flaky"
    job = world.submit(JobOptions(method="download"))
    world.advance(8)
    assert job.state == "completed" and job.counts["applied"] == PHONES
    first, second = world.phones.downloads["P3"]
    assert first.command_key != second.command_key and first.url != second.url
    tasks = {r.device_id: r for r in world.store.list_tasks(job.id)}
    assert tasks[world.device("P3")].detail == "applied by a cfg.xml Download"
    # The first transfer's file is over; a late report of it changes nothing.
    world.phones.pending["P3"] = [(first.command_key, 0)]
    world.run(world.phones.session("P3", "M Download"))
    assert world.store.count_files(world.device("P3"), job_id=job.id, kind="download") == 2
    # ... and its URL no longer opens the file.
    resp = world.run(world.client.get(first.url))
    assert resp.code == 410


def test_a_transfer_that_keeps_failing_on_the_way_is_faulted_after_three(world):
    from acs_security.fleet.transfers import MAX_TRANSFERS

    world.phones.mode["P1"] = "bad-file"
    original = world.phones.transfer

    async def always_9016(serial, req):
        if serial == "P1":
            world.phones.downloads.setdefault("x", [])
            world.phones.pending.setdefault(serial, []).append((req.command_key, 9016))
            world.clock.callLater(1.0, lambda: ensureDeferred(world.phones.session(serial, "M Download")))
            return
        await original(serial, req)

    world.phones.transfer = always_9016
    job = world.submit(JobOptions(method="download", max_fault_rate=1.0))
    world.advance(15)
    assert job.state == "completed" and job.counts["faulted"] == 1
    assert len(world.phones.downloads["P1"]) == MAX_TRANSFERS
    [row] = world.store.list_tasks(job.id, states=["faulted"])
    assert row.fault_code == 9016


def test_two_nodes_the_transfer_complete_reaches_either_node(world):
    """Several nodes on one store: the Download goes out from one node, the TransferComplete
    often reaches the other (the load balancer picks); each phone installs its file once."""
    from acs_security.fleet.cluster import ClusterOptions
    from acs_security.server.cwmp_resource import CwmpResource

    h = world.h
    engines, roots = [], []
    for name in ("node-a", "node-b"):
        offers = FileOffers(store=world.ds, signer=FileSigner(b"s" * 32), clock=world.clock,
                            base_url="http://acs.example.net:7547", ttl=60, transfer_timeout=600, fetch_wait=30)
        engine = FleetEngine(store=world.ds, clock=world.clock, http_requester=world.phones,
                             default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5),
                             random=lambda: 0.5, catalogue=world.catalogue, files=offers,
                             cluster=ClusterOptions(node=name, claim_lease=10, claim_batch=2, sync_interval=1))
        engines.append(engine)
        roots.append(CwmpRoot(CwmpResource(clock=world.clock, store=world.ds, provisioner=engine), world.files))
    clients = [StubTreq(r) for r in roots]
    turn = itertools.count()
    sessions_at: list[int] = []

    def balanced() -> Any:  # each session to the next node, as a load balancer does
        n = next(turn) % 2
        sessions_at.append(n)
        return clients[n]

    world.session_client = balanced
    world.client = clients[1]  # file requests: any node serves them
    for engine in engines:
        world.run(engine.start())
    job = world.run(engines[0].submit(POLICY, parse_selector("all"), JobOptions(method="download"),
                                      deadline=timedelta(hours=1)))
    world.engine = engines[0]
    for _ in range(100):
        world.clock.advance(0.1)
        for c in clients:
            c.flush()
    assert world.store.task_counts(job.id) == {"applied": PHONES}
    assert all(len(d) == 1 for d in world.phones.downloads.values()) and len(world.phones.downloads) == PHONES
    assert set(sessions_at) == {0, 1}
    for engine in engines:
        world.run(engine.stop())
    h.resource._provisioner = None


def test_a_repeated_report_ends_a_file_whose_task_was_decided(world):
    """A crash between committing the task's outcome and ending its file: the phone repeats
    its TransferComplete (it got no acknowledgement), which ends the file and changes nothing
    else."""
    import sqlalchemy as sa

    from acs_security.store import schema as t

    job = world.submit(JobOptions(method="download"))
    world.advance(5)
    assert job.counts["applied"] == PHONES
    download = world.phones.downloads["P2"][0]
    rec = world.store.device_file(world.device("P2"), kind="download", command_key=download.command_key)
    with world.store.engine.begin() as conn:  # as if the file's end had not been committed
        conn.execute(sa.update(t.device_files).where(t.device_files.c.id == rec.id).values(state="fetched"))
    world.phones.pending["P2"] = [(download.command_key, 0)]
    world.run(world.phones.session("P2", "M Download"))
    assert world.store.get_file(rec.id).state == "completed"
    assert world.store.list_tasks(job.id, device_id=world.device("P2"))[0].state == "applied"


def test_a_session_waits_while_the_engine_loads_its_jobs():
    """A restarted server listens before its engine has loaded the unfinished jobs: a session
    (a TransferComplete above all) must not be decided against an engine that does not know
    them yet (it would act on nothing, and the load would then bring the task back as it was)."""
    from twisted.internet.defer import Deferred
    from twisted.internet.task import Clock

    from acs_security.server.sessions import SessionContext

    class SlowStore:
        def __init__(self) -> None:
            self.pending: Deferred[Any] = Deferred()

        def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
            assert name == "list_jobs"
            return self.pending

    store = SlowStore()
    engine = FleetEngine(store=store, clock=Clock(), catalogue=load_catalogue())
    starting = ensureDeferred(engine.start())
    session = ensureDeferred(engine.session_started(SessionContext(token="t", session=None, started=0.0,
                                                                   remote=None, device_id="D")))
    assert not starting.called and not session.called
    store.pending.callback([])
    assert starting.called and session.called
    ensureDeferred(engine.stop())
