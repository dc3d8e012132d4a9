"""The engine's choice of a method per phone, end to end through the CWMP endpoint (real
CWMP bytes over in-memory HTTP, fake clock, SQLite in memory): phones behind NAT reached by
a fake XMPP requester, phones without a configured credential reached without one, and the
method in the job report."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import ensureDeferred, succeed

from acs_security.connreq.http_client import ConnectionRequestResult, ResultKind
from acs_security.connreq.methods import WakeResult
from acs_security.cwmp import messages as m
from acs_security.fleet.engine import EngineLimits, FleetEngine
from acs_security.service import FleetService
from tests.fleet.test_engine import ScriptedPhones, advance, submit
from tests.server.harness import make_harness

MS = "Device.ManagementServer."


class FakeXmpp:
    """An XMPP requester whose phones open their session when asked (Annex K)."""

    def __init__(self, phones: ScriptedPhones) -> None:
        self.phones = phones
        self.calls: list[tuple[str, str, str]] = []

    def request(self, jid: str, username: str, password: str) -> Any:
        self.calls.append((jid, username, password))
        serial = jid.split("@", 1)[0].upper()
        self.phones.h.clock.callLater(0.1, lambda: ensureDeferred(self.phones.session(serial, "6 CONNECTION REQUEST")))
        return succeed(WakeResult(True))


class CountingHttp(ScriptedPhones):
    def __init__(self, harness: Any, challenge: bool = False) -> None:
        super().__init__(harness)
        self.challenge = challenge
        self.calls: list[tuple[str, Any, Any]] = []

    def request(self, url: str, username: Any, password: Any) -> Any:
        self.calls.append((url, username, password))
        if self.challenge and username is None:
            return succeed(ConnectionRequestResult(ResultKind.NEEDS_CREDENTIAL, 401,
                                                   detail="needs a connection-request credential"))
        return super().request(url, username, password)


def _world(*, challenge: bool = False, credential: tuple[str, str] | None = ("cr", "pw"), xmpp: bool = True) -> Any:
    h = make_harness()
    phones = CountingHttp(h, challenge=challenge)
    fake = FakeXmpp(phones) if xmpp else None
    engine = FleetEngine(store=h.dstore, clock=h.clock, http_requester=phones, xmpp_requester=fake,
                         default_cr_credential=credential, limits=EngineLimits(tick=0.5), random=lambda: 0.5)
    h.resource._provisioner = engine
    return h, phones, fake, engine, FleetService(h.dstore, engine=engine, clock=h.clock)


def _boot(h: Any, phones: ScriptedPhones, n: int, *, natted: set[int]) -> None:
    for i in range(n):
        serial = f"P{i:03d}"
        if i in natted:
            phones.url[serial] = f"http://192.168.1.{10 + i}:7547/{serial}"
            phones.extra[serial] = (m.ParameterValue(MS + "NATDetected", True, "boolean"),
                                    m.ParameterValue(MS + "ConnReqJabberID", f"{serial.lower()}@xmpp.example.net/cwmp",
                                                     "string"))
        ensureDeferred(phones.session(serial, "1 BOOT"))
    h.client.flush()


def _report(h: Any, service: FleetService, job_id: int) -> dict[str, Any]:
    out: list[Any] = []
    ensureDeferred(service.job_report(job_id)).addBoth(out.append)
    h.client.flush()
    assert out and isinstance(out[0], dict), out
    return out[0]


def test_phones_behind_nat_without_binding_are_reached_by_xmpp() -> None:
    h, phones, fake, engine, service = _world()
    try:
        _boot(h, phones, 6, natted={1, 3, 5})
        job = submit(engine, h)
        advance(h, 6)
        assert job.state == "completed", job.counts
        assert sorted(c[0] for c in fake.calls) == [f"p00{i}@xmpp.example.net/cwmp" for i in (1, 3, 5)]
        assert all(c[1:] == ("cr", "pw") for c in fake.calls)
        # The phones behind NAT got no HTTP request (their URLs are private addresses).
        assert sorted(c[0].rsplit("/", 1)[-1] for c in phones.calls) == ["P000", "P002", "P004"]
        report = _report(h, service, job.id)
        by = {d["serial_number"]: d["reached_by"] for d in report["devices"]}
        assert by == {"P000": "http", "P001": "xmpp", "P002": "http", "P003": "xmpp", "P004": "http",
                      "P005": "xmpp"}
        assert all(d["state"] == "applied" for d in report["devices"])
        csv = ensureDeferred(service.job_report(job.id, fmt="csv"))
        out: list[Any] = []
        csv.addBoth(out.append)
        h.client.flush()
        header, first = out[0].decode().splitlines()[:2]
        assert "reached_by" in header.split(",") and ",http," in first
    finally:
        h.close()


def test_without_xmpp_phones_behind_nat_wait_for_their_periodic_inform() -> None:
    h, phones, _, engine, service = _world(xmpp=False)
    try:
        _boot(h, phones, 2, natted={1})
        job = submit(engine, h)
        advance(h, 3)
        task = job.tasks[[d for d in job.tasks if d.endswith("P001")][0]]
        assert task.cr_exhausted and task.detail == "waiting for a periodic Inform (behind NAT)"
        # Its periodic Inform comes: applied, and the report says how.
        ensureDeferred(phones.session("P001", "2 PERIODIC"))
        advance(h, 2)
        assert job.state == "completed"
        by = {d["serial_number"]: d["reached_by"] for d in _report(h, service, job.id)["devices"]}
        assert by == {"P000": "http", "P001": "periodic"}
    finally:
        h.close()


def test_no_credential_tries_http_without_one() -> None:
    h, phones, _, engine, _service = _world(credential=None)
    try:
        _boot(h, phones, 3, natted=set())
        job = submit(engine, h)
        advance(h, 5)
        assert job.state == "completed"
        assert {c[1:] for c in phones.calls} == {(None, None)}
    finally:
        h.close()


def test_a_phone_that_challenges_needs_a_credential_and_waits() -> None:
    h, phones, _, engine, _service = _world(credential=None, challenge=True)
    try:
        _boot(h, phones, 2, natted=set())
        job = submit(engine, h)
        advance(h, 5)
        for task in job.tasks.values():
            assert task.cr_exhausted and task.attempts == 1
            assert task.detail == ("connection request failed (needs a connection-request credential); "
                                   "waiting for the next periodic Inform")
        assert len(phones.calls) == 2  # one request each: retrying cannot help
    finally:
        h.close()


class FakeUdp:
    """A UDP requester whose phones open their session when the datagram comes (Annex G)."""

    def __init__(self, phones: ScriptedPhones, serial_of: dict[str, str]) -> None:
        self.phones = phones
        self.serial_of = serial_of
        self.calls: list[tuple[str, str, str]] = []

    def send(self, address: str, username: str, password: str) -> Any:
        from acs_security.connreq.udp_client import UdpSendResult

        self.calls.append((address, username, password))
        serial = self.serial_of[address]
        self.phones.h.clock.callLater(0.1, lambda: ensureDeferred(self.phones.session(serial, "6 CONNECTION REQUEST")))
        return succeed(UdpSendResult(address, 1, 1))


def test_a_phone_whose_binding_went_stale_is_woken_by_udp_at_its_next_keepalive() -> None:
    h = make_harness()
    phones = CountingHttp(h)
    udp = FakeUdp(phones, {"198.51.100.7:40001": "P001"})
    engine = FleetEngine(store=h.dstore, clock=h.clock, http_requester=phones, udp_requester=udp,
                         default_cr_credential=("cr", "pw"), limits=EngineLimits(tick=0.5, stun_keepalive=30),
                         random=lambda: 0.5)
    h.resource._provisioner = engine
    service = FleetService(h.dstore, engine=engine, clock=h.clock)
    try:
        _boot(h, phones, 2, natted={1})
        phones.extra["P001"] += (m.ParameterValue(MS + "UDPConnectionRequestAddress", "198.51.100.7:40001",
                                                  "string"),)
        ensureDeferred(phones.session("P001", "4 VALUE CHANGE"))
        h.client.flush()
        job = submit(engine, h)
        advance(h, 2)
        task = job.tasks[[d for d in job.tasks if d.endswith("P001")][0]]
        assert task.cr_exhausted and task.detail == "waiting for a periodic Inform (behind NAT, no fresh STUN binding)"
        assert udp.calls == []
        # The phone's keep-alive reaches the STUN server (device unknown by username).
        engine.note_udp_binding(None, "198.51.100.7:40001", h.clock.seconds())
        advance(h, 3)
        assert job.state == "completed" and udp.calls == [("198.51.100.7:40001", "cr", "pw")]
        by = {d["serial_number"]: d["reached_by"] for d in _report(h, service, job.id)["devices"]}
        assert by == {"P000": "http", "P001": "udp"}
    finally:
        h.close()
