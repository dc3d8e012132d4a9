"""Signed file URLs (pure): ``/files/<id>.<expires>.<signature>/cfg.xml``.

The token names one file row and the second it stops being valid, signed with HMAC-SHA-256
under a server key derived from the key file (``acs_security.secrets.file_url_key``), so
every node of a cluster checks what any node issued, and nothing that opens a file is
stored. A forged, altered or truncated token is refused before the store is asked.

The request path is matched as a whole against one pattern: no part of it is ever used as
a file name (the content lives in the store), and anything else (``..``, encoded slashes,
another name, a directory) is simply not a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = ["FILES_PREFIX", "FileSigner", "FileToken", "parse_file_path"]

#: Where files live on the CWMP listener (every other path stays the CWMP endpoint's).
FILES_PREFIX = "/files/"
_SIG_CHARS = 32  # 192 bits of the HMAC, base64url
_PATH = re.compile(r"^/files/([1-9][0-9]{0,11})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{32})/cfg\.xml$")


@dataclass(frozen=True, slots=True)
class FileToken:
    file_id: int
    expires: int  # Unix seconds
    signature: str


def parse_file_path(path: bytes | str) -> FileToken | None:
    """The token of a request path, or None when the path is not exactly a file's."""
    if isinstance(path, bytes):
        try:
            path = path.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _PATH.match(path)
    if match is None:
        return None
    return FileToken(int(match.group(1)), int(match.group(2)), match.group(3))


class FileSigner:
    """Makes and checks file tokens under one key (32 bytes or more)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a file URL key needs at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "FileSigner(<key>)"

    def _sign(self, file_id: int, expires: int) -> str:
        mac = hmac.new(self._key, b"acs-security file v1|%d|%d" % (file_id, expires), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii")[:_SIG_CHARS]

    def path(self, file_id: int, expires: int) -> str:
        """The URL path of a file valid until ``expires`` (Unix seconds)."""
        if file_id < 1 or expires < 1:
            raise ValueError("file id and expiry must be positive")
        return f"{FILES_PREFIX}{file_id}.{expires}.{self._sign(file_id, expires)}/cfg.xml"

    def check(self, token: FileToken) -> bool:
        """True when the token was signed with this key (constant-time comparison)."""
        return hmac.compare_digest(self._sign(token.file_id, token.expires), token.signature)
