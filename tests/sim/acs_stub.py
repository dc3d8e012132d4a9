"""A small in-memory ACS for scheduling tests without sockets.

It is a real twisted.web resource driving the project's own sans-IO ACS session machine
(``acs_security.cwmp.session.Session``), reached through ``treq.testing.RequestTraversalAgent``;
it records every Inform and answer, and can be told to send requests, answer 503 or 500.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import Resource

from acs_security.cwmp import messages as m
from acs_security.cwmp.session import CpeFault, CpeRequest, CpeResponse, InformReceived, Session


@dataclass
class SeenInform:
    at: float
    serial: str
    events: tuple[str, ...]
    retry_count: int
    params: dict[str, Any]


class StubAcs(Resource):
    isLeaf = True

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.clock = clock
        self.informs: list[SeenInform] = []
        self.answers: list[tuple[str, m.Message, m.Message]] = []
        self.queue: dict[str, list[m.Message]] = defaultdict(list)
        self.sessions: dict[bytes, tuple[Session, str]] = {}
        self.busy = 0
        self.fail = 0
        self.files: dict[bytes, bytes] = {}
        self.cpe_requests: list[tuple[str, m.Message]] = []
        self._tokens = 0

    def events_of(self, serial: str) -> list[tuple[str, ...]]:
        return [i.events for i in self.informs if i.serial == serial]

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - Twisted's interface name
        body = self.files.get(request.path)
        if body is None:
            request.setResponseCode(404)
            return b"no such file"
        return body

    def render_POST(self, request: Any) -> bytes:  # noqa: N802 - Twisted's interface name
        body = request.content.read()
        token = request.getCookie(b"s")
        if token is None or token not in self.sessions:
            if self.busy:
                self.busy -= 1
                request.setResponseCode(503)
                request.setHeader(b"Retry-After", b"7")
                return b""
            if self.fail:
                self.fail -= 1
                request.setResponseCode(500)
                return b"down"
            session = Session()
            event = session.receive(body)
            assert isinstance(event, InformReceived), event
            inform = event.inform
            serial = inform.device_id.serial_number
            self.informs.append(SeenInform(self.clock.seconds(), serial, inform.event_codes,
                                           inform.retry_count, inform.parameter_map))
            self._tokens += 1
            token = b"t%d" % self._tokens
            self.sessions[token] = (session, serial)
            request.addCookie(b"s", token)
            out = session.respond(m.InformResponse())
        else:
            session, serial = self.sessions[token]
            event = session.receive(body)
            if isinstance(event, CpeRequest):
                self.cpe_requests.append((serial, event.message))
                out = session.answer_default(event.message)
                request.setResponseCode(out.status)
                for name, value in out.headers:
                    request.setHeader(name.encode(), value.encode())
                return out.body
            if isinstance(event, (CpeResponse, CpeFault)):
                answer = event.response if isinstance(event, CpeResponse) else event.fault
                self.answers.append((serial, event.request, answer))
            if session.can_send_request and self.queue[serial]:
                out = session.send_request(self.queue[serial].pop(0))
            else:
                out = session.finish()
                del self.sessions[token]
        request.setResponseCode(out.status)
        for name, value in out.headers:
            request.setHeader(name.encode(), value.encode())
        return out.body
