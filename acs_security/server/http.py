"""HTTP plumbing shared by the server's resources: bounded request bodies and decoding.

A CWMP body is read whole before parsing, so its size is bounded twice: on the wire
(:class:`LimitedRequest` stops reading and answers 413 as soon as the declared or received
length passes the limit, so a 50 MB body costs the server nothing) and after
decompression (:func:`decode_body` inflates gzip/deflate with a cap, so a small
compressed bomb cannot grow into a large one).
"""

from __future__ import annotations

import zlib
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server

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


class LimitedRequest(server.Request):
    """A Request that refuses bodies over ``channel.site.max_body_bytes`` while they arrive."""

    _received = 0
    _too_large = False

    def _limit(self) -> int:
        # Site.buildProtocol sets channel.site; Twisted's HTTPChannel does not declare it.
        return getattr(self.channel.site, "max_body_bytes", 1024 * 1024)  # type: ignore[attr-defined]

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's interface name
        if length is not None and length > self._limit():
            self._refuse()
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._too_large:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        if not self._too_large:
            self._too_large = True
            transport = self.channel.transport
            if transport is not None:
                transport.write(_TOO_LARGE)
                transport.loseConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._too_large:
            # The 413 is already on the wire; do not dispatch the truncated request.
            return
        super().requestReceived(command, path, version)


class LimitedChannel(http.HTTPChannel):
    """HTTP/1.1 channel that tells the site when the connection ends (cookie-less sessions)."""

    site: server.Site  # set by Site.buildProtocol

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802 - Twisted's interface name
        hook = getattr(self.site, "channel_lost", None)
        if hook is not None:
            hook(self)
        super().connectionLost(reason)


def make_site(resource: Any, *, max_body_bytes: int, reactor: Any = None, channel_lost: Any = None) -> server.Site:
    """A Site whose requests have bounded bodies and whose channels report their end."""
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
    site.max_body_bytes = max_body_bytes  # type: ignore[attr-defined]
    site.channel_lost = channel_lost  # type: ignore[attr-defined]
    site.displayTracebacks = False
    # "Starting factory" lines: the server logs its own "listening ..." line.
    site.noisy = False
    # twisted.web's access log would record every CWMP POST; the session log line replaces it.
    site.log = lambda request: None  # type: ignore[method-assign]
    return site
