"""A running ACS with simulated phones for the browser tests: the real server (SQLite in a
temporary folder) and a SimulatedFleet on a private reactor in a background thread, while the
test drives Chromium from the main thread. Loopback only, ports the OS picks; ``stop()``
stops everything it started."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.pollreactor import PollReactor
from twisted.internet.threads import blockingCallFromThread

from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.faults import parse_faults
from acs_security.sim.fleet import SimulatedFleet
from tests.support import _as_global_reactor, wait_until

__all__ = ["Stack", "chromium", "CHROMIUM", "CHROMEDRIVER"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
RESOLVE = {"acs.example.net": "127.0.0.1"}
CR_USER, CR_PASS = "acs-cr", "cr-secret-console-51"
#: Flags that work in a container without a display, a GPU or network beyond loopback.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900")


def _install_chromium() -> str | None:
    """Install Debian's chromium and chromium-driver when missing (as root, with apt-get);
    the reason when that cannot be done."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver, as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    install = [*apt, "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"]
    if subprocess.run(install, env=env, capture_output=True, check=False, timeout=900).returncode != 0:
        subprocess.run([*apt, "update", "-q"], env=env, capture_output=True, check=False, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            return f"apt-get could not install chromium: {done.stderr.strip().splitlines()[-1:]}"
    return None


def chromium(download_dir: Path | None = None) -> Any:
    """A Selenium driver for Debian's Chromium (never a downloaded browser), with a fresh
    profile. Skips the test when the browser cannot be had."""
    why = _install_chromium()
    if why is not None:
        pytest.skip(why)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for browsers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="acs-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if download_dir is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.acs_profile = profile  # type: ignore[attr-defined]  # ours: removed by the caller with the driver
    return driver


class Stack:
    """The server and ``phones`` simulated phones; ``faults`` as ``acs-security simulate
    --faults`` takes them."""

    def __init__(self, tmp: Path, *, phones: int, faults: str = "", cr_delay: tuple[float, float] = (0.05, 0.3)):
        self.tmp = tmp
        self.phones = phones
        self.faults = faults
        self.cr_delay = cr_delay
        self.reactor = PollReactor()
        self.server: AcsServer | None = None
        self.fleet: SimulatedFleet | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- life -------------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> Stack:
        self._thread = threading.Thread(target=self._run, name="acs-stack", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"the ACS and {self.phones} phones were not up in {timeout}s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        self.reactor.callWhenRunning(lambda: Deferred.fromCoroutine(self._boot()).addErrback(self._failed))
        with _as_global_reactor(self.reactor):
            self.reactor.run(installSignalHandlers=False)

    def _failed(self, failure: Any) -> None:
        self._error = failure.value
        self._ready.set()

    async def _boot(self) -> None:
        (self.tmp / "cr.pw").write_text(CR_PASS + "\n")
        config = load_config(environ={}, overrides={
            "db": f"sqlite:///{self.tmp}/acs.db", "cwmp_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0",
            "cpe_auth": False, "cr_username": CR_USER, "cr_password_file": str(self.tmp / "cr.pw"),
            "cr_session_wait": 20, "max_connections_per_ip": 0,
            # The guardrails know the ACS by the URL the phones use.
            "public_url": "http://acs.example.net:7547/"})
        self.server = AcsServer(config=config, reactor=self.reactor)
        self.server.start()
        await self.server.start_engine()
        url = f"http://acs.example.net:{self.server.address('cwmp').port}/cwmp"
        self.fleet = SimulatedFleet(
            self.reactor, url, phones=self.phones, resolve=RESOLVE, inform_interval=600, boot_ramp_s=2.0,
            seed=18, cr_delay=self.cr_delay, retry_scale=0.02, cr_password_mode="shared", cr_username=CR_USER,
            cr_password=CR_PASS, cr_min_interval=0.2, faults=parse_faults(self.faults) if self.faults else None)
        await self.fleet.start()
        server = self.server
        await wait_until(self.reactor, lambda: server.store.count_devices() >= self.phones, timeout=120,
                         interval=0.1, what="every phone registered")
        self._ready.set()

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return

        async def down() -> None:
            if self.fleet is not None:
                await self.fleet.stop()
            if self.server is not None:
                await self.server.stop()

        try:
            self.call(lambda: Deferred.fromCoroutine(down()))
        finally:
            self.reactor.callFromThread(self.reactor.stop)
            self._thread.join(60)

    # -- from the test's thread -------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the reactor thread and wait for its (Deferred) result."""
        return blockingCallFromThread(self.reactor, fn, *args)

    def token(self, name: str, role: str) -> str:
        server = self.server
        assert server is not None
        return self.call(lambda: self._in_thread(server.issue_token, name, role))

    @staticmethod
    def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.console_url().rstrip("/")
