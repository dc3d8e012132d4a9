"""Offering a file transfer to one phone: the file row, its URL and the RPC that carries it.

A Download (TR-069 A.3.2.8) or Upload (A.3.2.9) names a URL, a Username and a Password.
Each file is reachable only by its phone (docs/files.md, decision 0011):

- ``digest``: the URL needs HTTP digest (RFC 7616) with the phone's own CWMP credential (one
  stored for its device id or serial number; the shared ``*`` credential is refused, since
  every phone knows it), and the RPC's Username/Password carry that credential; the URL
  may be fetched again until the transfer is over;
- ``signed``: the URL alone opens the file, once, until it expires (the RPC carries no
  credential);
- ``auto`` (default): digest where the phone has its own credential, else signed.

Either way the URL is signed and expires (``ttl``), so it cannot be guessed or kept. The
file row is committed before the RPC is returned: the phone can never be sent a URL the
store does not know. No Twisted here: ``store.call`` returns an awaitable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from acs_security.cwmp import messages as m
from acs_security.files.render import FILE_NAME
from acs_security.files.tokens import FileSigner

__all__ = ["AUTH_MODES", "DOWNLOAD_FILE_TYPE", "UPLOAD_FILE_TYPE", "FileOffers", "OfferError"]

#: TR-069 A.3.2.8 FileType of a vendor configuration file sent to the CPE ...
DOWNLOAD_FILE_TYPE = "3 Vendor Configuration File"
#: ... and A.3.2.9 FileType of the one the CPE uploads.
UPLOAD_FILE_TYPE = "1 Vendor Configuration File"
AUTH_MODES = ("auto", "digest", "signed")


class OfferError(Exception):
    """The transfer cannot be offered to this phone; the message says why (no secret)."""


class FileOffers:
    """Creates the file rows and the Download/Upload messages of transfers.

    ``base_url``: the scheme and authority phones fetch files from (``https://acs.example.net``),
    settable after the listener is up; ``find_credential(device_id=, serial_number=)``
    returns an awaitable of the phone's CWMP credential (or None)."""

    def __init__(self, *, store: Any, signer: FileSigner, clock: Any,
                 find_credential: Callable[..., Any] | None = None, base_url: str | None = None,
                 auth: str = "auto", ttl: float = 900.0, transfer_timeout: float = 3600.0,
                 fetch_wait: float = 120.0, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"file auth {auth!r} is not one of {', '.join(AUTH_MODES)}")
        if ttl < 10 or transfer_timeout < ttl or not 1 <= fetch_wait <= ttl:
            raise ValueError("the file ttl must be at least 10 s, the transfer timeout at least the ttl, "
                             "and the fetch wait 1 s to the ttl")
        self._store = store
        self._signer = signer
        self._clock = clock
        self._find = find_credential
        self.base_url = base_url.rstrip("/") if base_url else None
        self.auth = auth
        self.ttl = ttl
        self.transfer_timeout = transfer_timeout
        self.fetch_wait = fetch_wait
        self._random = random_bytes

    @property
    def signer(self) -> FileSigner:
        return self._signer

    async def _credential(self, device_id: str, serial: str) -> tuple[str, str, str]:
        """(auth mode, username, password) of the transfer. Raises OfferError."""
        if self.auth != "signed" and self._find is not None:
            credential = await self._find(device_id=device_id, serial_number=serial)
            if credential is not None and credential.key != "*":
                return "digest", credential.username, credential.password
        if self.auth == "digest":
            raise OfferError("file_auth is digest but this phone has no CWMP credential of its own "
                             "(per device id or serial number; the shared one is refused)")
        return "signed", "", ""

    def command_key(self, job_key: str) -> str:
        """The CommandKey of one transfer: the job's key and a tag of this transfer, so a
        TransferComplete names exactly one file (TR-069 A.3.2.8: at most 32 characters)."""
        key = f"{job_key}.{self._random(3).hex()}"
        if len(key) > 32:
            raise OfferError(f"CommandKey {key!r} is longer than 32 characters")
        return key

    async def _offer(self, *, kind: str, device_id: str, serial: str, job_id: int | None,
                     command_key: str, content: str | None) -> tuple[str, str, str, int]:
        if self.base_url is None:
            raise OfferError("no file URL is known (set file_url or public_url)")
        mode, username, password = await self._credential(device_id, serial)
        now = datetime.fromtimestamp(self._clock.seconds(), UTC)
        expires = now + timedelta(seconds=self.ttl)
        rec = await self._store.call("create_file", device_id=device_id, kind=kind, command_key=command_key,
                                     auth=mode, expires_at=expires, job_id=job_id, content=content, now=now)
        url = self.base_url + self._signer.path(rec.id, int(expires.timestamp()))
        return url, username, password, rec.size

    async def download(self, *, device_id: str, serial: str, job_id: int | None, job_key: str,
                       content: bytes) -> m.Download:
        """The Download of ``content`` (a cfg.xml) to the phone; its file row is committed.
        Raises OfferError, StoreError."""
        command_key = self.command_key(job_key)
        url, username, password, size = await self._offer(
            kind="download", device_id=device_id, serial=serial, job_id=job_id,
            command_key=command_key, content=content.decode("utf-8"))
        return m.Download(command_key=command_key, file_type=DOWNLOAD_FILE_TYPE, url=url, username=username,
                          password=password, file_size=size, target_file_name=FILE_NAME)

    async def upload(self, *, device_id: str, serial: str, job_id: int | None, job_key: str) -> m.Upload:
        """The Upload of the phone's configuration; the place it goes is committed.
        Raises OfferError, StoreError."""
        command_key = self.command_key(job_key)
        url, username, password, _ = await self._offer(
            kind="upload", device_id=device_id, serial=serial, job_id=job_id,
            command_key=command_key, content=None)
        return m.Upload(command_key=command_key, file_type=UPLOAD_FILE_TYPE, url=url, username=username,
                        password=password)
