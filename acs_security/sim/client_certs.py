"""Client certificates of simulated phones, for an ACS (or a TCP passthrough to it) that asks
for them (mutual TLS, client_ca on the ACS).

One certificate per phone, as a phone's manufacturing certificate is its own: the files
``DIR/<serial>.pem`` and ``DIR/<serial>.key``, the layout ``acs-security certs dev-ca --serial
...`` writes under its ``devices/`` folder. A phone without files has no certificate (it
offers none, as a phone whose certificate was never installed). Loaded on first use and kept.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import ssl

__all__ = ["DeviceCertificates"]


class DeviceCertificates:
    """``serial -> PrivateCertificate | None`` over a directory of per-device PEM files."""

    def __init__(self, directory: str | Path) -> None:
        """Raises NotADirectoryError when ``directory`` is not one."""
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{self.directory} is not a directory of device certificates")
        self._loaded: dict[str, ssl.PrivateCertificate | None] = {}

    def __call__(self, serial: str) -> ssl.PrivateCertificate | None:
        """The phone's certificate with its key, or None when it has no files. Raises
        ValueError when its files are there but unreadable as a certificate and its key."""
        if serial in self._loaded:
            return self._loaded[serial]
        cert, key = self.directory / f"{serial}.pem", self.directory / f"{serial}.key"
        loaded = None
        if cert.is_file() and key.is_file():
            try:
                loaded = ssl.PrivateCertificate.loadPEM(cert.read_bytes() + b"\n" + key.read_bytes())
            except Exception as exc:  # noqa: BLE001 - OpenSSL's errors name no file
                raise ValueError(f"{cert} / {key}: not a certificate and its key ({exc})") from None
        self._loaded[serial] = loaded
        return loaded
