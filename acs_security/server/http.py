"""HTTP plumbing shared by the server's resources: bounded request bodies and decoding,
time limits per phase of a request, the client's address behind a trusted proxy.

A CWMP body is read whole before parsing, so its size is bounded twice: on the wire
(:class:`LimitedRequest` stops reading and answers 413 as soon as the declared or received
length passes the limit, so a 50 MB body costs the server nothing) and after
decompression (:func:`decode_body` inflates gzip/deflate with a cap, so a small
compressed bomb cannot grow into a large one).
"""

from __future__ import annotations

import zlib
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server

from acs_security.server.addresses import forwarded_client, normalize
from acs_security.server.edge import EdgeLimits, busy_response, edge_of

__all__ = ["BodyError", "LimitedRequest", "LimitedChannel", "make_site", "decode_body"]


class BodyError(Exception):
    """The request body cannot be used; ``status`` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate Content-Encoding, refusing results larger than ``limit`` bytes.

    Raises BodyError(415) for other encodings, BodyError(400) for corrupt data and
    BodyError(413) when the inflated body passes the limit.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(raw) > limit:
            raise BodyError(413, f"body of {len(raw)} bytes exceeds the limit of {limit}")
        return raw
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110 says zlib-wrapped; some clients send raw deflate. Try zlib first.
        wbits = zlib.MAX_WBITS if raw[:1] and (raw[0] & 0x0F) == 8 else -zlib.MAX_WBITS
    else:
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"corrupt {encoding} body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, f"truncated {encoding} body")
    return out


_TOO_LARGE = (
    b"HTTP/1.1 413 Payload Too Large\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\n"
    b"request body too large\n"
)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\n"
    b"request timeout\n"
)


def _limits(site: Any) -> EdgeLimits:
    return getattr(site, "edge_limits", None) or _DEFAULT_LIMITS


_DEFAULT_LIMITS = EdgeLimits()


class LimitedRequest(server.Request):
    """A Request that refuses bodies over ``channel.site.max_body_bytes`` while they arrive,
    and that knows its client behind a trusted proxy (X-Forwarded-For, server/addresses.py)."""

    _received = 0
    _refused = False

    @property
    def _site(self) -> Any:
        return getattr(self.channel, "site", None)

    def _limit(self) -> int:
        return getattr(self._site, "max_body_bytes", 1024 * 1024)

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's interface name
        # The request's headers are all in: who the client is can be settled first.
        if not self._find_client():
            self._refuse(busy_response(_limits(self._site).retry_after))
            length = 0
        elif length is not None and length > self._limit():
            self._refuse(_TOO_LARGE)
            length = 0
        super().gotLength(length)

    def _find_client(self) -> bool:
        """Take the client's address from X-Forwarded-For when the peer is a trusted proxy,
        and count the connection under it; False when that address is at its cap."""
        forwarded = self.requestHeaders.getRawHeaders(b"x-forwarded-for")
        peer = getattr(self.client, "host", None)
        if not forwarded or not isinstance(peer, str):
            return True
        limits = _limits(self._site)
        peer = normalize(peer) or peer
        if peer not in limits.trusted:
            return True  # anybody can write the header: ignored from anyone else
        client = forwarded_client([v.decode("latin-1") for v in forwarded], peer, limits.trusted)
        if client == peer:
            return True
        self.client = (IPv6Address if ":" in client else IPv4Address)("TCP", client, 0)
        edge = edge_of(self.channel.transport)
        if edge is not None and not edge.claim(client):
            limits.report("refused", edge.listener, "max_connections_per_ip")
            return False
        return True

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse(_TOO_LARGE)
            return
        super().handleContentChunk(data)

    def _refuse(self, answer: bytes) -> None:
        if not self._refused:
            self._refused = True
            transport: Any = self.channel.transport
            if transport is not None:
                transport.write(answer)
                transport.loseConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._refused:
            # The 413/503 is already on the wire; do not dispatch the request.
            return
        super().requestReceived(command, path, version)


class LimitedChannel(http.HTTPChannel):
    """HTTP/1.1 channel with time limits per phase of a request, which tells the site when
    the connection ends (cookie-less sessions).

    Twisted's own timeout (TimeoutMixin, 60 s) restarts with every byte received, so a
    client sending a header byte every few seconds keeps a connection forever (slowloris).
    Here each phase has a deadline that data does not move: the request line and headers
    within ``header_timeout`` of the connection or of the request's first byte, the whole
    body within ``body_timeout`` of the headers, and the next request's first byte within
    ``idle_timeout`` of the previous response (a kept-alive connection). While a request is
    being handled no deadline runs (the application answers, or its own timeouts do).
    """

    # Replaced by the phases below.
    timeOut = None
    # Seconds a timed-out connection has to take its 408 before it is aborted.
    abortTimeout = 5
    site: Any = None
    _phase: str | None = None
    _phase_call: Any = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's interface name
        super().connectionMade()
        self._arm("header_timeout")

    def _arm(self, phase: str | None) -> None:
        """Start ``phase``'s deadline, replacing the current one; None: no deadline. One timer
        serves every phase of the connection: moved (reset), not cancelled and made anew, and
        left to fire into nothing while no phase runs (a request being handled)."""
        self._phase = phase
        if phase is None:
            return
        seconds = getattr(_limits(self.site), phase)
        call = self._phase_call
        if call is not None and call.active():
            call.reset(seconds)
        else:
            self._phase_call = self.callLater(seconds, self._expired)

    def _expired(self) -> None:
        phase, self._phase_call = self._phase, None
        if phase is None or self.transport is None:
            return
        edge = edge_of(self.transport)
        _limits(self.site).report("closed", edge.listener if edge is not None else "http", phase)
        if phase != "idle_timeout" and self.requests:
            # A request was begun: say why it ends (RFC 9110 section 15.5.9).
            transport: Any = self.transport
            transport.write(_TIMED_OUT)
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._phase == "idle_timeout" and data:
            self._arm("header_timeout")
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:  # noqa: N802 - Twisted's interface name
        self._arm("body_timeout" if self.length != 0 else None)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:  # noqa: N802 - Twisted's interface name
        self._arm(None)
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:  # noqa: N802 - Twisted's interface name
        # Armed before Twisted replays data that came early, which may begin (or hold all
        # of) the next request and re-arm the phases as it goes.
        if self.persistent:
            self._arm("header_timeout" if any(self._dataBuffer) else "idle_timeout")
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802 - Twisted's interface name
        self._phase = None
        if self._phase_call is not None and self._phase_call.active():
            self._phase_call.cancel()
        self._phase_call = None
        hook = getattr(self.site, "channel_lost", None)
        if hook is not None:
            hook(self)
        super().connectionLost(reason)


def make_site(resource: Any, *, max_body_bytes: int, reactor: Any = None, channel_lost: Any = None,
              limits: EdgeLimits | None = None) -> server.Site:
    """A Site whose requests have bounded bodies and time limits (``limits``), and whose
    channels report their end."""
    kwargs: dict[str, Any] = {"reactor": reactor} if reactor is not None else {}
    try:
        # Neither CWMP (text/xml) nor the management API (JSON) takes HTML form posts. With
        # form parsing on, twisted.web parses every POST's Content-Type through the email
        # package's header registry: 8 % of the ACS's CPU per CWMP session (measured with
        # py-spy, bench/ figure 2, docs/performance.md).
        site = server.Site(resource, parsePOSTFormSubmission=False, **kwargs)
    except TypeError:  # a Twisted without the switch
        site = server.Site(resource, **kwargs)
    site.requestFactory = LimitedRequest
    site.protocol = LimitedChannel  # type: ignore[assignment,method-assign]  # typed as Twisted's own factory
    site.timeOut = None
    site.max_body_bytes = max_body_bytes  # type: ignore[attr-defined]
    site.edge_limits = limits or _DEFAULT_LIMITS  # type: ignore[attr-defined]
    site.channel_lost = channel_lost  # type: ignore[attr-defined]
    site.displayTracebacks = False
    # "Starting factory" lines: the server logs its own "listening ..." line.
    site.noisy = False
    # twisted.web's access log would record every CWMP POST; the session log line replaces it.
    site.log = lambda request: None  # type: ignore[method-assign]
    return site
