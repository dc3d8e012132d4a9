"""Passwords at rest: AES-256-GCM under a key file, sealed job policies, key rotation.

What is stored encrypted (docs/guardrails.md, "Secrets at rest"):

* CPE and connection-request credentials: through the store's SecretCodec seam
  (acs_security/store/codec.py); HTTP digest (RFC 7616) needs the plain password back, so
  encryption, not hashing.
* Secret settings inside job and assignment policies (Proxy_Password, VPN_Password, ACS_Password, ...):
  :class:`SecretStore` moves them out of the policy's ``settings`` into a ``sealed`` block of
  ciphertexts before the row is written, and puts them back when it is read. A reader
  of the raw ``jobs`` table (or a backup) sees neither the password nor a mask that could be
  pushed by mistake: an unsealed read simply lacks the setting.
* Secret device parameters the ACS learnt by pushing them (``device_parameters``).
* Files served to phones and configuration backups (``device_files``, ``config_blobs``):
  whole cfg.xml documents, which may hold passwords, through the store's SecretCodec.

Stored form: ``acs1:<key id>:<base64url(nonce | ciphertext | tag)>``; the key id is the first
8 hex digits of the key's SHA-256, so a value names the key that decrypts it and rotation can
tell what is left to re-encrypt. The key file holds one base64url 32-byte key per line; the
first encrypts, all decrypt. It is created on first start with mode 0600 and refused when
group or others can read it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from acs_security.mapping import Catalogue, load_catalogue

__all__ = [
    "PREFIX",
    "KeyFileError",
    "KeyRing",
    "EncryptingCodec",
    "SecretStore",
    "default_key_path",
    "digest_nonce_key",
    "file_url_key",
    "is_secret_parameter",
    "key_id_of",
    "load_or_create_key_file",
    "open_codec",
    "parse_key_file",
    "read_key_file",
    "render_key_file",
    "seal_policy",
    "unseal_policy",
    "write_key_file",
]

PREFIX = "acs1:"
_AAD = b"acs-security stored secret v1"  # binds ciphertexts to this use and format version
KEY_BYTES = 32
_NONCE_BYTES = 12  # AES-GCM's standard nonce (NIST SP 800-38D 8.2)
SECRET_SUFFIXES = ("Password", "Passphrase", "Secret")
_HEADER = ("# acs-security secret keys (AES-256-GCM, base64url). The first line encrypts; every\n"
           "# line decrypts. Keep it owner-only (0600). Rotate with `acs-security secrets rotate`.\n")


class KeyFileError(ValueError):
    """The key file is missing, unreadable, too open or malformed; the message says which.
    It never contains key material."""


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Keys, primary first. Its repr shows key ids only."""

    keys: tuple[bytes, ...] = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyFileError("a key ring needs at least one key")
        for key in self.keys:
            if len(key) != KEY_BYTES:
                raise KeyFileError(f"a key must be {KEY_BYTES} bytes")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(_key_id(k) for k in self.keys)

    @property
    def primary_id(self) -> str:
        return _key_id(self.keys[0])

    def get(self, key_id: str) -> bytes | None:
        return next((k for k in self.keys if _key_id(k) == key_id), None)

    def with_primary(self, key: bytes) -> KeyRing:
        return KeyRing((key, *(k for k in self.keys if k != key)))

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.ids)!r})"


def parse_key_file(text: str, *, where: str = "key file") -> KeyRing:
    """Keys from key-file text (comments and blank lines ignored). Raises KeyFileError."""
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.urlsafe_b64decode(line.encode("ascii"))
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise KeyFileError(f"{where}: line {number} is not base64url") from None
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"{where}: line {number} is not a {KEY_BYTES}-byte key")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise KeyFileError(f"{where}: holds no key")
    return KeyRing(tuple(keys))


def render_key_file(ring: KeyRing) -> str:
    return _HEADER + "".join(base64.urlsafe_b64encode(k).decode("ascii") + "\n" for k in ring.keys)


def read_key_file(path: Path) -> KeyRing:
    """Read a key file; refuse one that group or others may read. Raises KeyFileError."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path}: not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(f"key file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets others read it; "
                               "run chmod 600 on it")
        text = path.read_text("ascii")
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path}: not ASCII text") from None
    return parse_key_file(text, where=f"key file {path}")


def _write_new(path: Path, text: str) -> None:
    # O_EXCL: two processes starting at once cannot both create (and overwrite) a key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Replace the key file atomically (temporary file, fsync, rename), mode 0600.
    Raises KeyFileError."""
    tmp = path.with_name(path.name + ".new")
    try:
        tmp.unlink(missing_ok=True)
        _write_new(tmp, render_key_file(ring))
        os.replace(tmp, path)
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror}") from None


def load_or_create_key_file(path: Path, *, random_bytes: Callable[[int], bytes] = os.urandom) -> tuple[KeyRing, bool]:
    """(ring, created): read the key file, or create it with one new key on first start.
    Raises KeyFileError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = KeyRing((random_bytes(KEY_BYTES),))
        _write_new(path, render_key_file(ring))
        return ring, True
    except FileExistsError:
        return read_key_file(path), False
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror}") from None


def default_key_path(db_url: str) -> Path | None:
    """Where the key file lives when ``secret_key_file`` is not set: ``acs.key`` next to a
    SQLite database file, ``var/acs.key`` in the working directory for PostgreSQL, None for
    an in-memory database (its secrets die with it, so an ephemeral key serves)."""
    try:
        url = sa.engine.make_url(db_url)
    except sa.exc.ArgumentError:
        return None  # open_store reports the bad URL
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        return Path(database).expanduser().parent / "acs.key"
    return Path("var") / "acs.key"


def key_id_of(stored: str) -> str | None:
    """The key id an encrypted value names; None for anything else (legacy plain text)."""
    if stored.startswith(PREFIX) and stored[len(PREFIX) + 8: len(PREFIX) + 9] == ":":
        return stored[len(PREFIX): len(PREFIX) + 8]
    return None


class EncryptingCodec:
    """A SecretCodec (acs_security/store/codec.py) with AES-256-GCM under a KeyRing.

    ``reload`` (reading the key file again) is tried once when a value names a key the ring
    lacks: another process rotated the keys. Values without the ``acs1:`` prefix were stored
    before encryption existed and are returned as they are; ``secrets rotate`` encrypts them.
    """

    __slots__ = ("_ring", "_random", "_reload")

    def __init__(self, ring: KeyRing, *, random_bytes: Callable[[int], bytes] = os.urandom,
                 reload: Callable[[], KeyRing] | None = None) -> None:
        self._ring = ring
        self._random = random_bytes
        self._reload = reload

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def encode(self, plaintext: str) -> str:
        nonce = self._random(_NONCE_BYTES)
        sealed = AESGCM(self._ring.keys[0]).encrypt(nonce, plaintext.encode("utf-8"), _AAD)
        return f"{PREFIX}{self._ring.primary_id}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decode(self, stored: str) -> str:
        """The password. Raises ValueError (never quoting the value) when it cannot."""
        key_id = key_id_of(stored)
        if key_id is None:
            return stored
        key = self._ring.get(key_id)
        if key is None and self._reload is not None:
            try:
                self._ring = self._reload()
            except KeyFileError:
                pass
            key = self._ring.get(key_id)
        if key is None:
            raise ValueError(f"encrypted with key {key_id}, which the key file does not hold")
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) + 9:].encode("ascii"))
            return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode("utf-8")
        except (ValueError, binascii.Error, InvalidTag, UnicodeError):
            raise ValueError(f"a value under key {key_id} does not decrypt (corrupt or altered)") from None

    def __repr__(self) -> str:
        return f"EncryptingCodec({self._ring!r})"


def open_codec(key_file: Path | None, db_url: str, *,
               random_bytes: Callable[[int], bytes] = os.urandom) -> tuple[EncryptingCodec, Path | None, bool]:
    """(codec, key file path or None, created) for a server: ``key_file`` or the default
    place (:func:`default_key_path`), created on first start. Raises KeyFileError."""
    path = key_file if key_file is not None else default_key_path(db_url)
    if path is None:
        return EncryptingCodec(KeyRing((random_bytes(KEY_BYTES),)), random_bytes=random_bytes), None, True
    ring, created = load_or_create_key_file(path, random_bytes=random_bytes)
    return EncryptingCodec(ring, random_bytes=random_bytes, reload=lambda: read_key_file(path)), path, created


_DIGEST_NONCE_INFO = b"acs-security digest nonce v1"
_FILE_URL_INFO = b"acs-security file url v1"


def digest_nonce_key(codec: EncryptingCodec) -> bytes:
    """The 32-byte key HTTP digest nonces are minted and checked under (DigestVerifier).

    Derived from the key ring's current (first) key with HKDF-SHA256 (RFC 5869), info
    ``acs-security digest nonce v1``, so the stored-secrets key itself is never used for
    anything but AES-GCM. Every node of a cluster reads the same key file (it must, to
    decrypt the passwords they share), so every node derives the same nonce key and a
    nonce one node issued verifies at another: the CPE's challenge and its answer may
    reach different nodes behind the load balancer. After ``secrets rotate`` the first
    key changes: restart every node, or nonces issued by nodes still on the old key are
    refused as foreign (the CPE is challenged again).
    Raises TypeError for anything but an EncryptingCodec."""
    if not isinstance(codec, EncryptingCodec):
        raise TypeError(f"digest_nonce_key takes an EncryptingCodec, not {type(codec).__name__}")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=_DIGEST_NONCE_INFO).derive(codec.ring.keys[0])


def file_url_key(codec: EncryptingCodec) -> bytes:
    """The 32-byte key that signs the URLs of files served to phones (files/tokens.py):
    derived like :func:`digest_nonce_key` (HKDF-SHA256, info ``acs-security file url v1``),
    so every node of a cluster checks the URLs any node issued. After ``secrets rotate``
    URLs issued before the restart stop working; the transfer is then offered again.
    Raises TypeError for anything but an EncryptingCodec."""
    if not isinstance(codec, EncryptingCodec):
        raise TypeError(f"file_url_key takes an EncryptingCodec, not {type(codec).__name__}")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=_FILE_URL_INFO).derive(codec.ring.keys[0])


# ---------------------------------------------------------------------- what is secret

#: How many parameter names a SecretStore remembers as secret or not before it starts over.
_SECRET_NAMES_MAX = 10_000


def is_secret_parameter(name: str, catalogue: Catalogue) -> bool:
    """A setting the data model marks secret (by element or TR-069 path), or a parameter
    named like a password (paths a per-model override renamed)."""
    found = catalogue.find(name)
    if found is not None:
        return found[0].secret
    return name.endswith(SECRET_SUFFIXES)


def seal_policy(policy: Mapping[str, Any], codec: Any, catalogue: Catalogue) -> dict[str, Any]:
    """The policy JSON with secret settings moved, encrypted, into ``sealed``."""
    out = dict(policy)
    sealed: dict[str, dict[str, str]] = {}
    for section in ("settings", "extension_settings"):
        values = dict(out.get(section) or {})
        for key in list(values):
            if values[key] and is_secret_parameter(key, catalogue):
                sealed.setdefault(section, {})[key] = codec.encode(str(values.pop(key)))
        out[section] = values
    if sealed:
        out["sealed"] = sealed
    return out


def unseal_policy(policy: Mapping[str, Any], codec: Any) -> dict[str, Any]:
    """The policy JSON with its sealed settings decrypted back in place. Raises ValueError."""
    out = dict(policy)
    sealed = out.pop("sealed", None) or {}
    for section, values in sealed.items():
        merged = dict(out.get(section) or {})
        merged.update({key: codec.decode(value) for key, value in values.items()})
        out[section] = merged
    return out


class SecretStore:
    """A Store (acs_security/store/sql.py) whose job policies and secret device parameters
    are encrypted at rest; every other method is the wrapped store's.

    Give it the same codec the store was opened with (``open_store(url, secret_codec=...)``)
    so that one key file covers everything.
    """

    def __init__(self, store: Any, codec: Any, *, catalogue: Catalogue | None = None) -> None:
        self._store = store
        self._codec = codec
        self._catalogue = catalogue if catalogue is not None else load_catalogue()
        # is_secret_parameter by name: the catalogue is fixed, and a push writes the same
        # policy paths for every device (issue 17: its lookups were ~3% of a push session's
        # CPU). Bounded, since informs and read-backs may carry any name; the pool threads
        # share it (a lost race only computes a name twice).
        self._secret_names: dict[str, bool] = {}

    def _is_secret(self, name: str) -> bool:
        known = self._secret_names.get(name)
        if known is None:
            known = is_secret_parameter(name, self._catalogue)
            if len(self._secret_names) >= _SECRET_NAMES_MAX:
                self._secret_names.clear()
            self._secret_names[name] = known
        return known

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"SecretStore({self._store!r})"

    @property
    def inner(self) -> Any:
        return self._store

    def _open(self, rec: Any) -> Any:
        return dataclasses.replace(rec, policy=unseal_policy(rec.policy, self._codec)) if rec is not None else None

    def create_job(self, *, policy: dict[str, Any], **kwargs: Any) -> Any:
        return self._open(self._store.create_job(policy=seal_policy(policy, self._codec, self._catalogue), **kwargs))

    def get_job(self, job_id: int) -> Any:
        return self._open(self._store.get_job(job_id))

    def list_jobs(self, **kwargs: Any) -> list[Any]:
        return [self._open(r) for r in self._store.list_jobs(**kwargs)]

    def _seal_params(self, params: Sequence[tuple[str, str, str]]) -> list[Any]:
        out: list[Any] = []
        for p in params:
            if (isinstance(p, tuple) and len(p) == 3 and isinstance(p[0], str) and isinstance(p[1], str)
                    and p[1] and self._is_secret(p[0])):
                p = (p[0], self._codec.encode(p[1]), p[2])
            out.append(p)
        return out

    def _open_params(self, params: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        return {name: ((self._codec.decode(value) if value.startswith(PREFIX) else value), xsi_type)
                for name, (value, xsi_type) in params.items()}

    def set_device_parameters(self, device_id: str, params: Sequence[tuple[str, str, str]]) -> None:
        self._store.set_device_parameters(device_id, self._seal_params(params))

    def device_parameters(self, device_id: str) -> dict[str, tuple[str, str]]:
        return self._open_params(self._store.device_parameters(device_id))

    # Assignments' policies are sealed like a job's, and the values sessions record like
    # set_device_parameters' (desired state, decision 0009).
    def _open_assignment(self, rec: Any) -> Any:
        return dataclasses.replace(rec, policy=unseal_policy(rec.policy, self._codec)) if rec is not None else None

    def create_assignment(self, *, policy: dict[str, Any], **kwargs: Any) -> Any:
        return self._open_assignment(self._store.create_assignment(
            policy=seal_policy(policy, self._codec, self._catalogue), **kwargs))

    def update_assignment(self, assignment_id: int, *, policy: dict[str, Any], **kwargs: Any) -> Any:
        return self._open_assignment(self._store.update_assignment(
            assignment_id, policy=seal_policy(policy, self._codec, self._catalogue), **kwargs))

    def set_assignment_enabled(self, assignment_id: int, enabled: bool) -> Any:
        return self._open_assignment(self._store.set_assignment_enabled(assignment_id, enabled))

    def get_assignment(self, assignment_id: int) -> Any:
        return self._open_assignment(self._store.get_assignment(assignment_id))

    def find_assignment(self, name: str) -> Any:
        return self._open_assignment(self._store.find_assignment(name))

    def list_assignments(self, **kwargs: Any) -> list[Any]:
        return [self._open_assignment(r) for r in self._store.list_assignments(**kwargs)]

    def desired_device_state(self, device_id: str) -> Any:
        params, rows, last = self._store.desired_device_state(device_id)
        return self._open_params(params), rows, last

    def record_desired(self, device_id: str, *, params: Sequence[tuple[str, str, str]] = (), **kwargs: Any) -> None:
        self._store.record_desired(device_id, params=self._seal_params(params), **kwargs)

    def record_audit(self, job_id: int, device_id: str, *, params: Sequence[tuple[str, str, str]] = (),
                     **kwargs: Any) -> None:
        self._store.record_audit(job_id, device_id, params=self._seal_params(params), **kwargs)

