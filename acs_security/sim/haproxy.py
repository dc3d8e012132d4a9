"""Real HAProxy for the end-to-end tests and the cluster benchmark: the production load
balancer (deploy/haproxy.cfg) run on loopback, with the configuration of the same template
(:mod:`acs_security.deploy_config`) and only its addresses, ports and file paths changed.

* :func:`find_haproxy` finds the ``haproxy`` binary, or installs the Debian package when it
  is missing and this process may (root with apt-get, as in CI); otherwise it raises
  :class:`HaproxyUnavailable` saying how to get it. A test that needs HAProxy fails with that
  message: it is never skipped for want of it.
* :class:`HaproxyProcess` runs one HAProxy in the foreground (its log, "log stdout", goes to a
  file), talks to its runtime API (the ``stats socket``: ``show stat``, server states) and
  reloads it the way an operator does: a new process started with ``-sf OLDPID -x SOCKET``
  takes the listening sockets over from the old one, which finishes its connections and
  exits (HAProxy's management guide, "Stopping and restarting HAProxy").
* :func:`loopback_layout` picks the ports: OS-chosen free ports on 127.0.0.1 (bound to port 0
  and released). HAProxy binds with SO_REUSEPORT, so a port taken meanwhile by another process
  is found at start (HAProxy exits with "cannot bind") and :meth:`HaproxyProcess.start_loopback`
  tries fresh ports.

Synchronous (subprocess and a Unix socket): tests call it from a thread of their reactor,
the benchmark directly. Nothing global: each process has its own temporary directory, removed
by :meth:`HaproxyProcess.stop`.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from acs_security.deploy_config import HaproxyLayout, HaproxyNode, render_haproxy

__all__ = ["HaproxyUnavailable", "HaproxyError", "find_haproxy", "loopback_layout",
           "HaproxyProcess", "free_port"]


class HaproxyUnavailable(RuntimeError):
    """No haproxy binary, and it could not be installed; the message says how to get it."""


class HaproxyError(RuntimeError):
    """HAProxy refused its configuration, exited, or did not come up in time."""


def find_haproxy(*, install: bool = True, timeout: float = 600.0) -> str:
    """The path of the ``haproxy`` binary. When missing and ``install``, as root with apt-get
    available: ``apt-get install haproxy`` (Debian package), after ``apt-get update`` if the
    first try fails. Waits up to ``timeout`` s for the package lock (other installs running).

    Raises HaproxyUnavailable.
    """
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if found:
        return found
    apt = shutil.which("apt-get")
    how = "install the Debian package: apt-get install haproxy (as root)"
    if not install or apt is None or os.geteuid() != 0:
        reason = ("installing is off" if not install else "no apt-get here" if apt is None
                  else "not root")
        raise HaproxyUnavailable(f"haproxy is not installed and cannot be installed ({reason}): {how}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={int(timeout)}"]
    outputs = []
    for step in ([[apt, *lock, "install", "-y", "-q", "haproxy"]],
                 [[apt, *lock, "update", "-q"], [apt, *lock, "install", "-y", "-q", "haproxy"]]):
        ok = True
        for argv in step:
            run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout * 2,
                                 check=False)
            outputs.append(run.stdout[-2000:] + run.stderr[-2000:])
            ok = ok and run.returncode == 0
        found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK)
                                            else None)
        if ok and found:
            return found
    raise HaproxyUnavailable(f"haproxy could not be installed with apt-get ({how}):\n{outputs[-1]}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free now on ``host`` (bound to port 0, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def loopback_layout(nodes: Sequence[HaproxyNode], *, crt: Path, stats_socket: Path,
                    mtls: bool = False, host: str = "127.0.0.1") -> HaproxyLayout:
    """The deploy template's layout on ``host`` with free ports for HAProxy's listeners."""
    return HaproxyLayout(nodes=tuple(nodes), cwmp_bind=f"{host}:{free_port(host)}",
                         api_bind=f"{host}:{free_port(host)}", mtls_bind=f"{host}:{free_port(host)}",
                         mtls=mtls, crt=str(crt), stats_socket=str(stats_socket))


def _port_of(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


class HaproxyProcess:
    """One HAProxy (and its successors across reloads) on a layout; see the module doc."""

    def __init__(self, binary: str, layout: HaproxyLayout, *, log: Path) -> None:
        self.binary = binary
        self.layout = layout
        self.log_path = log
        self.config_path = Path(layout.stats_socket).with_name("haproxy.cfg")
        self.procs: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None

    # -- ports -------------------------------------------------------------------------
    @property
    def cwmp_port(self) -> int:
        return _port_of(self.layout.cwmp_bind)

    @property
    def api_port(self) -> int:
        return _port_of(self.layout.api_bind)

    @property
    def mtls_port(self) -> int:
        return _port_of(self.layout.mtls_bind)

    @property
    def current(self) -> subprocess.Popen[bytes]:
        if not self.procs:
            raise HaproxyError("HAProxy was not started")
        return self.procs[-1]

    # -- life --------------------------------------------------------------------------
    @classmethod
    def start_loopback(cls, binary: str, nodes: Sequence[HaproxyNode], *, crt: Path, log: Path,
                       mtls: bool = False, timeout: float = 30.0, tries: int = 3) -> HaproxyProcess:
        """HAProxy on free loopback ports in a fresh short temporary directory (a Unix
        socket's path has at most 107 bytes), for ``nodes``. Raises HaproxyError."""
        last: Exception | None = None
        for _ in range(tries):
            runtime = Path(tempfile.mkdtemp(prefix="acs-haproxy-"))
            layout = loopback_layout(nodes, crt=crt, stats_socket=runtime / "admin.sock", mtls=mtls)
            proc = cls(binary, layout, log=log)
            try:
                proc.start(timeout=timeout)
                return proc
            except HaproxyError as exc:
                proc.stop()
                last = exc
                if "cannot bind" not in str(exc).lower():
                    raise
        raise HaproxyError(f"HAProxy found no free ports in {tries} tries: {last}")

    def check(self) -> str:
        """``haproxy -c`` on the configuration; its output. Raises HaproxyError when invalid."""
        self._write_config()
        return self.check_file(self.binary, self.config_path)

    @staticmethod
    def check_file(binary: str, path: Path) -> str:
        """``haproxy -c -f PATH``; its output. Raises HaproxyError when invalid."""
        run = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True,
                             timeout=60, check=False)
        if run.returncode != 0:
            raise HaproxyError(f"haproxy -c refused {path}:\n{run.stdout}{run.stderr}")
        return run.stdout + run.stderr

    def _write_config(self) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_haproxy(self.layout))

    def _spawn(self, extra: Sequence[str]) -> subprocess.Popen[bytes]:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config_path), *extra],
                                stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 30.0) -> None:
        """Start HAProxy; returns once its runtime API answers and its CWMP port accepts.
        Raises HaproxyError (its log's tail in the message) when it exits or stays mute."""
        self.check()
        proc = self._spawn([])
        self._wait_up(proc, timeout)

    def _wait_up(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise HaproxyError(f"HAProxy exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                if "Pid:" in self.command("show info") and self._accepts(self.cwmp_port):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise HaproxyError(f"HAProxy did not come up within {timeout}s:\n{self.log_tail()}")

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def reload(self, timeout: float = 30.0) -> tuple[int, int]:
        """A graceful reload: a new HAProxy takes the listening sockets from the current one
        (``-x``) and tells it to finish its connections and exit (``-sf``). Returns (old pid,
        new pid) once the new one answers; the old one may still be finishing connections.
        Raises HaproxyError."""
        old = self.current
        self.check()
        new = self._spawn(["-x", self.layout.stats_socket, "-sf", str(old.pid)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if new.poll() is not None:
                raise HaproxyError(f"the reloaded HAProxy exited with {new.returncode}:\n{self.log_tail()}")
            try:
                if f"Pid: {new.pid}" in self.command("show info"):
                    return old.pid, new.pid
            except OSError:
                pass
            time.sleep(0.05)
        raise HaproxyError(f"the reloaded HAProxy did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every HAProxy process of this object (SIGTERM, SIGKILL after ``timeout``) and
        remove the runtime directory."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        runtime = Path(self.layout.stats_socket).parent
        if runtime.name.startswith("acs-haproxy-"):
            shutil.rmtree(runtime, ignore_errors=True)

    # -- runtime API -------------------------------------------------------------------
    def command(self, line: str, timeout: float = 5.0) -> str:
        """One runtime API command's answer. Raises OSError when the socket does not answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.layout.stats_socket)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stats(self) -> list[dict[str, str]]:
        """``show stat`` as rows (pxname, svname, status, stot, ...)."""
        text = self.command("show stat").lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def server(self, backend: str, server: str) -> dict[str, str]:
        """The ``show stat`` row of one server. Raises KeyError when there is none."""
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise KeyError(f"{backend}/{server}")

    def wait_server(self, backend: str, server: str, status: str, timeout: float = 60.0,
                    poll: Callable[[], None] | None = None) -> None:
        """Wait until the server's status starts with ``status`` (UP, DOWN, MAINT, ...).
        Raises HaproxyError after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            try:
                seen = self.server(backend, server)["status"]
            except (OSError, KeyError):
                seen = "?"
            if seen.startswith(status):
                return
            if poll is not None:
                poll()
            time.sleep(0.1)
        raise HaproxyError(f"{backend}/{server} is {seen}, not {status}, after {timeout}s")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def cpu_s(self) -> float:
        """User + system CPU seconds of every process so far (from /proc; 0 for the ones gone)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for proc in self.procs:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def __enter__(self) -> HaproxyProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
