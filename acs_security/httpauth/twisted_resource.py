"""A Twisted resource that demands HTTP digest before handing a request on.

Used wherever a server checks digest: the simulated phones guard their connection-request
URL with it (TR-069 section 3.2.2: the CPE must authenticate the ACS with digest), and
tests of the ACS's connection-request client run against it. All decisions are made by
:class:`~acs_security.httpauth.digest.DigestVerifier`; this class only moves headers.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from acs_security.httpauth.digest import DigestVerifier
from acs_security.httpauth.result import AuthResult

__all__ = ["DigestProtectedResource", "header_text"]


def header_text(raw: bytes) -> str:
    """A header value as text: UTF-8 when valid (RFC 7616 ``charset=UTF-8``), else
    ISO-8859-1, which maps every byte and so never fails."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class DigestProtectedResource(Resource):
    """Guards ``wrapped``: requests without valid digest credentials get 401 + challenge.

    A leaf: every request below this resource is checked, then given to
    ``wrapped.render``. ``lookup(username)`` returns the current password or None and is
    called per request, so a password changed at run time applies at once.
    ``on_result`` sees every :class:`AuthResult` (for counters and logs; it holds no
    secret). ``random_bytes(n)`` supplies nonce randomness (``os.urandom`` in production).
    """

    isLeaf = True

    def __init__(
        self,
        wrapped: IResource,
        verifier: DigestVerifier,
        lookup: Callable[[str], str | None],
        clock: IReactorTime,
        random_bytes: Callable[[int], bytes],
        *,
        on_result: Callable[[AuthResult], None] | None = None,
    ) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._verifier = verifier
        self._lookup = lookup
        self._clock = clock
        self._random_bytes = random_bytes
        self._on_result = on_result

    def render(self, request: IRequest) -> bytes | int:
        raw = request.getHeader(b"authorization")
        authorization = header_text(raw) if raw is not None else None
        method = header_text(request.method)
        uri = header_text(request.uri)
        now = self._clock.seconds()
        result = self._verifier.verify(method, uri, authorization, now, self._lookup)
        if self._on_result is not None:
            self._on_result(result)
        if result.ok:
            rendered: bytes | int = self._wrapped.render(request)
            return rendered
        request.setResponseCode(result.http_status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        if result.http_status == 400:
            return b"malformed Authorization header\n"
        challenges = self._verifier.challenge(now, self._random_bytes(16), stale=result.stale)
        request.responseHeaders.setRawHeaders(
            b"www-authenticate", [value.encode("utf-8") for value in challenges]
        )
        return b"authentication required\n"
