"""The XMPP connection-request sender of a job node (TR-069 Annex K, docs/xmpp.md).

Started by ``serve`` when ``xmpp_server``, ``xmpp_jid`` and ``xmpp_password_file`` are
set: one :class:`~acs_security.connreq.xmpp.XmppClient` logged in as the ACS, which the job
engine uses for phones that only XMPP reaches (behind NAT without a fresh STUN binding).
Its state and outcomes are metrics: ``acs_xmpp_connected`` (1 while logged in) and
``acs_xmpp_requests_total{outcome}``.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from acs_security.connreq.methods import WakeResult
from acs_security.connreq.xmpp import XmppClient, XmppOptions
from acs_security.server.config import ConfigError, ServerConfig
from acs_security.server.metrics import AcsMetrics

__all__ = ["CountingXmpp", "start_xmpp", "xmpp_outcome"]

log = Logger(namespace="acs_security.server")

#: The outcomes counted under their own label; any other error condition a peer sends is
#: counted as "error" (a label per peer-chosen name would let phones grow the metrics).
_OUTCOMES = frozenset({"timeout", "not connected", "too many requests in flight", "not-authorized",
                       "service-unavailable", "item-not-found", "recipient-unavailable", "remote-server-not-found",
                       "feature-not-implemented", "bad-request"})


def xmpp_outcome(result: WakeResult) -> str:
    """The ``outcome`` label of one request."""
    if result.ok:
        return "ok"
    if result.detail in _OUTCOMES:
        return result.detail.replace(" ", "_")
    return "bad_jid" if result.detail.startswith("bad JID") else "error"


class CountingXmpp:
    """The engine's XmppRequester: the client, with each outcome counted."""

    def __init__(self, client: XmppClient, metrics: AcsMetrics) -> None:
        self.client = client
        self._metrics = metrics

    def request(self, jid: str, username: str, password: str) -> Deferred[WakeResult]:
        def count(result: WakeResult) -> WakeResult:
            self._metrics.observe_xmpp_request(xmpp_outcome(result))
            return result
        return self.client.request(jid, username, password).addCallback(count)

    def stop(self) -> Deferred[None]:
        return self.client.stop()


def _tls_options(config: ServerConfig, domain: str) -> Any:
    """STARTTLS checks the server's certificate against the JID's domain (RFC 6120 section
    13.7.2.1, not the host name of xmpp_server) and xmpp_ca_file, else the system's roots."""
    if config.xmpp_ca_file is None:
        return ssl.optionsForClientTLS(domain)
    try:
        pem = config.xmpp_ca_file.read_bytes()
        root = ssl.Certificate.loadPEM(pem)
    except OSError as exc:
        raise ConfigError(f"xmpp_ca_file {config.xmpp_ca_file}: {exc.strerror}") from None
    except (crypto.Error, ValueError) as exc:  # a file that is not PEM
        raise ConfigError(f"xmpp_ca_file {config.xmpp_ca_file}: not a PEM certificate ({exc})") from None
    return ssl.optionsForClientTLS(domain, trustRoot=root)


def start_xmpp(config: ServerConfig, reactor: Any, metrics: AcsMetrics, *,
               options: XmppOptions | None = None) -> CountingXmpp | None:
    """The started, counting XMPP client; None when XMPP is not configured. Raises
    ConfigError when the password file or CA file cannot be read."""
    if config.xmpp_server is None or config.xmpp_jid is None or config.xmpp_password_file is None:
        return None
    try:
        password = config.xmpp_password_file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"xmpp_password_file {config.xmpp_password_file}: {exc.strerror}") from None
    if not password:
        raise ConfigError(f"xmpp_password_file {config.xmpp_password_file}: empty")
    domain = config.xmpp_jid.partition("/")[0].rpartition("@")[2]
    base = options or XmppOptions(request_timeout=config.cr_timeout)
    opts = XmppOptions(request_timeout=base.request_timeout, login_timeout=base.login_timeout,
                       keepalive=base.keepalive, max_in_flight=config.max_cr_in_flight,
                       backoff_initial=base.backoff_initial, backoff_max=base.backoff_max,
                       tls_required=config.xmpp_tls == "required")
    try:
        client = XmppClient(reactor, config.xmpp_jid, password,
                            (config.xmpp_server.host, config.xmpp_server.port), options=opts,
                            tls_options=_tls_options(config, domain), on_state=metrics.set_xmpp_connected)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log.info("XMPP connection requests (TR-069 Annex K) via {server} as {jid} (TLS {tls})",
             server=str(config.xmpp_server), jid=config.xmpp_jid, tls=config.xmpp_tls)
    client.start()
    return CountingXmpp(client, metrics)
