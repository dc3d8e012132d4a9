"""HAProxy's configuration for a set of ACS nodes, from one template.

``deploy/haproxy.cfg`` is :func:`render_haproxy` of :data:`COMPOSE_LAYOUT` (the nodes of
deploy/compose.yaml; ``acs-security config haproxy`` prints it), and the end-to-end tests and
the cluster benchmark run real HAProxy on :func:`render_haproxy` of their own loopback layout.
A :class:`HaproxyLayout` holds only addresses, ports and file paths, so the configuration that
runs in the tests is the deployed one with other addresses (tests/test_deploy.py compares
them word by word).

What the template decides, and why, is in its comments (they are part of the output, for the
operator reading deploy/haproxy.cfg) and in docs/decisions/0012-haproxy-in-front.md. Pure:
no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from acs_security.server.config import DEFAULT_TLS_CIPHERS

__all__ = ["HaproxyNode", "HaproxyLayout", "COMPOSE_LAYOUT", "LayoutError", "render_haproxy",
           "parse_node"]


class LayoutError(ValueError):
    """A layout that cannot make a valid configuration; the message names the part."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,255}")
# A bind address: "[HOST]:PORT" with HOST empty (every address), a name, IPv4 or bracketless
# IPv6 as HAProxy reads it.
_BIND = re.compile(r"([A-Za-z0-9_.:-]*):(\d{1,5})")


def _port(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise LayoutError(f"{what}: {value!r} is not a port 1-65535")
    return value


def _path(value: str, what: str) -> str:
    # A path is one HAProxy word: no white space, no comment sign, no quote.
    if not value or any(c.isspace() or c in "#'\"\\" for c in value):
        raise LayoutError(f"{what}: {value!r} is not a usable path (no spaces, quotes or '#')")
    return value


def _bind(value: str, what: str) -> str:
    m = _BIND.fullmatch(value)
    if m is None:
        raise LayoutError(f"{what}: {value!r} is not [HOST]:PORT")
    _port(int(m.group(2)), what)
    return value


@dataclass(frozen=True, slots=True)
class HaproxyNode:
    """One ACS node as HAProxy reaches it: its CWMP (plain HTTP) port, its API port (the
    health checks' /readyz) and its HTTPS port (the mutual-TLS passthrough)."""

    name: str
    host: str
    cwmp_port: int = 7547
    api_port: int = 7557
    https_port: int = 7548

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise LayoutError(f"node name {self.name!r}: letters, digits, '_', '.', '-' (it is "
                              f"also the ACSNODE cookie value)")
        if not _HOST.fullmatch(self.host):
            raise LayoutError(f"node {self.name}: host {self.host!r} is not a host name or address")
        for what in ("cwmp_port", "api_port", "https_port"):
            _port(getattr(self, what), f"node {self.name}: {what}")

    def address(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class HaproxyLayout:
    """Where HAProxy listens, which nodes it spreads over, and its files.

    ``mtls``: whether the mutual-TLS passthrough (``mtls_bind`` -> each node's https_port) is
    active; when False its lines are written commented out, as an example.
    """

    nodes: tuple[HaproxyNode, ...]
    cwmp_bind: str = ":443"
    api_bind: str = ":8443"
    mtls_bind: str = ":7548"
    mtls: bool = False
    crt: str = "/usr/local/etc/haproxy/tls/acs.pem"
    stats_socket: str = "/var/lib/haproxy/admin.sock"
    names: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not self.nodes:
            raise LayoutError("at least one node is needed")
        names = tuple(n.name for n in self.nodes)
        if len(set(names)) != len(names):
            raise LayoutError(f"node names must be distinct: {', '.join(names)}")
        object.__setattr__(self, "names", names)
        binds = {"cwmp_bind": self.cwmp_bind, "api_bind": self.api_bind, "mtls_bind": self.mtls_bind}
        for what, value in binds.items():
            _bind(value, what)
        used = [self.cwmp_bind, self.api_bind] + ([self.mtls_bind] if self.mtls else [])
        if len(set(used)) != len(used):
            raise LayoutError(f"the listening addresses must differ: {', '.join(used)}")
        _path(self.crt, "crt")
        _path(self.stats_socket, "stats_socket")


#: The nodes of deploy/compose.yaml, reached by their service names on the compose network.
COMPOSE_LAYOUT = HaproxyLayout(nodes=(HaproxyNode("acs1", "acs1"), HaproxyNode("acs2", "acs2")))


def parse_node(text: str) -> HaproxyNode:
    """``NAME=HOST[:CWMP[:API[:HTTPS]]]`` (the ports default to 7547, 7557, 7548); raises
    LayoutError."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise LayoutError(f"node {text!r} is not NAME=HOST[:CWMP[:API[:HTTPS]]]")
    if rest.startswith("["):  # [IPv6]:ports
        host, _, tail = rest[1:].partition("]")
        parts = [host] + ([p for p in tail[1:].split(":")] if tail else [])
    else:
        parts = rest.split(":")
    if len(parts) > 4 or not all(p.isdigit() for p in parts[1:]):
        raise LayoutError(f"node {text!r} is not NAME=HOST[:CWMP[:API[:HTTPS]]]")
    ports = [int(p) for p in parts[1:]]
    return HaproxyNode(name, parts[0], *ports)


_HEADER = """\
# HAProxy in front of the acs-security nodes (docs/deploy.md, "The load balancer").
# Generated by `acs-security config haproxy` (acs_security/deploy_config.py); this file is its
# output for the nodes of deploy/compose.yaml, and the tests run the same template on loopback.
#
#   {cwmp_bind:<7} TLS for the phones' CWMP      -> nodes' cwmp_listen (plain HTTP), PROXY v2
#   {api_bind:<7} TLS for the management API    -> nodes' api_listen (plain HTTP), X-Forwarded-For
#   {mtls_bind:<7} phones with client certificates -> nodes' https_listen, TCP passthrough, PROXY v2
#                                                  (commented out below unless enabled)
#
# Health: every server is checked with GET /readyz on its api_listen port: 200 while the
# node's store answers, 503 when it does not (acs_security/server/api.py); no token needed.
#
# The phones' real addresses: the nodes must name this HAProxy in trusted_proxies and set
# proxy_protocol = ["cwmp"] (["cwmp", "https"] with the passthrough); see compose.yaml. Only
# then do the device registry, the per-address connection cap and the logs see the phone's
# address instead of HAProxy's (docs/decisions/0006-http-edge.md).
#
# The certificate: one PEM file holding the certificate chain and its private key, e.g. from
#   acs-security certs csr --cn acs.example.net --out-key acs.key --out-csr acs.csr
# signed by the CA the phones trust, then  cat acs.pem acs.key > deploy/tls/acs.pem
# (a lab: acs-security certs dev-ca --out deploy/tls/dev --server-cn acs.example.net).

global
    log stdout format raw local0
    # Match the ACS's own HTTPS defaults (acs_security/server/config.py): TLS 1.2 at least,
    # tls_max_version "TLS 1.3", and the TLS 1.2 part of tls_ciphers. The policy guardrails check
    # the cipher lists pushed to phones against the ACS's tls_ciphers, so keep these lines and
    # the nodes' tls_ciphers / tls_max_version in step (tests/test_deploy.py compares them).
    ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 no-tls-tickets
    ssl-default-bind-ciphers {tls12_ciphers}
    ssl-default-bind-ciphersuites {tls13_suites}
    # The runtime API: "show stat" (sessions per node), "set server acs_cwmp/acs1 state drain"
    # before taking a node away, and the listening sockets handed to the next process on a
    # reload (haproxy -sf OLDPID -x SOCKET), so that no connection is refused meanwhile.
    stats socket {stats_socket} mode 600 level admin expose-fd listeners

# Docker's embedded DNS: a node that restarts with a new address is found again.
resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 10s

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    # Longer than the ACS's session_timeout (30 s): the ACS, not the proxy, ends idle sessions.
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 35s
    # A connection a node refused (stopped, restarting) is retried once more on that node,
    # then on another one: a new session then never sees a dead node in the seconds before its
    # health check fails. A session already on the dead node is lost either way (its state is
    # in that node's memory); the phone starts a new one (TR-069 section 3.2.1.1).
    retries 2
    option redispatch
    default-server init-addr last,libc,none resolvers docker

frontend cwmp
    bind {cwmp_bind} ssl crt {crt} alpn http/1.1
    default_backend acs_cwmp

# One CWMP session must stay on one node: a phone may reconnect mid-session carrying the
# acs_session cookie, which only the node that issued it knows. The inserted ACSNODE cookie
# pins the session (CPEs keep cookies for the session, TR-069 section 3.4.4); "indirect"
# strips it before the node sees it. A node that is down loses its sessions: the phone's next
# session starts on another node (after that node's session lease, see docs/deploy.md).
# For CPEs that drop cookies, "balance source" pins by address instead.
# "http-reuse never": a node's connection carries one phone's requests only, because the ACS
# also keeps a session by connection for phones without cookies; for the same reason the
# phone's address goes in a PROXY v2 header at the start of each node connection
# (send-proxy-v2), read by the node's edge before any HTTP (proxy_protocol = ["cwmp"]).
# The health checks go to the API port ("port"), so they carry no PROXY header.
backend acs_cwmp
    balance roundrobin
    cookie ACSNODE insert indirect nocache
    http-reuse never
    option httpchk GET /readyz
    http-check expect status 200
{cwmp_servers}

frontend api
    bind {api_bind} ssl crt {crt} alpn http/1.1
    default_backend acs_api

# The API is stateless (bearer tokens), so any node answers. Prometheus should scrape each
# node's /metrics directly (per-node counters), not through this round robin; that is why the
# API port takes no PROXY header and the client's address comes in X-Forwarded-For, which the
# node believes from trusted_proxies only. The web console's sessions live in the store, so any
# node answers its pages too; X-Forwarded-Proto tells the nodes the browser talks TLS, which
# makes the console's cookies Secure (docs/console.md).
backend acs_api
    balance roundrobin
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    option httpchk GET /readyz
    http-check expect status 200
{api_servers}

# Mutual TLS (phones presenting client certificates, client_ca on the nodes).
# The ACS ties a client certificate to the Inform's device (client_cert_match: serial or cn)
# from the TLS connection it terminates itself; it reads no certificate from a proxy header.
# So client certificates need TCP passthrough to the nodes' https_listen, each node holding
# tls_cert/tls_key/client_ca and proxy_protocol = ["cwmp", "https"]: the PROXY v2 header
# precedes the phone's TLS handshake. Limits of passthrough: HAProxy sees no HTTP, so no
# ACSNODE cookie (stickiness by source address instead) and no per-request logs. HAProxy
# verifying the certificates itself ("verify required ca-file ...") would only check that a
# phone has some certificate of the CA, not that it is the certificate of the device named in
# the Inform: not a substitute.
#
{mtls}"""

_MTLS = """\
frontend cwmp_mtls
    mode tcp
    option tcplog
    bind {mtls_bind}
    default_backend acs_cwmp_mtls

backend acs_cwmp_mtls
    mode tcp
    balance source
    option httpchk GET /readyz
    http-check expect status 200
{mtls_servers}
"""


def _servers(lines: Sequence[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def _tls_lists(ciphers: str) -> tuple[str, str]:
    """The ACS's cipher string split as HAProxy takes it: the TLS 1.2 list (OpenSSL names) and
    the TLS 1.3 suites (Twisted's ``TLS13-AES-256-GCM-SHA384`` is ``TLS_AES_256_GCM_SHA384``)."""
    parts = ciphers.split(":")
    tls12 = ":".join(p for p in parts if not p.startswith("TLS13-"))
    tls13 = ":".join("TLS_" + p[len("TLS13-"):].replace("-", "_") for p in parts if p.startswith("TLS13-"))
    return tls12, tls13


def render_haproxy(layout: HaproxyLayout) -> str:
    """The haproxy.cfg text for ``layout``; its TLS lists are the ACS's default tls_ciphers."""
    tls12, tls13 = _tls_lists(DEFAULT_TLS_CIPHERS)
    check = "check port {api} inter 2s fall 3 rise 2"
    cwmp = [f"server {n.name} {n.address(n.cwmp_port)} cookie {n.name} "
            f"{check.format(api=n.api_port)} send-proxy-v2" for n in layout.nodes]
    api = [f"server {n.name} {n.address(n.api_port)} check inter 2s fall 3 rise 2"
           for n in layout.nodes]
    mtls_servers = [f"server {n.name} {n.address(n.https_port)} {check.format(api=n.api_port)} "
                    f"send-proxy-v2" for n in layout.nodes]
    mtls = _MTLS.format(mtls_bind=layout.mtls_bind, mtls_servers=_servers(mtls_servers))
    if not layout.mtls:
        mtls = "".join(f"# {line}".rstrip() + "\n" for line in mtls.splitlines())
    return _HEADER.format(cwmp_bind=layout.cwmp_bind, api_bind=layout.api_bind,
                          mtls_bind=layout.mtls_bind, crt=layout.crt,
                          stats_socket=layout.stats_socket, cwmp_servers=_servers(cwmp),
                          api_servers=_servers(api), mtls=mtls, tls12_ciphers=tls12,
                          tls13_suites=tls13)
