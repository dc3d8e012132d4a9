"""Server configuration: one frozen dataclass, read from a TOML file, the environment and flags.

Precedence, lowest first: built-in defaults, the TOML file (``--config``), environment
variables (``ACS_<FIELD>`` in upper case, e.g. ``ACS_DB``), command-line flags. Every field
is documented once, in :data:`FIELDS`, which also drives ``acs-security serve --help`` and
``docs/configuration.md``, so the three never disagree.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from acs_security.server.addresses import TrustedProxies

__all__ = [
    "ConfigError",
    "ServerConfig",
    "Endpoint",
    "FIELDS",
    "parse_endpoint",
    "load_config",
    "DEFAULT_TLS_CIPHERS",
    "TLS_MAX_VERSIONS",
    "ROLES",
]

#: The HTTPS endpoint's cipher string when none is configured: Twisted's own default
#: (twisted.internet._sslverify.defaultCiphers), written out so that the guardrails compute
#: the very suites the endpoint accepts from the same text.
DEFAULT_TLS_CIPHERS = (
    "TLS13-AES-256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES-128-GCM-SHA256:"
    "ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:DH+CHACHA20:ECDH+AES256:DH+AES256:"
    "ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS"
)
#: What a ``serve`` process runs: everything, or one part (scale-out, docs/deploy.md).
ROLES = ("all", "cwmp", "jobs", "api")
#: The HTTPS endpoint speaks TLS 1.2 at least (app.tls_options); its highest is configurable.
TLS_MAX_VERSIONS = ("TLS 1.2", "TLS 1.3")


class ConfigError(ValueError):
    """Configuration values are missing or malformed; each problem names its setting, and
    all of them are reported at once (an operator fixes the file in one go)."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        if len(problems) == 1:
            text = problems[0]
        else:
            text = f"{len(problems)} problems in the configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str, *, setting: str, default_port: int | None = None) -> Endpoint:
    """Parse ``HOST:PORT`` (``[v6]:PORT``, ``:PORT`` for all interfaces).

    Raises ConfigError naming ``setting`` when the text is not of that form.
    """
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ConfigError(f"{setting}: {text!r} is not HOST:PORT")
        host, port_text = text, str(default_port)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{setting}: port {port_text!r} in {text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{setting}: port {port} in {text!r} is outside 0-65535")
    return Endpoint(host or "0.0.0.0", port)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    db: str = "sqlite:///var/acs.db"
    cwmp_listen: Endpoint | None = Endpoint("0.0.0.0", 7547)
    https_listen: Endpoint | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    client_cert_match: str = "serial"
    api_listen: Endpoint | None = Endpoint("127.0.0.1", 7557)
    public_url: str | None = None
    cpe_auth: bool = True
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    allow_basic: bool = True
    allow_insecure_basic: bool = False
    realm: str = "acs-security"
    session_timeout: float = 30.0
    max_sessions: int = 2000
    retry_after: int = 10
    max_body_bytes: int = 1024 * 1024
    header_timeout: float = 15.0
    body_timeout: float = 30.0
    idle_timeout: float | None = None
    max_connections: int = 4000
    max_connections_per_ip: int = 200
    trusted_proxies: tuple[str, ...] = ()
    proxy_protocol: tuple[str, ...] = ()
    log_json: bool = False
    log_level: str = "info"
    cr_username: str | None = None
    cr_password_file: Path | None = None
    cr_timeout: float = 10.0
    connection_request_nonce_reuse: bool = True
    max_cr_in_flight: int = 200
    cr_session_wait: float = 45.0
    # TR-111 part 2 STUN server (docs/nat.md); None ('off'): not run.
    stun_listen: Endpoint | None = Endpoint("0.0.0.0", 3478)
    stun_public: Endpoint | None = None
    stun_keepalive: float = 120.0
    # TR-069 Annex K XMPP connection requests (docs/xmpp.md); None: no XMPP client.
    xmpp_server: Endpoint | None = None
    xmpp_jid: str | None = None
    xmpp_password_file: Path | None = None
    xmpp_tls: str = "required"
    xmpp_ca_file: Path | None = None
    provisioning_hosts: tuple[str, ...] = ()
    tls_max_version: str = "TLS 1.3"
    tls_ciphers: str = DEFAULT_TLS_CIPHERS
    secret_key_file: Path | None = None
    token_cache_seconds: float = 5.0
    role: str = "all"
    cluster: bool | None = None
    node_id: str | None = None
    claim_lease: float = 30.0
    claim_batch: int = 200
    session_lease: float = 90.0
    sync_interval: float = 1.0
    file_url: str | None = None
    file_auth: str = "auto"
    file_ttl: float = 900.0
    file_fetch_wait: float = 120.0
    transfer_timeout: float = 3600.0
    backup_keep: int = 20
    desired_sync_interval: float = 5.0
    desired_memory: int = 200_000
    desired_metrics_interval: float = 60.0
    refusal_log_burst: int = 10
    refusal_log_window: float = 60.0
    console: bool = True
    console_session_max_age: float = 8 * 3600.0
    console_idle_timeout: float = 1800.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.client_cert_match not in ("serial", "cn", "either"):
            problems.append(
                f"client_cert_match: {self.client_cert_match!r} is not one of serial, cn, either"
            )
        if self.https_listen is not None and (self.tls_cert is None or self.tls_key is None):
            problems.append("https_listen needs tls_cert and tls_key")
        if self.client_ca is not None and self.https_listen is None:
            problems.append("client_ca only applies with https_listen")
        for algo in self.digest_algorithms:
            if algo not in ("SHA-256", "MD5"):
                problems.append(f"digest_algorithms: {algo!r} is not SHA-256 or MD5")
        if self.session_timeout <= 0:
            problems.append("session_timeout must be positive")
        if self.max_sessions < 1:
            problems.append("max_sessions must be at least 1")
        if self.max_body_bytes < 4096:
            problems.append("max_body_bytes must be at least 4096")
        self._check_edge(problems)
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"public_url: {self.public_url!r} is not an http(s) URL")
        if (self.cr_username is None) != (self.cr_password_file is None):
            problems.append("cr_username and cr_password_file go together")
        if self.stun_keepalive <= 0:
            problems.append("stun_keepalive must be positive")
        self._check_xmpp(problems)
        if self.cr_timeout <= 0 or self.cr_session_wait <= 0 or self.max_cr_in_flight < 1:
            problems.append("cr_timeout and cr_session_wait must be positive, max_cr_in_flight >= 1")
        if self.tls_max_version not in TLS_MAX_VERSIONS:
            problems.append(f"tls_max_version: {self.tls_max_version!r} is not one of {', '.join(TLS_MAX_VERSIONS)}")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(self.tls_ciphers)
        except ssl.SSLError:
            problems.append(f"tls_ciphers: {self.tls_ciphers!r} selects no cipher suite")
        for host in self.provisioning_hosts:
            if not host or "/" in host or ":" in host:
                problems.append(f"provisioning_hosts: {host!r} is not a host name (no scheme, port or path)")
        if not 0 <= self.token_cache_seconds <= 60:
            problems.append("token_cache_seconds must be 0-60 (how long a revocation by another process may take)")
        if self.cwmp_listen is None and self.https_listen is None and self.api_listen is None:
            problems.append("nothing to listen on: give cwmp_listen, https_listen or api_listen")
        if self.role not in ROLES:
            problems.append(f"role: {self.role!r} is not one of {', '.join(ROLES)}")
        if self.role != "all" and not self.clustered:
            problems.append(f"role {self.role} runs part of the ACS: the other parts run in other "
                              "processes on the same database, which needs cluster (PostgreSQL)")
        if self.role == "cwmp" and self.cwmp_listen is None and self.https_listen is None:
            problems.append("role cwmp needs cwmp_listen or https_listen")
        if self.role == "api" and self.api_listen is None:
            problems.append("role api needs api_listen")
        if self.claim_lease < 5 or self.sync_interval <= 0 or self.sync_interval * 3 > self.claim_lease:
            problems.append("claim_lease must be at least 5 s and three sync_intervals (claims are "
                              "renewed at every sync)")
        if not 1 <= self.claim_batch <= 10_000:
            problems.append("claim_batch must be 1-10000")
        if self.session_lease <= 1.5 * self.session_timeout:
            problems.append("session_lease must be longer than 1.5 x session_timeout (a live session "
                              "renews its lease every third of it, and may then be idle for session_timeout)")
        if not 0.1 <= self.desired_sync_interval <= 3600 or not 1 <= self.desired_metrics_interval <= 86400:
            problems.append("desired_sync_interval must be 0.1-3600 s and desired_metrics_interval 1-86400 s")
        if not 0 <= self.desired_memory <= 50_000_000:
            problems.append("desired_memory must be 0-50000000 devices")
        if self.node_id is not None and not (0 < len(self.node_id) <= 64 and self.node_id.isprintable()):
            problems.append("node_id must be 1-64 printable characters")
        if self.file_url is not None:
            parts = urlsplit(self.file_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
                    or parts.query or parts.username:
                problems.append(f"file_url: {self.file_url!r} is not an http(s) URL of a host (no path, "
                                  "query or user; files are served under /files/)")
        if self.file_auth not in ("auto", "digest", "signed"):
            problems.append(f"file_auth: {self.file_auth!r} is not one of auto, digest, signed")
        if not 10 <= self.file_ttl <= 86400:
            problems.append("file_ttl must be 10-86400 seconds")
        if not 1 <= self.file_fetch_wait <= self.file_ttl:
            problems.append("file_fetch_wait must be 1 second to file_ttl")
        if not self.file_ttl <= self.transfer_timeout <= 7 * 86400:
            problems.append("transfer_timeout must be at least file_ttl and at most 7 days")
        if not 1 <= self.backup_keep <= 10_000:
            problems.append("backup_keep must be 1-10000")
        if not 0 <= self.refusal_log_burst <= 10_000:
            problems.append("refusal_log_burst must be 0-10000 (0: only the summary lines)")
        if not 1 <= self.refusal_log_window <= 3600:
            problems.append("refusal_log_window must be 1-3600 seconds")
        if not 60 <= self.console_session_max_age <= 7 * 86400:
            problems.append("console_session_max_age must be 60 s to 7 days")
        if not 60 <= self.console_idle_timeout <= self.console_session_max_age:
            problems.append("console_idle_timeout must be at least 60 s and at most console_session_max_age")
        if problems:
            raise ConfigError(*problems)

    def _check_edge(self, problems: list[str]) -> None:
        """The connection limits and the proxy settings (server/edge.py)."""
        if not (self.header_timeout > 0 and self.body_timeout > 0):
            problems.append("header_timeout and body_timeout must be positive")
        if self.idle_timeout is not None and self.idle_timeout < self.session_timeout:
            problems.append(f"idle_timeout ({self.idle_timeout:g} s) must be at least session_timeout "
                              f"({self.session_timeout:g} s): a phone without cookies keeps its session by "
                              "its connection, and closing that connection ends the session")
        if self.max_connections < 1:
            problems.append("max_connections must be at least 1")
        if not 0 <= self.max_connections_per_ip <= self.max_connections:
            problems.append("max_connections_per_ip must be 0 (no cap) to max_connections")
        try:
            TrustedProxies(self.trusted_proxies)
        except ValueError as exc:
            problems.append(f"trusted_proxies: {exc}")
        listeners = {"cwmp": self.cwmp_listen, "https": self.https_listen, "api": self.api_listen}
        for name in self.proxy_protocol:
            if name not in listeners:
                problems.append(f"proxy_protocol: {name!r} is not one of {', '.join(listeners)}")
            elif listeners[name] is None:
                problems.append(f"proxy_protocol names {name}, but {name}_listen is off")
        if self.proxy_protocol and not self.trusted_proxies:
            problems.append("proxy_protocol needs trusted_proxies: a PROXY header is accepted only "
                              "from the proxies named there")

    @property
    def connection_idle_timeout(self) -> float:
        """idle_timeout, or session_timeout when it is unset."""
        return self.idle_timeout if self.idle_timeout is not None else self.session_timeout

    @property
    def clustered(self) -> bool:
        """Whether this node coordinates with others through the store (task claims, device
        session leases). Default: on for PostgreSQL, off for the embedded SQLite."""
        if self.cluster is not None:
            return self.cluster
        return self.db.startswith(("postgresql", "postgres:"))

    @property
    def node(self) -> str:
        """This node's name in claims and leases: node_id, else host name and process id."""
        if self.node_id:
            return self.node_id
        # Host name and a listening port: stable across restarts (a restarted node takes back
        # its own stale claims at once) and distinct for several nodes on one host.
        ports = [e.port for e in (self.cwmp_listen, self.https_listen, self.api_listen) if e is not None and e.port]
        return f"{socket.gethostname()}:{ports[0] if ports else os.getpid()}"

    @property
    def public_host(self) -> str | None:
        return urlsplit(self.public_url).hostname if self.public_url else None

    def _check_xmpp(self, problems: list[str]) -> None:
        given = [self.xmpp_server is not None, self.xmpp_jid is not None, self.xmpp_password_file is not None]
        if any(given) and not all(given):
            problems.append("xmpp_server, xmpp_jid and xmpp_password_file go together")
        if self.xmpp_tls not in ("required", "optional"):
            problems.append(f"xmpp_tls: {self.xmpp_tls!r} is not required or optional")
        if self.xmpp_jid is not None:
            local, at, domain = self.xmpp_jid.partition("/")[0].rpartition("@")
            if not at or not local or not domain or any(c.isspace() for c in self.xmpp_jid):
                problems.append(f"xmpp_jid: {self.xmpp_jid!r} is not an account JID (local@domain)")
        # The IQs carry the phones' connection-request passwords: in clear only over loopback.
        if self.xmpp_tls == "optional" and self.xmpp_server is not None and not _loopback(self.xmpp_server.host):
            problems.append("xmpp_tls optional is only allowed with an xmpp_server on loopback (the "
                              "connection requests carry the phones' passwords)")

    @property
    def stun_address(self) -> tuple[str, int] | None:
        """(host, port) phones are to reach the STUN server at: stun_public, else public_url's
        host and stun_listen's port; None when unknown or the server is off."""
        if self.stun_listen is None:
            return None
        if self.stun_public is not None:
            return self.stun_public.host, self.stun_public.port
        host = self.public_host
        return (host, self.stun_listen.port) if host else None

    @property
    def file_base_url(self) -> str | None:
        """Scheme and authority of the file URLs in Downloads and Uploads: file_url, else
        public_url's (None: the listener's address, known once it listens)."""
        url = self.file_url or self.public_url
        if url is None:
            return None
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"


# name -> (kind, help). Kinds: str, int, float, bool, path, endpoint, list.
FIELDS: dict[str, tuple[str, str]] = {
    "db": ("str", "database URL: sqlite:///path/acs.db (default, embedded) or postgresql://user@host/db"),
    "cwmp_listen": ("endpoint", "HOST:PORT for CWMP over plain HTTP (default 0.0.0.0:7547; 'off' to disable)"),
    "https_listen": ("endpoint", "HOST:PORT for CWMP over HTTPS (needs tls_cert and tls_key)"),
    "tls_cert": ("path", "PEM certificate (chain) of the HTTPS endpoint"),
    "tls_key": ("path", "PEM private key of the HTTPS endpoint"),
    "client_ca": ("path", "PEM CA bundle: when set, phones must present a client certificate chaining to it"),
    "client_cert_match": ("str", "how a client certificate is tied to the Inform's device: serial, cn or either"),
    "api_listen": ("endpoint", "HOST:PORT of the management API (default 127.0.0.1:7557; 'off' to disable)"),
    "public_url": ("str", "URL phones use to reach this ACS (ACS_URL); guardrails check it"),
    "cpe_auth": ("bool", "authenticate phones (HTTP digest, basic over TLS, client certificates)"),
    "digest_algorithms": ("list", "digest algorithms offered, strongest first (SHA-256, MD5)"),
    "allow_basic": ("bool", "accept HTTP basic authentication over TLS"),
    "allow_insecure_basic": ("bool", "accept HTTP basic authentication over plain HTTP (not recommended)"),
    "realm": ("str", "HTTP authentication realm"),
    "session_timeout": ("float", "seconds of silence after which a CWMP session is dropped"),
    "max_sessions": ("int", "concurrent CWMP sessions; beyond it new sessions get 503 + Retry-After"),
    "retry_after": ("int", "Retry-After seconds sent with 503 (session limit, device busy, database outage)"),
    "max_body_bytes": ("int", "largest CWMP request body accepted (after decompression)"),
    "header_timeout": ("float", "seconds a client has for a request's line and headers, from its connection "
                                "(or PROXY header) or from the request's first byte; data does not extend it "
                                "(default 15)"),
    "body_timeout": ("float", "seconds a client has for a whole request body once its headers are in "
                              "(default 30)"),
    "idle_timeout": ("float", "seconds a kept-alive connection may wait for its next request (default: "
                              "session_timeout; never less, since a phone without cookies keeps its session "
                              "by its connection)"),
    "max_connections": ("int", "open connections of the CWMP listeners together, and of the management API "
                               "apart; beyond it a connection gets 503 + Retry-After (closed unanswered on "
                               "TLS) (default 4000)"),
    "max_connections_per_ip": ("int", "open connections of one client address (an IPv6 client's /64), per "
                                      "listener group; the real client's behind trusted_proxies; 0 for no cap "
                                      "(default 200: many phones share an address behind NAT)"),
    "trusted_proxies": ("list", "addresses and CIDR networks of the operator's proxies: only their "
                                "X-Forwarded-For and PROXY headers are believed"),
    "proxy_protocol": ("list", "listeners that require a PROXY protocol header (v1 or v2) from "
                               "trusted_proxies on every connection: cwmp, https, api"),
    "log_json": ("bool", "write logs as JSON lines"),
    "log_level": ("str", "debug, info, warn or error"),
    "cr_username": ("str", "connection-request username used for devices without their own credential"),
    "cr_password_file": ("path", "file holding the connection-request password that goes with cr_username"),
    "cr_timeout": ("float", "seconds a connection request may take"),
    "connection_request_nonce_reuse": ("bool", "reuse a phone's last digest nonce (RFC 7616 nc): 1 request, not 2"),
    "max_cr_in_flight": ("int", "connection requests in flight at once, over all jobs"),
    "cr_session_wait": ("float", "seconds a device that accepted a connection request has to call in"),
    "stun_listen": ("endpoint", "HOST:PORT of the STUN server for phones behind NAT (TR-111; default "
                                "0.0.0.0:3478, skipped with a log line when the port cannot be bound; 'off' "
                                "to disable); UDP connection requests leave from this socket"),
    "stun_public": ("endpoint", "HOST:PORT phones reach the STUN server at (their STUNServerAddress/Port; "
                                "default: public_url's host and stun_listen's port); guardrails check it"),
    "stun_keepalive": ("float", "seconds a phone's STUN binding stays usable when its STUN keep-alive period "
                                "is not known (default 120)"),
    "xmpp_server": ("endpoint", "HOST:PORT of the XMPP server the ACS logs in to for TR-069 Annex K connection "
                                "requests to phones behind NAT (docs/xmpp.md; default off)"),
    "xmpp_jid": ("str", "the ACS's XMPP account, local@domain (a resource may follow); phones list it in "
                        "ConnReqAllowedJabberIDs"),
    "xmpp_password_file": ("path", "file holding the password of xmpp_jid (never logged)"),
    "xmpp_tls": ("str", "STARTTLS on the XMPP stream: required (default) or optional (only with an "
                        "xmpp_server on loopback)"),
    "xmpp_ca_file": ("path", "PEM file of the CA certificates the XMPP server's certificate is checked "
                             "against (default: the system's trust roots)"),
    "provisioning_hosts": ("list", "hosts the phones must keep reaching besides the ACS (profile, upgrade, "
                                   "report servers); guardrails check Restricted Access Domains against them"),
    "tls_max_version": ("str", "highest TLS version of the HTTPS endpoint: TLS 1.2 or TLS 1.3 (default)"),
    "tls_ciphers": ("str", "OpenSSL cipher string of the HTTPS endpoint (default: Twisted's); guardrails "
                           "check pushed cipher lists against it"),
    "secret_key_file": ("path", "key file that encrypts stored passwords, created (mode 0600) on first start; "
                                "default: acs.key next to the SQLite database, var/acs.key for PostgreSQL"),
    "token_cache_seconds": ("float", "seconds an API token check is cached; a revocation made by another process "
                                     "(acs-security tokens revoke) takes effect within this time (default 5)"),
    "role": ("str", "what this process runs: all (default), cwmp (phones' endpoint), jobs (job runner: "
                    "claims, connection requests, waves) or api (management API); parts other than all "
                    "need cluster"),
    "cluster": ("bool", "coordinate with other nodes on the same database: task claims and device session "
                        "leases (default: on for PostgreSQL, off for SQLite)"),
    "node_id": ("str", "this node's name in task claims and session leases (default: host name:first "
                       "listening port); give each node its own"),
    "claim_lease": ("float", "seconds a node's claim on tasks lasts unless renewed; a node that dies "
                             "releases its devices to the others after this (default 30)"),
    "claim_batch": ("int", "tasks a job runner claims at once (default 200)"),
    "session_lease": ("float", "seconds a device's session lease lasts unless renewed by a message; after a "
                               "node dies, its devices' next sessions wait this long (default 90)"),
    "sync_interval": ("float", "seconds between a job runner's reads of job states and counts from the "
                               "store, and its claim renewals (default 1)"),
    "file_url": ("str", "scheme and host[:port] phones fetch cfg.xml files from and upload backups to "
                        "(/files/ on the CWMP listener; default: public_url's, else the listener's address); "
                        "use https in production: files may hold passwords"),
    "file_auth": ("str", "how a phone proves a file is its own: auto (default: digest with its own CWMP "
                         "credential where it has one, else a signed single-use URL), digest, or signed"),
    "file_ttl": ("float", "seconds a file URL stays valid (default 900); a file never fetched in that "
                          "time is offered again"),
    "file_fetch_wait": ("float", "seconds a phone has to fetch its file after the Download (default 120); "
                                 "a file not fetched by then is withdrawn (its URL stops working) and the "
                                 "transfer offered again"),
    "transfer_timeout": ("float", "seconds to wait for a phone's TransferComplete after a Download or "
                                  "Upload before the task is faulted (default 3600)"),
    "backup_keep": ("int", "configuration backup versions kept per phone (default 20); contents are "
                           "stored once however many versions and phones share them"),
    "desired_sync_interval": ("float", "seconds between a node's checks of the assignments in the store: a change "
                                       "made through another node is enforced here after at most this (default 5)"),
    "desired_memory": ("int", "devices whose settled desired state a node remembers, so that their periodic "
                              "sessions read nothing from the store (about 200 bytes each; 0: off; default 200000)"),
    "desired_metrics_interval": ("float", "seconds between reads of the compliance counts from the store for "
                                          "the acs_desired_devices gauges (default 60)"),
    "refusal_log_burst": ("int", "refused requests (phones and API clients) logged one line each per source "
                                 "address and refusal_log_window; the rest make one summary line per source "
                                 "and window (default 10; 0: summaries only)"),
    "refusal_log_window": ("float", "seconds of the refusal log's window per source address (default 60)"),
    "console": ("bool", "serve the web console at / on the management API listener (docs/console.md; "
                        "default on)"),
    "console_session_max_age": ("float", "seconds a console sign-in lasts, however busy (default 28800: 8 h)"),
    "console_idle_timeout": ("float", "seconds a console session may go without a request before it ends "
                                      "(default 1800)"),
}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, value: Any) -> Any:
    kind = FIELDS[name][0]
    if value is None:
        return None
    try:
        if kind == "str":
            return str(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "path":
            return Path(str(value)).expanduser()
        if kind == "endpoint":
            if isinstance(value, Endpoint):
                return value
            if str(value).strip().lower() in ("", "off", "none"):
                return None
            return parse_endpoint(str(value), setting=name)
        if kind == "list":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a valid {kind}") from None
    raise AssertionError(kind)


def load_config(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Merge defaults, the TOML file, ``ACS_*`` environment variables and flag overrides.

    ``overrides`` holds only the flags the user gave (None values are ignored).
    Raises ConfigError for unknown keys, malformed values or an unreadable file.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []

    def put(key: str, value: Any) -> None:
        try:
            values[key] = _coerce(key, value)
        except ConfigError as exc:
            problems.extend(exc.problems)

    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: {exc}") from None
        server = data.get("server", data)
        for key, value in server.items():
            key = key.replace("-", "_")
            if isinstance(value, dict):
                continue  # other sections belong to other components
            if key not in FIELDS:
                problems.append(f"config file {config_file}: unknown setting {key!r}")
                continue
            put(key, value)
    env = os.environ if environ is None else environ
    for key in FIELDS:
        env_value = env.get(f"ACS_{key.upper()}")
        if env_value is not None:
            put(key, env_value)
    for key, value in (overrides or {}).items():
        if value is not None:
            put(key, value)
    # The malformed values are left at their defaults, so that the checks of the others
    # still run: every problem is reported at once.
    try:
        config = ServerConfig(**values)
    except ConfigError as exc:
        problems.extend(exc.problems)
    except TypeError as exc:  # pragma: no cover - FIELDS and the dataclass agree
        problems.append(str(exc))
    if problems:
        raise ConfigError(*problems)
    return config


def describe(config: ServerConfig) -> dict[str, Any]:
    """The configuration as plain data for a startup log line: a password in the database
    URL is masked (the other secrets live in files, which are named, not read here)."""
    out = {}
    for f in dataclasses.fields(config):
        if f.name == "extra":
            continue
        value = getattr(config, f.name)
        out[f.name] = str(value) if isinstance(value, (Path, Endpoint)) else value
    from acs_security.store.engine import mask_db_url  # SQLAlchemy: only when described

    out["db"] = mask_db_url(config.db)
    out["node"], out["clustered"] = config.node, config.clustered
    return out

