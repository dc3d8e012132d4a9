"""Two (or more) ACS nodes on one PostgreSQL behind real HAProxy, for the end-to-end tests.

HAProxy runs the configuration of deploy/haproxy.cfg (:mod:`acs_security.deploy_config`, only
addresses, ports and file paths changed): TLS termination with the dev CA's certificate of
acs.example.net, the ACSNODE cookie, /readyz health checks, PROXY v2 to the nodes' CWMP ports
(the nodes trust 127.0.0.1 and require the header there, as compose.yaml sets them up). The
simulated phones talk HTTPS to it and trust the dev CA. With ``mtls`` the passthrough to the
nodes' HTTPS listeners is on too, the nodes ask for client certificates (client_ca) and
authenticate the phones by them.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from twisted.internet.threads import deferToThreadPool

from acs_security.deploy_config import HaproxyNode
from acs_security.sim.fleet import SimulatedFleet
from acs_security.sim.haproxy import HaproxyProcess
from acs_security.store import open_store
from acs_security.store import schema as t
from tests.e2e.test_push import CR_PASS, CR_USER, HARDENING, RESOLVE, api_json, free_port, make_token, start_serve
from tests.support import sleep, wait_until

__all__ = ["Cluster", "NODE_ARGS", "fleet", "https_post", "metric", "cookies_of", "get"]

# Short leases so that a dead node's work moves within seconds; the defaults are 30 s
# (claims) and 90 s (sessions).
# HAProxy and the simulated phones are all 127.0.0.1: no per-address connection cap.
NODE_ARGS = ("--claim-lease", "6", "--claim-batch", "100", "--session-timeout", "5",
             "--session-lease", "8", "--retry-after", "1", "--max-cr-in-flight", "60",
             "--max-connections-per-ip", "0")


class Cluster:
    """Nodes acs1, acs2 (the server names of deploy/haproxy.cfg, also their node ids) and
    HAProxy in front of them."""

    def __init__(self, reactor: Any, tmp_path: Path, db: str, *, haproxy_bin: str = "",
                 pki: dict[str, Path] | None = None, mtls: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.reactor, self.tmp_path, self.db = reactor, tmp_path, db
        self.pool = reactor.getThreadPool()
        self.cwmp = {n: free_port() for n in ("acs1", "acs2")}
        self.api = {n: free_port() for n in ("acs1", "acs2")}
        self.https = {n: free_port() for n in ("acs1", "acs2")}
        self.haproxy_bin, self.pki, self.mtls, self.extra_args = haproxy_bin, pki, mtls, extra_args
        self.procs: dict[str, Any] = {}
        self.haproxy: HaproxyProcess | None = None
        self.token = ""
        self.sims: SimulatedFleet | None = None

    def thread(self, fn: Any, *a: Any, **kw: Any) -> Any:
        return deferToThreadPool(self.reactor, self.pool, fn, *a, **kw)

    def node_args(self, name: str) -> list[str]:
        """What makes a node fit behind this HAProxy (compose.yaml's ACS_TRUSTED_PROXIES and
        ACS_PROXY_PROTOCOL), and the mutual-TLS listener when asked."""
        args = ["--node-id", name, "--trusted-proxies", "127.0.0.1",
                "--proxy-protocol", "cwmp,https" if self.mtls else "cwmp", *NODE_ARGS, *self.extra_args]
        if self.mtls:
            assert self.pki is not None
            args += ["--https-listen", f"127.0.0.1:{self.https[name]}",
                     "--tls-cert", str(self.pki["server_cert"]), "--tls-key", str(self.pki["server_key"]),
                     "--client-ca", str(self.pki["ca"]), "--cpe-auth"]
        return args

    async def start(self) -> str:
        """Start the nodes and HAProxy; the phones' ACS URL (HTTPS through HAProxy)."""
        assert self.pki is not None and self.haproxy_bin, "a cluster behind HAProxy needs haproxy_bin and pki"
        self.token = await self.thread(make_token, self.db)
        # Both nodes start at once: the migrations serialise on an advisory lock.
        for name in self.cwmp:
            self.procs[name] = await self.thread(
                start_serve, self.tmp_path, self.db, self.cwmp[name], self.api[name], *self.node_args(name))
        nodes = [HaproxyNode(n, "127.0.0.1", self.cwmp[n], self.api[n], self.https[n]) for n in self.cwmp]
        self.haproxy = await self.thread(HaproxyProcess.start_loopback, self.haproxy_bin, nodes,
                                         crt=self.pki["crt"], log=self.tmp_path / "haproxy.log", mtls=self.mtls)
        for name in self.cwmp:  # both nodes in service before any phone comes
            await self.thread(self.haproxy.wait_server, "acs_cwmp", name, "UP", 30)
        return self.url()

    def url(self, mtls: bool = False) -> str:
        assert self.haproxy is not None
        port = self.haproxy.mtls_port if mtls else self.haproxy.cwmp_port
        return f"https://acs.example.net:{port}/cwmp"

    def fleet(self, url: str, n: int, seed: int, **kwargs: Any) -> SimulatedFleet:
        trust = self.pki["ca"].read_bytes() if self.pki is not None else None
        return fleet(self.reactor, url, n, seed=seed, trust_ca_pem=trust, **kwargs)

    async def boot(self, url: str, n: int, seed: int, timeout: float, **kwargs: Any) -> SimulatedFleet:
        """Simulated phones through ``url``, once each completed its boot session."""
        self.sims = sims = self.fleet(url, n, seed, **kwargs)
        await sims.start()
        await wait_until(self.reactor, lambda: all(p.sessions_completed for p in sims.phones),
                         timeout=timeout, what="boot informs")
        return sims

    async def push(self, node: str, **options: Any) -> dict[str, Any]:
        """The hardening policy to every phone, submitted on ``node``'s API."""
        return await self.api_call(node, "POST", "/api/v1/jobs",
                                   {"policy": HARDENING.read_text(), "select": "all", **options})

    async def api_call(self, node: str, method: str, path: str, body: Any = None) -> Any:
        return await self.thread(api_json, self.api[node], method, path, body, self.token)

    async def wait_job(self, node: str, job_id: int, timeout: float) -> dict[str, Any]:
        deadline = self.reactor.seconds() + timeout
        state: dict[str, Any] = {}
        while self.reactor.seconds() < deadline:
            state = await self.api_call(node, "GET", f"/api/v1/jobs/{job_id}")
            if state["state"] == "completed":
                break
            await sleep(self.reactor, 0.5)
        return state

    def tasks(self, job_id: int) -> list[Any]:
        store = open_store(self.db)
        try:
            with store.engine.connect() as conn:
                return list(conn.execute(sa.select(t.tasks.c.device_id, t.tasks.c.state, t.tasks.c.node,
                                                   t.tasks.c.claimed_by).where(t.tasks.c.job_id == job_id)).all())
        finally:
            store.close()

    def devices(self) -> dict[str, str | None]:
        """serial -> the address the registry recorded."""
        store = open_store(self.db)
        try:
            return {d.serial_number: d.remote_address for d in store.list_devices()}
        finally:
            store.close()

    def sessions_by_server(self) -> dict[str, int]:
        """Requests HAProxy passed to each node's CWMP backend server (``stot``: its HTTP
        streams), from its runtime API."""
        assert self.haproxy is not None
        return {r["svname"]: int(r["stot"]) for r in self.haproxy.stats()
                if r["pxname"] == "acs_cwmp" and r["svname"] in self.cwmp}

    async def metrics(self, node: str) -> str:
        return (await self.thread(get, self.api[node], "/metrics", self.token))[1].decode()

    async def stop(self) -> None:
        if self.sims is not None:
            await self.sims.stop()
        if self.haproxy is not None:
            await self.thread(self.haproxy.stop)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                await self.thread(proc.wait)


def fleet(reactor: Any, url: str, phones: int, seed: int, **kwargs: Any) -> SimulatedFleet:
    """Simulated phones for a cluster test; ``kwargs`` override the defaults below."""
    options: dict[str, Any] = dict(resolve=RESOLVE, inform_interval=600, boot_ramp_s=phones / 200,
                                   cr_delay=(0.02, 0.1), retry_scale=0.05, cr_password_mode="shared",
                                   cr_username=CR_USER, cr_password=CR_PASS, cr_min_interval=0.2)
    return SimulatedFleet(reactor, url, phones=phones, seed=seed, **{**options, **kwargs})


def get(port: int, path: str, token: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def https_post(port: int, body: bytes, *, ca: Path | None, cookie: str | None = None, source: str = "127.0.0.1",
               headers: dict[str, str] | None = None, proxy_line: bytes = b"", tls: bool = True,
               client_cert: tuple[Path, Path] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    """One POST on its own TCP connection from ``source`` (a loopback address standing for
    another host), over TLS for acs.example.net trusting ``ca`` (and presenting
    ``client_cert``); ``proxy_line`` is written before anything else (a PROXY header).
    Returns (status, headers by lower-case name, body)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    try:
        if proxy_line:
            raw.sendall(proxy_line)
        sock: socket.socket = raw
        if tls:
            ctx = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
            if client_cert is not None:
                ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
            sock = ctx.wrap_socket(raw, server_hostname="acs.example.net")
        head = {"Host": "acs.example.net", "Content-Type": "text/xml", "Content-Length": str(len(body)),
                "Connection": "close", **(headers or {})}
        if cookie:
            head["Cookie"] = cookie
        sock.sendall(b"POST /cwmp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode()
                     + b"\r\n" + body)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        out: dict[str, list[str]] = {}
        for k, v in resp.getheaders():
            out.setdefault(k.lower(), []).append(v)
        return resp.status, out, resp.read()
    finally:
        raw.close()


def cookies_of(headers: dict[str, list[str]], previous: str = "") -> str:
    """The Cookie header a client sends after a response with ``headers``."""
    jar = dict(c.split("=", 1) for c in previous.split("; ") if "=" in c)
    for value in headers.get("set-cookie", []):
        name, _, rest = value.split(";", 1)[0].partition("=")
        jar[name.strip()] = rest.strip()
    return "; ".join(f"{k}={v}" for k, v in jar.items())
