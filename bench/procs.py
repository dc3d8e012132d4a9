"""Processes of the benchmarks: the ACS (``acs-security serve``), the bare server, the load
generators and the simulator, each its own OS process; their CPU time and peak memory.

CPU time is the process's user + system time (all its threads: the reactor and the store's
pool) from psutil; peak memory is the kernel's high-water mark of its resident set
(``VmHWM`` in /proc/PID/status), or the largest RSS sampled where that file does not exist.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

__all__ = ["REPO", "free_port", "Proc", "AcsProcess", "start_acs", "api_json", "wait_for_line",
           "Profiler"]

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its CPU and memory accounting."""

    def __init__(self, argv: Sequence[str], *, log: Path | None = None,
                 env: dict[str, str] | None = None, stdout_pipe: bool = False,
                 cpus: frozenset[int] | None = None) -> None:
        """``cpus``: start it under ``taskset -c`` on those CPUs (bench/affinity.py), so that
        every thread it creates inherits them."""
        if cpus is not None:
            from bench.affinity import taskset_prefix

            argv = [*taskset_prefix(cpus), *argv]
        self.argv = list(argv)
        # Closed in stop(): the file outlives this constructor.
        self._log: IO[bytes] | None = open(log, "wb") if log is not None else None  # noqa: SIM115
        self.popen = subprocess.Popen(
            self.argv, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE if stdout_pipe else (self._log or subprocess.DEVNULL),
            stderr=subprocess.STDOUT if (self._log or stdout_pipe) else subprocess.DEVNULL,
        )
        self.ps = psutil.Process(self.popen.pid)
        self._peak_sampled = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _sample(self) -> None:
        while self._sampling and self.popen.poll() is None:
            try:
                self._peak_sampled = max(self._peak_sampled, self.ps.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.25)

    def cpu_s(self) -> float:
        """User + system CPU seconds so far (every thread of the process)."""
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def peak_rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return self._peak_sampled / 2**20

    def rss_mb(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        self._sampling = False
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
        return self.popen.returncode


def wait_for_line(proc: Proc, prefix: str, timeout: float = 30.0) -> str:
    """Read the child's stdout (a pipe) until a line starts with ``prefix``."""
    assert proc.popen.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.popen.stdout.readline().decode(errors="replace")
        if not line and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.argv[:4]} exited ({proc.popen.returncode}) before {prefix!r}")
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"{proc.argv[:4]}: no {prefix!r} line within {timeout}s")


def api_json(api: str, method: str, path: str, body: Any = None, timeout: float = 60,
             token: str | None = None) -> Any:
    """A management API call (``token``: its bearer token); raises RuntimeError with the
    API's answer on an HTTP error."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(api + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


@dataclass
class AcsProcess:
    proc: Proc
    cwmp_port: int
    api_port: int
    workdir: Path
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        """A management API call with this server's token."""
        return api_json(self.api, method, path, body, timeout, token=self.token)

    @property
    def cwmp_url(self) -> str:
        return f"http://127.0.0.1:{self.cwmp_port}/"


def start_acs(workdir: Path, db: str, *, args: Sequence[str] = (), timeout: float = 60,
              cwmp: int | None = None, api: int | None = None,
              cpus: frozenset[int] | None = None) -> AcsProcess:
    """``acs-security serve`` on loopback ports (free ones unless given), CPE authentication
    off (the figures are for sessions without the digest round trip), its log (one line per
    session, as in production) to ``workdir/serve-PORT.log``; ``cpus``: pinned there (Proc). Returns once its management
    API answers /healthz. Raises RuntimeError if it exits first."""
    workdir.mkdir(parents=True, exist_ok=True)
    cwmp = cwmp or free_port()
    api = api or free_port()
    token = _api_token(db, f"bench-{cwmp}")
    # The load generators' phones all come from 127.0.0.1: no per-address connection cap.
    argv = [PY, "-m", "acs_security.cli", "serve", "--db", db, "--no-cpe-auth",
            "--cwmp-listen", f"127.0.0.1:{cwmp}", "--api-listen", f"127.0.0.1:{api}",
            "--max-connections-per-ip", "0", *args]
    proc = Proc(argv, log=workdir / f"serve-{cwmp}.log", cpus=cpus)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=2):
                return AcsProcess(proc, cwmp, api, workdir, token)
        except OSError:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"acs-security serve exited ({proc.popen.returncode}); see "
                                   f"{workdir}/serve-{cwmp}.log") from None
            time.sleep(0.1)
    proc.stop()
    raise RuntimeError("acs-security serve did not come up")


def _api_token(db: str, name: str) -> str | None:
    """An operator token for the management API, made with ``acs-security tokens create``
    on the database before the server starts; None for a version without API tokens."""
    done = subprocess.run([PY, "-m", "acs_security.cli", "tokens", "create", "--db", db,
                           "--name", name, "--role", "operator", "--json"],
                          cwd=REPO, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        if b"invalid choice" in done.stderr:
            return None  # no API tokens in this version
        raise RuntimeError(f"acs-security tokens create failed: {done.stderr.decode()[-500:]}")
    return str(json.loads(done.stdout)["token"])


class Profiler:
    """py-spy sampling a process (every thread) while it runs, written as collapsed stacks
    (``--format raw``, one ``frame;frame;... count`` line per stack) to ``out``; see
    ``python -m bench.profile`` to summarise one. Does nothing when ``out`` is None or
    py-spy is not installed."""

    def __init__(self, pid: int, out: Path | None, *, rate: int = 100) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        spy = Path(PY).with_name("py-spy")
        if out is None or not spy.exists():
            return
        self._proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--format", "raw", "-o", str(out),
             "--rate", str(rate), "--threads", "--nonblocking",
             # ACS_BENCH_PROFILE_GIL=1: only the thread holding the GIL, i.e. where the
             # process spends Python CPU (store threads waiting on the database drop out).
             *(["--gil"] if os.environ.get("ACS_BENCH_PROFILE_GIL") == "1" else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the measured work starts

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
