"""The simulated phones' HTTP(S) client, over Twisted: name resolution, TLS, bodies.

* Name resolution like curl's ``--resolve HOST:ADDR``: the demo runs the ACS as
  ``acs.example.net`` (the host the example policy's Restricted Access Domains name), and
  :class:`PhoneEndpointFactory` maps that host to the address given. TLS keeps the original
  host name for SNI and certificate checks (TR-069 Amendment 6 section 3.3: the CPE checks the
  ACS certificate against the host of the ACS URL).
* TLS from the phone's own settings (:func:`client_tls`): the minimum version from
  TLS_Min_Version / TLS_Client_Min_Version, the maximum the firmware speaks, the cipher list
  from TLS_Cipher_List (blank or unusable: OpenSSL DEFAULT, as the phone's curl does, seed
  000). A lockout therefore happens in a real handshake.
* Bodies: a fixed-length producer, and a reader that stops at a size limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import ssl
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import URI, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from acs_security.httpauth import (
    AuthHeaderError,
    basic_authorization,
    digest_authorization,
    parse_challenges,
)
from acs_security.sim.cpe_session import HttpPost, HttpReply

__all__ = [
    "BodyTooLarge",
    "BytesProducer",
    "PhoneEndpointFactory",
    "TlsSettings",
    "client_tls",
    "fetch",
    "post",
    "read_body",
]

#: Largest ACS answer the phone reads (the ACS's own limit for requests is 1 MiB).
MAX_BODY = 1024 * 1024
TlsSettings = tuple[str, str, str]  # (min version, max version, cipher list)
_VERSIONS = {"TLS 1.2": ssl.TLSVersion.TLSv1_2, "TLS 1.3": ssl.TLSVersion.TLSv1_3}


class BodyTooLarge(Exception):
    """The peer's body exceeded the limit; the connection was closed."""


@implementer(IBodyProducer)
class BytesProducer:
    """The whole body at once, with its length (so that an empty POST says Length 0)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:  # noqa: N802 - Twisted's interface name
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface name
        pass

    def resumeProducing(self) -> None:  # noqa: N802 - Twisted's interface name
        pass

    def stopProducing(self) -> None:  # noqa: N802 - Twisted's interface name
        pass


class _Collect(Protocol):
    def __init__(self, done: Deferred[bytes], limit: int) -> None:
        self._done = done
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's interface name
        if self._done.called:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._done.errback(BodyTooLarge(f"body larger than {self._limit} bytes"))
            self.transport.stopProducing()  # type: ignore[union-attr]
            return
        self._parts.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:  # type: ignore[override]  # noqa: N802 - Twisted's interface name
        if self._done.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback(b"".join(self._parts))
        else:
            self._done.errback(reason)


def read_body(response: IResponse, limit: int = MAX_BODY) -> Deferred[bytes]:
    """The response body; BodyTooLarge past ``limit`` bytes."""
    done: Deferred[bytes] = Deferred()
    response.deliverBody(_Collect(done, limit))
    return done


def _text(headers: Headers, name: bytes) -> tuple[str, ...]:
    return tuple(v.decode("latin-1") for v in headers.getRawHeaders(name, []))


async def post(agent: IAgent, url: str, request: HttpPost, *, reactor: Any,
               timeout: float) -> HttpReply:
    """POST ``request`` to ``url``; the ACS's answer as an :class:`HttpReply`.

    Raises whatever the agent raises (connection refused, TLS errors, ResponseFailed),
    TimeoutError/CancelledError after ``timeout`` seconds, BodyTooLarge.
    """
    headers = Headers({name.encode("latin-1"): [value.encode("latin-1")]
                       for name, value in request.headers})
    d = agent.request(b"POST", url.encode("ascii"), headers, BytesProducer(request.body))
    d.addTimeout(timeout, reactor)
    response: IResponse = await d
    body_d = read_body(response)
    body_d.addTimeout(timeout, reactor)
    body = await body_d
    retry = _text(response.headers, b"retry-after")
    return HttpReply(
        status=response.code,
        body=body,
        set_cookies=_text(response.headers, b"set-cookie"),
        www_authenticate=_text(response.headers, b"www-authenticate"),
        retry_after=retry[0] if retry else None,
    )


def client_tls(hostname: str, trust_root: Any, settings: TlsSettings, client_cert: Any = None) -> Any:
    """A TLS client connection creator for one phone's TLS settings; ``client_cert`` (a
    ``PrivateCertificate``): the phone's own certificate, presented when the ACS asks.

    Raises:
        ValueError: the cipher list selects nothing this OpenSSL can use even after the
        fallback to DEFAULT (Twisted refuses to build the context).
    """
    minimum, maximum, cipher_list = settings
    extra: dict[str, Any] = {}
    if minimum == "TLS 1.3":
        extra["raiseMinimumTo"] = ssl.TLSVersion.TLSv1_3
    if maximum in _VERSIONS and maximum != "TLS 1.3":
        extra["lowerMaximumSecurityTo"] = _VERSIONS[maximum]
    extra["acceptableCiphers"] = ssl.AcceptableCiphers.fromOpenSSLCipherString(
        cipher_list.strip() or "DEFAULT")
    try:
        return ssl.optionsForClientTLS(hostname, trustRoot=trust_root, clientCertificate=client_cert,
                                       extraCertificateOptions=extra)
    except ValueError:
        # A list that selects nothing usable: the phone falls back to DEFAULT (seed 000,
        # "Configure the Cipher List": blank or invalid -> the application's defaults).
        extra["acceptableCiphers"] = ssl.AcceptableCiphers.fromOpenSSLCipherString("DEFAULT")
        return ssl.optionsForClientTLS(hostname, trustRoot=trust_root, clientCertificate=client_cert,
                                       extraCertificateOptions=extra)


class PhoneEndpointFactory:
    """``IAgentEndpointFactory`` for one phone's session: resolve map, then TCP, then TLS
    with that phone's settings (and its client certificate, ``client_cert`` with its
    ``client_id``) for https URLs."""

    def __init__(self, reactor: Any, resolve: Mapping[str, str], *, tls: TlsSettings | None,
                 trust_root: Any, tls_cache: dict[Any, Any], connect_timeout: float = 10.0,
                 client_cert: Any = None, client_id: str = "") -> None:
        self._reactor = reactor
        self._resolve = resolve
        self._tls = tls
        self._trust_root = trust_root
        self._cache = tls_cache
        self._timeout = connect_timeout
        self._client_cert = client_cert
        self._client_id = client_id if client_cert is not None else ""

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:  # noqa: N802 - Twisted's interface name
        """Raises ValueError for a scheme other than http/https or unusable TLS settings."""
        host = uri.host.decode("idna") if isinstance(uri.host, bytes) else str(uri.host)
        address = self._resolve.get(host.lower(), host)
        tcp: IStreamClientEndpoint
        # IP literals connect directly: HostnameEndpoint would resolve even those in the
        # reactor's thread pool, a thread hop per session for nothing.
        if isIPAddress(address):
            tcp = TCP4ClientEndpoint(self._reactor, address, uri.port, timeout=self._timeout)
        elif isIPv6Address(address):
            tcp = TCP6ClientEndpoint(self._reactor, address, uri.port, timeout=self._timeout)
        else:
            tcp = HostnameEndpoint(self._reactor, address.encode("idna"), uri.port,
                                   timeout=self._timeout)
        if uri.scheme == b"http":
            return tcp
        if uri.scheme != b"https":
            raise ValueError(f"unsupported scheme {uri.scheme!r}")
        settings = self._tls or ("TLS 1.2", "TLS 1.3", "")
        key = (host, settings, self._client_id)
        creator = self._cache.get(key)
        if creator is None:
            creator = client_tls(host, self._trust_root, settings, self._client_cert)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = creator
        return wrapClientTLS(creator, tcp)


def _drain(response: IResponse) -> Deferred[bytes]:
    return read_body(response, 64 * 1024).addErrback(lambda _: b"")


async def fetch(agent: IAgent, url: str, *, username: str, password: str, reactor: Any,
                timeout: float, cnonce: str, limit: int = 16 * 1024 * 1024) -> tuple[int, bytes, str]:
    """GET a Download's file: ``(0, body, "")`` or ``(fault code, b"", reason)`` with the
    TransferComplete fault codes of TR-069 A.3.3.2 / Table 59: 9015 server unreachable,
    9016 file unreachable (HTTP 4xx/5xx), 9012 the server refused the credentials,
    9017 incomplete (body cut or over ``limit``). One 401 is answered (digest, or basic
    over HTTPS) when the Download carried a username. Never raises for network trouble.
    """
    async def get(authorization: str | None) -> IResponse:
        headers = Headers({b"authorization": [authorization.encode("latin-1")]}) \
            if authorization else Headers()
        d = agent.request(b"GET", url.encode("ascii"), headers, None)
        d.addTimeout(timeout, reactor)
        return await d

    try:
        response = await get(None)
        if response.code == 401 and username:
            await _drain(response)
            challenges = list(_text(response.headers, b"www-authenticate"))
            try:
                schemes = {c.scheme for c in parse_challenges(challenges)}
            except AuthHeaderError:
                schemes = set()
            uri = URI.fromBytes(url.encode("ascii"))
            if "digest" in schemes:
                authorization = digest_authorization(challenges, "GET", uri.originForm.decode(),
                                                     username, password, cnonce=cnonce, nc=1)
            elif "basic" in schemes and uri.scheme == b"https":
                authorization = basic_authorization(username, password)
            else:
                return 9012, b"", "the file server's challenge cannot be answered"
            response = await get(authorization)
        if response.code == 401:
            await _drain(response)
            return 9012, b"", "the file server refused the credentials"
        if response.code >= 400:
            await _drain(response)
            return 9016, b"", f"the file server answered HTTP {response.code}"
        body_d = read_body(response, limit)
        body_d.addTimeout(timeout, reactor)
        return 0, await body_d, ""
    except BodyTooLarge:
        return 9017, b"", f"file larger than {limit} bytes"
    except Exception as exc:  # noqa: BLE001 - every network failure is a TransferComplete fault
        return 9015, b"", f"file server unreachable ({type(exc).__name__})"
