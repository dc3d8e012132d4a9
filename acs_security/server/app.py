"""Assembles a running ACS from a ServerConfig: store, endpoints, API. Used by ``serve`` and tests.

Everything is built from collaborators passed in (the reactor above all), so end-to-end
tests run the real server on 127.0.0.1 with OS-chosen ports and stop it afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool

from acs_security.connreq.stun_service import StunService
from acs_security.connreq.xmpp import XmppClient
from acs_security.console import make_console
from acs_security.desired.audit_side import AuditSide
from acs_security.desired.composite import CompositeProvisioner
from acs_security.desired.live import LiveAssignments
from acs_security.desired.service import DesiredService
from acs_security.desired.session import DesiredSide
from acs_security.file_service import FileService
from acs_security.files.offers import FileOffers
from acs_security.files.tokens import FileSigner
from acs_security.fleet.cluster import ClusterOptions
from acs_security.fleet.engine import PARAMETER_KEY_PREFIX, EngineLimits, FleetEngine
from acs_security.httpauth.digest import DigestVerifier
from acs_security.policy.guardrails import context_from_config
from acs_security.secret_rotation import unknown_key_ids
from acs_security.secrets import (
    KeyFileError,
    SecretStore,
    digest_nonce_key,
    file_url_key,
    open_codec,
)
from acs_security.server.addresses import TrustedProxies
from acs_security.server.api import ApiResource
from acs_security.server.api_desired import desired_routes
from acs_security.server.auth import TokenAdmin, TokenAuthenticator, hash_token, new_token
from acs_security.server.config import DEFAULT_TLS_CIPHERS, ConfigError, Endpoint, ServerConfig
from acs_security.server.cpe_auth import CpeAuthenticator, StoreNonceUses
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.server.edge import ConnectionCounts, EdgeFactory, EdgeLimits
from acs_security.server.files import CwmpRoot, FileResource
from acs_security.server.http import make_site
from acs_security.server.leases import DeviceLeases
from acs_security.server.metrics import AcsMetrics, TimedStore, engine_states
from acs_security.server.openapi import openapi_document
from acs_security.server.outages import OutageLog
from acs_security.server.provisioning import Provisioner
from acs_security.server.refusals import RefusalLog
from acs_security.server.requesters import ConnectionRequesters, start_requesters
from acs_security.server.soap import make_soap_resource
from acs_security.service import FleetService
from acs_security.store import open_store
from acs_security.store.deferred import DeferredStore, make_threadpool
from acs_security.store.engine import application_name
from acs_security.store.tokens import tokens_of

__all__ = ["AcsServer", "certificate_auth", "tls_options"]

log = Logger(namespace="acs_security.server")

#: Connections the kernel holds for accept(). Twisted's default, 50, overflowed when 700
#: connections came at once: the kernel dropped their handshakes' last ACK and accepted them
#: up to 27 s later (SYN-ACK retransmission), so a boot storm waited on the kernel, and a
#: deadline counted from accept() came that much after the client's connect. The kernel caps
#: it at net.core.somaxconn (4096 on current Linux).
LISTEN_BACKLOG = 1024


def tls_options(
    cert_file: Path, key_file: Path, client_ca: Path | None = None, *,
    max_version: str = "TLS 1.3", ciphers: str = DEFAULT_TLS_CIPHERS,
) -> ssl.CertificateOptions:
    """TLS settings of the HTTPS endpoint; with ``client_ca`` the handshake needs a client
    certificate that chains to it (TR-069 Amendment 6 section 3.3: the ACS may authenticate
    the CPE by its certificate). ``max_version`` and ``ciphers`` are the config's
    tls_max_version and tls_ciphers, which the guardrails read too. Raises ConfigError naming
    the file that is unusable."""

    def read(path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{what} {path}: {exc.strerror}") from None

    try:
        chain = x509.load_pem_x509_certificates(read(cert_file, "tls_cert"))
    except ValueError as exc:
        raise ConfigError(f"tls_cert {cert_file}: not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(read(key_file, "tls_key"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"tls_key {key_file}: not an unencrypted PEM key ({exc})") from None
    kwargs: dict[str, Any] = {}
    if client_ca is not None:
        try:
            cas = x509.load_pem_x509_certificates(read(client_ca, "client_ca"))
        except ValueError as exc:
            raise ConfigError(f"client_ca {client_ca}: not a PEM bundle ({exc})") from None
        kwargs = {
            "verify": True,
            "caCerts": [crypto.X509.from_cryptography(c) for c in cas],
            "requireCertificate": True,
        }
    return ssl.CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),  # type: ignore[arg-type]
        certificate=crypto.X509.from_cryptography(chain[0]),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        lowerMaximumSecurityTo=ssl.TLSVersion.TLSv1_2 if max_version == "TLS 1.2" else None,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(ciphers),
        **kwargs,
    )


def certificate_auth(cert_file: Path) -> str | None:
    """"rsa" or "ecdsa": which suites the HTTPS certificate can authenticate (guardrails);
    None when the file cannot be read (tls_options reports that)."""
    try:
        key = x509.load_pem_x509_certificates(cert_file.read_bytes())[0].public_key()
    except (OSError, ValueError, IndexError):
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa"
    return "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) else None


@dataclass
class AcsServer:
    """One ACS process: ``start()`` opens the store and listens, ``stop()`` undoes it."""

    config: ServerConfig
    reactor: Any
    provisioner: Provisioner | None = None
    random_bytes: Callable[[int], bytes] = os.urandom
    session_observer: Callable[[dict[str, Any]], None] | None = None
    ports: dict[str, IListeningPort] = field(default_factory=dict)
    store: Any = None
    deferred_store: TimedStore | None = None
    cwmp: CwmpResource | None = None
    api: ApiResource | None = None
    service: FleetService | None = None
    engine: FleetEngine | None = None
    metrics: AcsMetrics = field(default_factory=AcsMetrics)
    authenticator: TokenAuthenticator | None = None
    token_admin: TokenAdmin | None = None
    _tokens: Any = None
    _threadpool: Any = None
    _wsgi_pool: Any = None
    requesters: ConnectionRequesters | None = None
    leases: DeviceLeases | None = None
    files: FileOffers | None = None
    file_resource: FileResource | None = None
    live: LiveAssignments | None = None
    desired: DesiredSide | None = None
    desired_service: DesiredService | None = None
    _gauges: dict[tuple[str, str], int] = field(default_factory=dict)
    _gauges_busy: bool = False
    _gauge_loop: Any = None
    connection_counts: dict[str, ConnectionCounts] = field(default_factory=dict)
    refusal_log: RefusalLog | None = None
    outages: OutageLog | None = None

    def issue_token(self, name: str, role: str) -> str:
        """Create a token now and return it (for tests and the demo, after start(); blocks
        on the store). Raises StoreError (DuplicateToken, InvalidArgument)."""
        token = new_token(self.random_bytes(32))
        self._tokens.create_token(name, role, hash_token(token), datetime.now(UTC))
        if self.authenticator is not None:
            self.authenticator.forget()
        return token

    def _token_call(self, method: str, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self._threadpool, getattr(self._tokens, method), *args)

    def _observe_session(self, entry: dict[str, Any]) -> None:
        self.metrics.observe_session(entry)
        if self.session_observer is not None:
            self.session_observer(entry)

    @property
    def stun(self) -> StunService | None:
        """The STUN server (TR-111), when this node runs jobs and could bind its port."""
        return self.requesters.stun if self.requesters is not None else None

    @property
    def xmpp(self) -> XmppClient | None:
        """The XMPP client (TR-069 Annex K), when configured and this node runs jobs."""
        xmpp = self.requesters.xmpp if self.requesters is not None else None
        return xmpp.client if xmpp is not None else None

    def _store_available(self) -> bool:
        return self.store is None or not self.store.health.unavailable

    @property
    def runs_cwmp(self) -> bool:
        return self.config.role in ("all", "cwmp")

    @property
    def runs_jobs(self) -> bool:
        return self.config.role in ("all", "jobs")

    def _make_engine(self) -> FleetEngine:
        """The job engine, with its connection-request clients (HTTP digest and UDP) when
        this node runs jobs; with several nodes, coordinated through the store."""
        cfg = self.config
        cluster = (ClusterOptions(node=cfg.node, claim_lease=cfg.claim_lease, claim_batch=cfg.claim_batch,
                                  sync_interval=cfg.sync_interval, run_jobs=self.runs_jobs)
                   if cfg.clustered else None)
        ds = self.deferred_store
        assert ds is not None, "start() opens the store first"
        if not self.runs_jobs:
            return FleetEngine(store=ds, clock=self.reactor, cluster=cluster, node=cfg.node, files=self.files,
                               store_available=self._store_available,
                               limits=EngineLimits(max_cr_in_flight=cfg.max_cr_in_flight,
                                                   cr_session_wait=cfg.cr_session_wait))
        self.requesters = senders = start_requesters(cfg, self.reactor, ds, self.metrics, self.random_bytes)
        default = senders.default
        engine = FleetEngine(
            store=ds, clock=self.reactor, http_requester=senders.http, udp_requester=senders.udp,
            xmpp_requester=senders.xmpp, cluster=cluster,
            node=cfg.node, files=self.files, store_available=self._store_available,
            cr_credentials=lambda device_id: ds.call("get_connection_request_credential", device_id),
            default_cr_credential=default,
            limits=EngineLimits(max_cr_in_flight=cfg.max_cr_in_flight,
                                cr_session_wait=cfg.cr_session_wait, stun_keepalive=cfg.stun_keepalive),
        )
        if senders.stun is not None:
            senders.stun.on_device_binding = engine.note_udp_binding
            self.metrics.watch_stun(senders.stun)
        return engine

    def _make_provisioner(self, engine: FleetEngine) -> Provisioner:
        """The sessions' provisioner: the job engine first (a push wins the session), then
        audit jobs, then the assignments (decision 0009). The assignments are loaded now,
        before the endpoint listens, so that the first sessions are enforced."""
        cfg = self.config
        ds = self.deferred_store
        self.live = LiveAssignments(ds, self.reactor, sync_interval=cfg.desired_sync_interval,
                                    cache_size=cfg.desired_memory)
        records = self.store.list_assignments()
        self.live.load(records, self.store.assignment_generation(),
                       self.store.all_device_tags() if records else {})
        self.desired = DesiredSide(self.live, store=ds, clock=self.reactor, node=cfg.node,
                                   job_key_prefix=PARAMETER_KEY_PREFIX, observe_event=self.metrics.observe_desired,
                                   files=self.files)
        audit = AuditSide(engine, self.live, self.desired, store=ds, clock=self.reactor, node=cfg.node)
        return cast(Provisioner, CompositeProvisioner([engine, audit, self.desired]))

    async def start_engine(self) -> None:
        """Resume unfinished jobs and start the tick, keep the assignments current and the
        compliance gauges fed (after start())."""
        if self.engine is not None:
            await self.engine.start()
        if self.live is not None:
            await self.live.start()
        if self.desired_service is not None:
            self._gauge_loop = LoopingCall(self._refresh_gauges)
            self._gauge_loop.clock = self.reactor
            self._gauge_loop.start(self.config.desired_metrics_interval, now=True)

    def _refresh_gauges(self) -> None:
        if self._gauges_busy or self.desired_service is None:
            return
        self._gauges_busy = True
        d = Deferred.fromCoroutine(self.desired_service.gauges())

        def done(result: Any) -> None:
            self._gauges_busy = False
            if isinstance(result, dict):
                self._gauges = result
            else:
                log.warn("cannot read compliance counts: {error}", error=result.getErrorMessage())

        d.addBoth(done)

    def start(self) -> None:
        """Open the store and listen. Raises ConfigError / StoreError / CannotListenError."""
        cfg = self.config
        # Passwords at rest are encrypted under the key file (created on first start); job
        # policies and pushed secret parameters are sealed by the SecretStore wrapper.
        try:
            codec, key_path, created = open_codec(cfg.secret_key_file, cfg.db, random_bytes=self.random_bytes)
        except KeyFileError as exc:
            raise ConfigError(str(exc)) from None
        # The connections name the node (pg_stat_activity.application_name): an operator sees
        # which node holds which connection.
        store = open_store(cfg.db, secret_codec=codec, app_name=application_name(cfg.node))
        lost = unknown_key_ids(store.engine, codec.ring)
        if lost:
            store.close()
            raise ConfigError(f"secret_key_file {key_path}: the database holds passwords encrypted with "
                              f"key(s) {', '.join(sorted(lost))}, which this key file does not hold; "
                              "restore the key file the database was written with")
        if created and key_path is not None:
            log.info("created the secret key file {path} (mode 0600)", path=str(key_path))
        self.store = SecretStore(store, codec)
        self._threadpool = make_threadpool(self.store)
        self._threadpool.start()
        # A database outage is logged once when it begins and once when it ends, and shown in
        # /metrics (server/outages.py); store calls are timed (acs_store_call_seconds).
        self.outages = OutageLog(store.health, clock=self.reactor)
        self.metrics.watch_store(store.health)
        self.deferred_store = TimedStore(DeferredStore(self.store, self.reactor, self._threadpool,
                                                       on_result=self.outages.check),
                                         self.metrics, self.reactor.seconds)
        self._tokens = tokens_of(store)
        self.authenticator = TokenAuthenticator(
            lambda digest: self._token_call("token_by_hash", digest), self.reactor,
            cache_seconds=cfg.token_cache_seconds,
            touch=lambda token_id, when: self._token_call("touch_token", token_id, when).addErrback(
                lambda f: log.warn("cannot record a token's use: {error}", error=f.getErrorMessage())))
        self.token_admin = TokenAdmin(self._token_call, self.reactor, self.random_bytes, self.authenticator)
        authenticator = None
        if cfg.cpe_auth:
            ds = self.deferred_store
            authenticator = CpeAuthenticator(
                find_credential=lambda **kw: ds.call("find_cpe_credential", **kw),
                # Keyed from the shared secret key file: a nonce one node issues verifies on
                # every node behind the load balancer.
                verifier=DigestVerifier(
                    cfg.realm, digest_nonce_key(codec), algorithms=cfg.digest_algorithms
                ),
                clock=self.reactor,
                random_bytes=self.random_bytes,
                # Nonce-counts accepted by any node are refused by every node (store/nonces.py).
                nonce_uses=StoreNonceUses(ds, self.reactor).use,
                allow_basic=cfg.allow_basic,
                allow_insecure_basic=cfg.allow_insecure_basic,
                client_cert_match=cfg.client_cert_match,
                realm=cfg.realm,
            )
        # cfg.xml files for Downloads and backups (docs/files.md): URLs signed with a key every
        # node derives from the key file, files served on the CWMP listener under /files/.
        signer = FileSigner(file_url_key(codec))
        ds_files = self.deferred_store
        self.files = FileOffers(
            store=ds_files, signer=signer, clock=self.reactor, base_url=cfg.file_base_url, auth=cfg.file_auth,
            ttl=cfg.file_ttl, transfer_timeout=cfg.transfer_timeout, fetch_wait=cfg.file_fetch_wait,
            random_bytes=self.random_bytes,
            find_credential=lambda **kw: ds_files.call("find_cpe_credential", **kw))
        self.file_resource = FileResource(
            store=ds_files, clock=self.reactor, signer=signer, random_bytes=self.random_bytes,
            verifier=DigestVerifier(cfg.realm, digest_nonce_key(codec), algorithms=cfg.digest_algorithms),
            backup_keep=cfg.backup_keep, max_upload_bytes=cfg.max_body_bytes,
            observe=self.metrics.observe_file_request)
        if self.provisioner is None:
            self.engine = self._make_engine()
            self.provisioner = self._make_provisioner(self.engine)
        if cfg.clustered and self.runs_cwmp:
            # One CWMP session per device across the nodes (a lease row in the store).
            self.leases = DeviceLeases(self.deferred_store, self.reactor, cfg.node, cfg.session_lease)
        # One rate limit for the refusal lines of all faces: a source is counted once.
        self.refusal_log = RefusalLog(self.reactor, burst=cfg.refusal_log_burst, window=cfg.refusal_log_window)
        self.cwmp = CwmpResource(
            refusal_log=self.refusal_log,
            device_leases=self.leases,
            clock=self.reactor,
            store=self.deferred_store,
            authenticator=authenticator,
            provisioner=self.provisioner,
            session_timeout=cfg.session_timeout,
            max_sessions=cfg.max_sessions,
            retry_after=cfg.retry_after,
            max_body_bytes=cfg.max_body_bytes,
            session_observer=self._observe_session,
        )
        try:
            acs_context = context_from_config(
                cfg, certificate_auth=certificate_auth(cfg.tls_cert) if cfg.tls_cert else None)
        except ValueError as exc:
            raise ConfigError(f"tls_ciphers: {exc}") from None
        self.service = FleetService(self.deferred_store, engine=self.engine, clock=self.reactor,
                                    acs_context=acs_context)
        self.desired_service = DesiredService(self.deferred_store, fleet=self.service, engine=self.engine,
                                              live=self.live, clock=self.reactor)
        self.service.desired = self.desired_service
        self.metrics.watch_desired(lambda: self._gauges)
        if self.engine is not None:
            engine = self.engine
            self.metrics.watch_engine(lambda: engine_states(engine))
        self._wsgi_pool = ThreadPool(minthreads=1, maxthreads=4, name="acs-soap")
        self._wsgi_pool.start()
        file_service = FileService(self.service)
        soap = make_soap_resource(self.reactor, self._wsgi_pool, self.service, self.authenticator,
                                  refusal_log=self.refusal_log, metrics=self.metrics,
                                  max_body_bytes=cfg.max_body_bytes, files=file_service)
        deferred_store = self.deferred_store
        self.api = ApiResource(
            self.service, authenticator=self.authenticator,
            health=lambda: deferred_store.call("count_devices"),
            tokens=self.token_admin, metrics=self.metrics, openapi=openapi_document, soap=soap,
            ops_only=cfg.role in ("cwmp", "jobs"), refusal_log=self.refusal_log, files=file_service,
            info={"node": cfg.node, "role": cfg.role} if cfg.clustered else None)
        if cfg.role not in ("cwmp", "jobs"):
            self.api.add_routes(desired_routes(self.api))
        if cfg.console and cfg.role in ("all", "api"):
            # The web console on the same listener, with the same roles (the API's route
            # table) and the same service layer; its sessions live in the store.
            self.api.console = make_console(
                store=self.deferred_store, service=self.service, clock=self.reactor,
                random_bytes=self.random_bytes, role_for=self.api.role_for,
                max_age=cfg.console_session_max_age, idle_timeout=cfg.console_idle_timeout,
                trusted=TrustedProxies(cfg.trusted_proxies), refusal_log=self.refusal_log, metrics=self.metrics,
                desired=self.desired_service)
        # Connection limits and time limits (server/edge.py, server/http.py): the CWMP listeners
        # share one count, the API has its own, so phones cannot crowd operators out.
        limits = EdgeLimits(
            header_timeout=cfg.header_timeout, body_timeout=cfg.body_timeout,
            idle_timeout=cfg.connection_idle_timeout, retry_after=cfg.retry_after,
            trusted=TrustedProxies(cfg.trusted_proxies), observe=self.metrics.observe_edge)
        groups = {"cwmp": ConnectionCounts(cfg.max_connections, cfg.max_connections_per_ip),
                  "api": ConnectionCounts(cfg.max_connections, cfg.max_connections_per_ip)}
        self.connection_counts = groups
        self.metrics.watch_connections(groups)
        _raise_fd_limit(cfg.max_connections * 2)

        def edge(factory: Any, listener: str, group: str, *, answer_busy: bool) -> EdgeFactory:
            return EdgeFactory(factory, listener=listener, limits=limits, counts=groups[group],
                               clock=self.reactor, answer_busy=answer_busy,
                               proxy_protocol=listener in cfg.proxy_protocol)

        # The CWMP resource is a leaf at the root: it answers at every path, since phones'
        # ACS URLs end in many ways.
        cwmp_site = make_site(
            CwmpRoot(self.cwmp, self.file_resource), max_body_bytes=cfg.max_body_bytes, reactor=self.reactor,
            channel_lost=self.cwmp.channel_lost, limits=limits,
        )
        if cfg.cwmp_listen is not None and self.runs_cwmp:
            self.ports["cwmp"] = self.reactor.listenTCP(
                cfg.cwmp_listen.port, edge(cwmp_site, "cwmp", "cwmp", answer_busy=True),
                interface=cfg.cwmp_listen.host, backlog=LISTEN_BACKLOG
            )
        if cfg.https_listen is not None and self.runs_cwmp:
            assert cfg.tls_cert is not None and cfg.tls_key is not None
            opts = tls_options(cfg.tls_cert, cfg.tls_key, cfg.client_ca,
                               max_version=cfg.tls_max_version, ciphers=cfg.tls_ciphers)
            # Not reactor.listenSSL: it builds the TLS wrapper without a clock, and the
            # wrapper then schedules its write flushes on the global reactor.
            tls_factory = TLSMemoryBIOFactory(opts, False, cwmp_site, clock=self.reactor)
            # The edge is outside TLS: a refused connection costs no handshake (and gets none).
            self.ports["cwmps"] = self.reactor.listenTCP(
                cfg.https_listen.port, edge(tls_factory, "https", "cwmp", answer_busy=False),
                interface=cfg.https_listen.host, backlog=LISTEN_BACKLOG
            )
        if cfg.api_listen is not None:
            api_site = make_site(self.api, max_body_bytes=cfg.max_body_bytes, reactor=self.reactor,
                                 limits=limits)
            self.ports["api"] = self.reactor.listenTCP(
                cfg.api_listen.port, edge(api_site, "api", "api", answer_busy=True),
                interface=cfg.api_listen.host, backlog=LISTEN_BACKLOG
            )
        for name, port in self.ports.items():
            addr = _tcp_address(port)
            log.info("listening {name} on {host}:{port}", name=name, host=addr.host, port=addr.port)
        if self.files.base_url is None and self.runs_cwmp:
            # No file_url/public_url: the listener's own address (right for a lab; phones
            # elsewhere need file_url).
            name = "cwmps" if "cwmps" in self.ports else "cwmp"
            if name in self.ports:
                self.files.base_url = self.url(name).rstrip("/")
                if self.address(name).host in ("0.0.0.0", "::"):
                    log.warn("file URLs name {url}: set file_url (or public_url) to where phones reach this "
                             "ACS", url=self.files.base_url)
        if "api" in self.ports and self.api is not None and self.api.console is not None:
            log.info("web console at {url} (sign in with an API token)", url=self.console_url())

    def console_url(self) -> str:
        """The web console's address as a browser on this machine reaches it."""
        ep = self.address("api")
        host = "127.0.0.1" if ep.host in ("0.0.0.0", "") else "::1" if ep.host == "::" else ep.host
        return f"http://[{host}]:{ep.port}/" if ":" in host else f"http://{host}:{ep.port}/"

    def address(self, name: str) -> Endpoint:
        addr = _tcp_address(self.ports[name])
        return Endpoint(addr.host, addr.port)

    def url(self, name: str = "cwmp") -> str:
        scheme = "https" if name == "cwmps" else "http"
        ep = self.address(name)
        return f"{scheme}://{ep.host}:{ep.port}/"

    def stop(self) -> Deferred[Any]:
        """Stop listening, drop open sessions, close the store."""
        ds: list[Deferred[Any]] = [Deferred.fromCoroutine(_noop())]
        for port in self.ports.values():
            d = port.stopListening()
            if d is not None:
                ds.append(d)
        self.ports = {}
        if self.cwmp is not None:
            self.cwmp.sessions.close_all("shutdown")
        if self.refusal_log is not None:
            self.refusal_log.stop()
        if self.leases is not None:
            ds.append(self.leases.release_all().addErrback(
                lambda f: log.warn("cannot release session leases: {error}", error=f.getErrorMessage())))
        if self.requesters is not None:
            ds.extend(self.requesters.stop())
        if self.engine is not None:
            ds.append(Deferred.fromCoroutine(self.engine.stop()))
        if self.live is not None:
            self.live.stop()
        if self._gauge_loop is not None and self._gauge_loop.running:
            self._gauge_loop.stop()
        if self.outages is not None:
            self.outages.stop()

        def close(_: Any) -> Any:
            d = self.deferred_store.close() if self.deferred_store else None

            def finish(_: Any) -> None:
                if self._wsgi_pool is not None:
                    self._wsgi_pool.stop()
                    self._wsgi_pool = None
                if self._threadpool is not None:
                    self._threadpool.stop()
                if self.store is not None:
                    self.store.close()

            if d is None:
                finish(None)
                return None
            return d.addCallback(finish)

        return DeferredList(ds).addCallback(close)


def _tcp_address(port: IListeningPort) -> IPv4Address | IPv6Address:
    # listenTCP's ports have these addresses; IListeningPort.getHost promises only an IAddress.
    return cast("IPv4Address | IPv6Address", port.getHost())


async def _noop() -> None:
    return None


def _raise_fd_limit(needed: int) -> None:
    """Raise the process's open-file limit towards ``needed`` (every connection is a file
    descriptor, and the connection caps assume the kernel lets them be opened); warn when the
    hard limit is lower (systemd: LimitNOFILE, deploy/acs-security.service)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    needed += 256  # the store's connections, the log, listening sockets, connection requests
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warn("the open-file limit ({soft}) is below what max_connections needs ({needed}): "
                 "raise LimitNOFILE or lower max_connections", soft=soft, needed=needed)
