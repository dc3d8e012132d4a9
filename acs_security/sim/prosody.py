"""Real Prosody (the Debian package) for the XMPP end-to-end tests, the demo and the bench.

* :func:`find_prosody` finds the ``prosody`` binary, or installs the Debian package when it
  is missing and this process may (root with apt-get, as in CI); otherwise it raises
  :class:`ProsodyUnavailable` saying how to get it. A test that needs Prosody fails with that
  message: it is never skipped for want of it.
* :class:`ProsodyProcess` runs one Prosody in the foreground with a configuration of its own
  in a temporary directory: one virtual host, client connections on a loopback port the OS
  chose (bound to port 0 and released), no server-to-server or HTTP listeners, accounts in
  the ``internal_plain`` store. Accounts are created by writing the store's files directly
  before the start (:meth:`ProsodyProcess.add_account`): ``prosodyctl register`` starts a
  Lua interpreter per account (39 ms each measured, against 0.4 ms for the file; docs/xmpp.md).
  Plain streams are allowed (loopback); after :meth:`use_tls` STARTTLS is offered (or required).
  :meth:`restart` stops and starts it on the same port, as an operator's restart does.

Synchronous (subprocess): tests call it from a thread of their reactor or before starting it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ProsodyError", "ProsodyProcess", "ProsodyUnavailable", "find_prosody"]


class ProsodyUnavailable(RuntimeError):
    """No prosody binary, and it could not be installed; the message says how to get it."""


class ProsodyError(RuntimeError):
    """Prosody exited or did not accept connections in time; the message holds its log's tail."""


def find_prosody(*, install: bool = True, timeout: float = 600.0) -> str:
    """The path of the ``prosody`` binary; installs the Debian package ``prosody`` when missing,
    ``install`` is true and this process is root with apt-get. Raises ProsodyUnavailable."""
    found = shutil.which("prosody") or ("/usr/bin/prosody" if os.access("/usr/bin/prosody", os.X_OK) else None)
    if found:
        return found
    apt = shutil.which("apt-get")
    how = "install the Debian package: apt-get install prosody (as root)"
    if not install or apt is None or os.geteuid() != 0:
        reason = "installing is off" if not install else "no apt-get here" if apt is None else "not root"
        raise ProsodyUnavailable(f"prosody is not installed and cannot be installed ({reason}): {how}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={int(timeout)}"]
    install_cmd = [apt, *lock, "install", "-y", "-q", "--no-install-recommends", "prosody"]
    last = ""
    for step in ([install_cmd], [[apt, *lock, "update", "-q"], install_cmd]):
        ok = True
        for argv in step:
            run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout * 2, check=False)
            last = run.stdout[-2000:] + run.stderr[-2000:]
            ok = ok and run.returncode == 0
        found = shutil.which("prosody")
        if ok and found:
            return found
    raise ProsodyUnavailable(f"prosody could not be installed with apt-get ({how}):\n{last}")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _encode(part: str) -> str:
    """Prosody's file-store encoding of a host or user name (util/datamanager.lua: every
    character but letters, digits and '_' as %xx, lower-case hex)."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "".join(f"%{b:02x}" for b in c.encode())
                   for c in part)


def _lua_string(text: str) -> str:
    """A Lua string literal: printable ASCII as is, every other byte as a decimal escape."""
    out = [chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\' else f"\\{b:03d}" for b in text.encode()]
    return '"' + "".join(out) + '"'


class ProsodyProcess:
    """One Prosody serving ``domain`` on ``127.0.0.1:port`` (port chosen by the OS)."""

    def __init__(self, binary: str, domain: str = "xmpp.test", *, host: str = "127.0.0.1",
                 workdir: Path | None = None) -> None:
        self.binary = binary
        self.domain = domain
        self.host = host
        self.port = _free_port(host)
        self._own_dir = workdir is None
        self.dir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="acs-prosody-"))
        self.tls: tuple[Path, Path] | None = None
        self._require_tls = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "prosody.log"
        self.config = self.dir / "prosody.cfg.lua"
        self.accounts_dir = self.dir / "data" / _encode(domain) / "accounts"
        self.accounts_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)
        self._write_config()

    def use_tls(self, cert_pem: bytes, key_pem: bytes, *, require: bool = True) -> None:
        """Offer STARTTLS with this certificate (written into the directory, which Prosody's
        user can read) and, with ``require``, refuse plain streams. Before :meth:`start`."""
        cert, key = self.dir / "certs" / "xmpp.pem", self.dir / "certs" / "xmpp.key"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        key.chmod(0o600)
        self.tls = (cert, key)
        self._require_tls = require
        self._write_config()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _write_config(self) -> None:
        d = self.dir
        tls = tls_module = ""
        if self.tls is not None:
            tls_module = '"tls"; '
            cert, key = self.tls
            tls = f"ssl = {{ certificate = {_lua_string(str(cert))}; key = {_lua_string(str(key))}; }}\n"
        self.config.write_text(
            "-- written by acs_security.sim.prosody for a test run on loopback\n"
            f"pidfile = {_lua_string(str(d / 'prosody.pid'))}\n"
            f"data_path = {_lua_string(str(d / 'data'))}\n"
            f"certificates = {_lua_string(str(d / 'certs'))}\n"
            f"log = {{ {{ levels = {{ min = 'info' }}, to = 'file', filename = {_lua_string(str(self.log))} }} }}\n"
            f"interfaces = {{ {_lua_string(self.host)} }}\n"
            f"c2s_ports = {{ {self.port} }}\n"
            "c2s_direct_tls_ports = { }\ns2s_ports = { }\nhttp_ports = { }\nhttps_ports = { }\n"
            "component_ports = { }\n"
            f'modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; {tls_module}}}\n'
            'modules_disabled = { "s2s" }\n'
            'authentication = "internal_plain"\nstorage = "internal"\n'
            # Loopback only: plain streams and PLAIN over them are what the ACS's
            # xmpp_tls = optional allows; a real server requires TLS (docs/xmpp.md).
            f"c2s_require_encryption = {'true' if self._require_tls else 'false'}\n"
            "allow_unencrypted_plain_auth = true\n"
            "limits = { c2s = { rate = \"100mb/s\"; }; }\n"
            f"{tls}"
            f"VirtualHost {_lua_string(self.domain)}\n")

    def add_account(self, user: str, password: str) -> None:
        """Create account ``user@domain`` by writing its internal_plain file (before start or
        while running: the store is read at each login)."""
        path = self.accounts_dir / f"{_encode(user.lower())}.dat"
        path.write_text(f"return {{\n\t[\"password\"] = {_lua_string(password)};\n}};\n")

    def _run_as(self) -> str | None:
        """Prosody refuses to run as root (mod_posix): as root, it runs as the Debian package's
        ``prosody`` user, which then owns the directory."""
        if os.geteuid() != 0:
            return None
        import pwd
        try:
            entry = pwd.getpwnam("prosody")
        except KeyError:
            raise ProsodyError("running as root, and there is no prosody user to run Prosody as") from None
        for root, _dirs, files in os.walk(self.dir):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        return "prosody"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until it accepts connections. Raises ProsodyError."""
        user = self._run_as()
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen([self.binary, "-F", "--config", str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True, user=user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProsodyError(f"prosody exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with socket.create_connection(self.address, timeout=1.0):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ProsodyError(f"prosody did not accept connections on {self.host}:{self.port} in {timeout}s:\n"
                           f"{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.dir / "stderr.log", self.log):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop and remove the directory it made."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
