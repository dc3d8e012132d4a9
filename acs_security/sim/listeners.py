"""Connection-request listeners of the simulated fleet, over Twisted (TR-069 3.2.2, Annex G).

HTTP: one port for all phones, routed by path: phone ``SERIAL`` listens at ``/SERIAL`` (the
ConnectionRequestURL it reports). Every request is challenged with digest (MD5 and SHA-256,
``qop=auth``) checked against that phone's own ConnectionRequestUsername/Password by
:class:`~acs_security.httpauth.twisted_resource.DigestProtectedResource`; bad credentials
get 401 again. Only then does the fleet decide: 200 (the phone will call in with
"6 CONNECTION REQUEST"), or 503 + Retry-After when the phone is in a session or asked too
often. A phone that cannot answer (offline, TR-069 disabled by FIPS mode) drops the
connection.

UDP: one port for all phones; a datagram is routed by its ``un=`` username and verified by
that phone's :class:`~acs_security.connreq.udp.UdpRequestVerifier` (signature, timestamp
window, id not seen before); anything else is ignored, as the phone would (UDP has no answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import NoResource, Resource

from acs_security.httpauth.digest import DigestVerifier
from acs_security.httpauth.result import AuthResult
from acs_security.httpauth.twisted_resource import DigestProtectedResource
from acs_security.sim.phone import Phone

__all__ = ["ConnectionRequestHooks", "ConnectionRequestRoot", "UdpConnectionRequestProtocol", "tracked_nonces_for"]


def tracked_nonces_for(phones: int) -> int:
    """How many nonces the fleet's one shared DigestVerifier tracks (max_tracked_nonces).

    The ACS reuses each phone's last nonce for up to 240 s (RFC 7616 nc, connreq/
    digest_cache.py), within the 300 s nonce lifetime, so up to one live nonce per phone
    is in use, and a few more when jobs overlap. A tracker smaller than that drops live
    nonces under pressure: their reuse, and the first use of any nonce issued no later
    than a dropped one, is answered stale (httpauth/nonces.py), an extra request per
    phone. Two per phone keeps a fleet below the pressure point; ~100 bytes an entry.
    """
    return max(10_000, 2 * phones)


class ConnectionRequestHooks(Protocol):
    """What the listeners ask the fleet."""

    def find_phone(self, serial: str) -> Phone | None:
        """The phone listening at ``/serial``, or None."""

    def unreachable(self, phone: Phone) -> bool:
        """True when the phone does not answer at all (offline, TR-069 off)."""

    def answer_delay(self, phone: Phone) -> float:
        """Seconds before the phone answers (slow phones)."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds (cancelled when the fleet stops)."""

    def auth_result(self, phone: Phone, result: AuthResult) -> None:
        """Every digest check's result (for counters)."""

    def connection_request(self, phone: Phone, via: str) -> tuple[int, float | None]:
        """An authenticated request: (200 or 503, Retry-After seconds or None)."""

    def udp_datagram(self, data: bytes) -> None:
        """A datagram arrived on the UDP listener."""


class _Drop(Resource):
    """Closes the connection without an answer: a phone that is not there."""

    isLeaf = True

    def render(self, request: IRequest) -> Any:
        transport = getattr(request, "transport", None) or getattr(getattr(request, "channel", None), "transport", None)
        if transport is not None:
            transport.abortConnection()
        return server.NOT_DONE_YET


class _Accept(Resource):
    """Behind the digest check: ask the fleet, answer with an empty body (TR-069 3.2.2)."""

    isLeaf = True

    def __init__(self, hooks: ConnectionRequestHooks, phone: Phone) -> None:
        super().__init__()
        self._hooks = hooks
        self._phone = phone

    def render(self, request: IRequest) -> Any:
        delay = self._hooks.answer_delay(self._phone)
        if delay <= 0:
            return self._answer(request)

        def later() -> None:
            if not getattr(request, "_disconnected", False):
                body = self._answer(request)
                request.write(body)
                request.finish()

        self._hooks.call_later(delay, later)
        return server.NOT_DONE_YET

    def _answer(self, request: IRequest) -> bytes:
        status, retry_after = self._hooks.connection_request(self._phone, "http")
        request.setResponseCode(status)
        if retry_after is not None:
            request.setHeader(b"Retry-After", str(max(1, round(retry_after))).encode())
        request.setHeader(b"Content-Length", b"0")
        return b""


class ConnectionRequestRoot(Resource):
    """``/SERIAL`` -> that phone's digest-protected connection-request resource."""

    def __init__(self, hooks: ConnectionRequestHooks, verifier: DigestVerifier,
                 clock: IReactorTime, random_bytes: Callable[[int], bytes]) -> None:
        super().__init__()
        self._hooks = hooks
        self._verifier = verifier
        self._clock = clock
        self._random_bytes = random_bytes

    def getChild(self, path: bytes, request: IRequest) -> Resource:  # noqa: N802 - Twisted's interface name
        try:
            serial = path.decode("ascii")
        except UnicodeDecodeError:
            return NoResource()
        phone = self._hooks.find_phone(serial)
        if phone is None:
            return NoResource("no such phone")
        if self._hooks.unreachable(phone):
            return _Drop()
        username, password = phone.cr_credentials()

        def lookup(user: str) -> str | None:
            # Read per request: an ACS that changed the credentials is checked against
            # the new ones at once.
            return password if user == username else None

        hooks = self._hooks
        return DigestProtectedResource(
            _Accept(hooks, phone), self._verifier, lookup, self._clock,
            self._random_bytes, on_result=lambda result: hooks.auth_result(phone, result),
        )

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(404)
        return b"connection requests go to /SERIAL\n"


class UdpConnectionRequestProtocol(DatagramProtocol):
    """Hands every datagram to the fleet, which routes and verifies it."""

    def __init__(self, hooks: ConnectionRequestHooks) -> None:
        self._hooks = hooks

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:  # noqa: N802 - Twisted's interface name
        self._hooks.udp_datagram(datagram)
