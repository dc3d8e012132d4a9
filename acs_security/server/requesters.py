"""The connection-request senders of a job node, built from the configuration.

TR-069 gives three ways to ask a phone to call in (docs/nat.md, docs/xmpp.md): HTTP to
its ConnectionRequestURL (section 3.2.2, digest-authenticated), a UDP datagram (Annex G)
sent from the STUN server's socket where the phones' NATs keep their mappings, and an
XMPP IQ (Annex K) through the XMPP server the ACS is logged in to. This module builds the
three (each counted in the metrics) and stops them; the job engine chooses per phone
(fleet/reach.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.protocol import DatagramProtocol
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from acs_security.connreq.digest_cache import DigestNonceCache
from acs_security.connreq.http_client import HttpConnectionRequester
from acs_security.connreq.pool import QuietConnectionPool
from acs_security.connreq.stun_service import StunService
from acs_security.connreq.udp_client import UdpConnectionRequester
from acs_security.server.config import ConfigError, ServerConfig
from acs_security.server.metrics import AcsMetrics, CountingRequester
from acs_security.server.stun import start_stun
from acs_security.server.xmpp_side import CountingXmpp, start_xmpp

__all__ = ["ConnectionRequesters", "DirectIPEndpointFactory", "start_requesters"]


@implementer(IAgentEndpointFactory)
class DirectIPEndpointFactory:
    """Endpoints for connection requests: phones' ConnectionRequestURLs are nearly always
    IP addresses, which are connected to directly; HostnameEndpoint (kept for names)
    resolves even literal addresses through a thread pool, which was a quarter of the
    reactor's time in a 10,000-phone push (docs/performance.md)."""

    def __init__(self, reactor: Any, *, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout

    def endpointForURI(self, uri: Any) -> Any:  # noqa: N802 - Twisted's interface name
        host = uri.host.decode("ascii") if isinstance(uri.host, bytes) else str(uri.host)
        port = int(uri.port)
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            endpoint: Any = HostnameEndpoint(self._reactor, host, port, timeout=self._timeout)
        else:
            cls = TCP6ClientEndpoint if address.version == 6 else TCP4ClientEndpoint
            endpoint = cls(self._reactor, str(address), port, timeout=self._timeout)
        if uri.scheme in (b"https", "https"):
            # Rare for connection requests; the phone's certificate is checked as a browser would.
            creator = BrowserLikePolicyForHTTPS().creatorForNetloc(host.encode("ascii"), port)
            return wrapClientTLS(creator, endpoint)
        return endpoint


@dataclass
class ConnectionRequesters:
    """What :func:`start_requesters` built. ``default``: the server-wide connection-request
    credential (cr_username and its password), if any."""

    http: Any
    udp: Any
    xmpp: CountingXmpp | None
    stun: StunService | None
    default: tuple[str, str] | None
    udp_port: Any = None

    def stop(self) -> list[Deferred[Any]]:
        """Stop the STUN server, the ephemeral UDP socket and the XMPP client."""
        ds: list[Deferred[Any]] = []
        if self.stun is not None:
            ds.append(self.stun.stop())
            self.stun = None
        if self.udp_port is not None:
            d = self.udp_port.stopListening()
            if d is not None:
                ds.append(d)
            self.udp_port = None
        if self.xmpp is not None:
            ds.append(self.xmpp.stop())
            self.xmpp = None
        return ds


def _default_credential(cfg: ServerConfig) -> tuple[str, str] | None:
    if cfg.cr_username is None or cfg.cr_password_file is None:
        return None
    try:
        password = cfg.cr_password_file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cr_password_file {cfg.cr_password_file}: {exc.strerror}") from None
    return cfg.cr_username, password


def start_requesters(cfg: ServerConfig, reactor: Any, store: Any, metrics: AcsMetrics,
                     random_bytes: Callable[[int], bytes]) -> ConnectionRequesters:
    """HTTP digest client, UDP sender (from the STUN server's socket when it runs, else an
    ephemeral port), and the XMPP client when configured. Raises ConfigError for a password
    file that cannot be read."""
    agent = Agent.usingEndpointFactory(
        reactor, DirectIPEndpointFactory(reactor, timeout=cfg.cr_timeout),
        pool=QuietConnectionPool(reactor, persistent=False))
    # RFC 7616 nc: the next request to a phone answers its last nonce at once (connreq/digest_cache.py).
    cache = DigestNonceCache() if cfg.connection_request_nonce_reuse else None
    http = CountingRequester(HttpConnectionRequester(agent, reactor, nonce_source=random_bytes,
                                                     timeout=cfg.cr_timeout, digest_cache=cache), metrics, "http")
    if cache is not None:
        metrics.watch_nonce_cache(cache)
    default = _default_credential(cfg)
    xmpp = start_xmpp(cfg, reactor, metrics)  # before the sockets: a bad file changes nothing
    # UDP connection requests leave from the STUN server's socket (server/stun.py), where
    # the phones' NATs have their mappings; without it, from an ephemeral port.
    stun = start_stun(cfg, reactor, store, random_bytes, default_login=default)
    udp_sender: Any = stun.requester if stun is not None else None
    udp_port = None
    if udp_sender is None:
        udp_port = reactor.listenUDP(0, DatagramProtocol(), interface="0.0.0.0")
        udp_sender = UdpConnectionRequester(udp_port, reactor, nonce_source=random_bytes,
                                            first_id=int.from_bytes(random_bytes(4), "big"))
    udp = CountingRequester(udp_sender, metrics, "udp")
    return ConnectionRequesters(http=http, udp=udp, xmpp=xmpp, stun=stun, default=default, udp_port=udp_port)
