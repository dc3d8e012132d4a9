"""A CWMP session whose TCP connection drops: a CPE that drops cookies loses its session at
once (device, lease and provisioner released); one that returns the cookie keeps it for the
session timeout (TR-069 section 3.4.1). Real envelopes through the real listener stack
(edge, channel, CwmpResource, store) over StringTransports, on a fake clock."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.server.leases import DeviceLeases
from acs_security.store.records import make_device_id
from tests.server.harness import body_message, inform, make_harness
from tests.server.wire import Conn, Wire, request

DEV = make_device_id("00000C", "CP-8851-3PCC", "FCH2231A0B1")
PARAM = "Device.X_CISCO_SecuritySettings.TLSCipherList"


class Provisioner:
    """Sends one GetParameterValues; ``gate``, when set, holds handle_response (or the
    session start) until fired."""

    def __init__(self, requests: int = 1) -> None:
        self.left = requests
        self.responses: list = []
        self.ended: list[str] = []
        self.gate: Deferred | None = None
        self.start_gate: Deferred | None = None

    async def session_started(self, ctx):
        if self.start_gate is not None:
            await self.start_gate

    async def next_request(self, ctx):
        if not self.left:
            return None
        self.left -= 1
        return m.GetParameterValues((PARAM,))

    async def handle_response(self, ctx, request, response):
        if self.gate is not None:
            await self.gate
        self.responses.append(response)

    async def session_ended(self, ctx, outcome):
        self.ended.append(outcome)


def post(conn: Conn, body: bytes, cookie: str | None = None):
    headers = {"Cookie": f"acs_session={cookie}"} if cookie else {}
    conn.send(request("POST", body, headers=headers))
    answers = conn.responses()
    return answers[0] if answers else None


def gpv_response(cwmp_id: str) -> bytes:
    return build_envelope(m.GetParameterValuesResponse((m.ParameterValue(PARAM, "HIGH", "string"),)),
                          namespace=CWMP_1_0, cwmp_id=cwmp_id)


def cookie_of(answer) -> str:
    return answer.headers["set-cookie"].split(";")[0].split("=", 1)[1]


def setup(leases: bool = False, requests: int = 1):
    prov = Provisioner(requests)
    h = make_harness(provisioner=prov)
    if leases:
        tokens = iter(f"tok{i}" for i in range(100))
        h.resource = CwmpResource(clock=h.clock, store=h.dstore, provisioner=prov, session_timeout=30,
                                  token_source=lambda: next(tokens), session_observer=h.log.append,
                                  device_leases=DeviceLeases(h.dstore, h.clock, "node-a", 90))
    wire = Wire(h.resource, channel_lost=h.resource.channel_lost, clock=h.clock, idle_timeout=30)
    return h, prov, wire


def test_a_cookieless_session_ends_when_its_connection_drops_and_the_device_may_come_back_at_once():
    h, prov, w = setup()
    c = w.connect()
    assert post(c, inform()).status == 200
    answer = post(c, b"")  # no cookie: the session is found by its connection
    assert isinstance(body_message(answer.body), m.GetParameterValues)
    c.lose()
    assert prov.ended == ["disconnected"] and len(h.resource.sessions) == 0
    assert h.log[-1]["outcome"] == "disconnected" and h.log[-1]["detail"] == "connection lost"
    again = w.connect(port=2)
    assert post(again, inform(events=("1 BOOT",))).status == 200, "not refused with 503"
    h.close()


def test_a_cookie_session_survives_its_connection_and_goes_on_over_a_new_one():
    h, prov, w = setup()
    c = w.connect()
    token = cookie_of(post(c, inform()))
    gpv = parse_envelope(post(c, b"", cookie=token).body)
    c.lose()
    assert prov.ended == [] and len(h.resource.sessions) == 1
    # The device is still in its session: a new session of it is refused...
    other = w.connect(port=2)
    assert post(other, inform()).status == 503
    # ...while the session itself carries on over a new connection.
    resumed = w.connect(port=3)
    assert post(resumed, gpv_response(gpv.cwmp_id), cookie=token).status == 204
    assert prov.ended == ["done"] and isinstance(prov.responses[0], m.GetParameterValuesResponse)
    h.close()


def test_a_session_dropped_after_its_inform_response_waits_for_the_cookie():
    h, prov, w = setup()
    c = w.connect()
    token = cookie_of(post(c, inform()))
    c.lose()  # the CPE got the cookie and may carry on over a new connection
    assert prov.ended == [] and len(h.resource.sessions) == 1
    resumed = w.connect(port=2)
    assert isinstance(body_message(post(resumed, b"", cookie=token).body), m.GetParameterValues)
    h.clock.advance(30)
    assert prov.ended == ["timeout"]
    h.close()


def test_a_drop_while_a_request_is_handled_ends_the_session_once_it_is_handled():
    h, prov, w = setup(requests=2)
    c = w.connect()
    post(c, inform())
    gpv = parse_envelope(post(c, b"").body)
    prov.gate = Deferred()
    c.send(request("POST", gpv_response(gpv.cwmp_id)))
    c.lose()
    assert prov.ended == [] and len(h.resource.sessions) == 1, "not while the provisioner works"
    prov.gate.callback(None)
    assert isinstance(prov.responses[0], m.GetParameterValuesResponse)
    assert prov.ended == ["disconnected"] and len(h.resource.sessions) == 0
    h.close()


def test_a_drop_before_the_inform_response_was_written_ends_the_session():
    h, prov, w = setup()
    prov.start_gate = Deferred()
    c = w.connect()
    c.send(request("POST", inform()))
    c.lose()  # the CPE never receives its cookie
    prov.start_gate.callback(None)
    assert prov.ended == ["disconnected"] and len(h.resource.sessions) == 0
    again = w.connect(port=2)
    prov.start_gate = None
    assert post(again, inform()).status == 200
    h.close()


def test_the_devices_store_lease_is_released_when_a_cookieless_session_drops():
    h, prov, w = setup(leases=True)
    c = w.connect()
    post(c, inform())
    post(c, b"")
    assert h.store.device_session(DEV) is not None
    c.lose()
    assert h.store.device_session(DEV) is None and prov.ended == ["disconnected"]
    h.close()
