"""CPE and connection-request credentials in the store (a mixin, like jobs.py).

Passwords go through the Store's SecretCodec (store/codec.py) both ways and are never
quoted in an error. :class:`CredentialsMixin` uses the Store's ``_read``/``_write``/``_now``/
``_insert``/``_require_device`` plumbing; the Store (sql.py) lists it among its bases.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import StoreError
from acs_security.store.records import Credential, CredentialInfo, check_text
from acs_security.store.statements import created_at_result

__all__ = ["SHARED_CREDENTIAL_KEY", "CredentialsMixin"]

#: The key of the credential every CPE without its own may use.
SHARED_CREDENTIAL_KEY = "*"


class CredentialsMixin:
    """CPE credentials (what a phone authenticates with) and connection-request credentials
    (what the ACS authenticates with at the phone)."""

    _read: Any
    _write: Any
    _now: Any
    _insert: Any
    _require_device: Any
    _codec: Any
    _drv: Any
    _engine: Any

    # -- CPE credentials --------------------------------------------------

    def _decode(self, what: str, key: str, stored: str) -> str:
        try:
            return self._codec.decode(stored)
        except Exception as exc:  # noqa: BLE001 - the codec's own error may quote the ciphertext: do not chain it
            raise StoreError(f"cannot decode the stored {what} password for {key!r} ({type(exc).__name__})") from None

    @staticmethod
    def _check_secret(username: str, password: str) -> None:
        check_text("username", username, empty=False)
        check_text("password", password, empty=False)  # its messages never quote the value

    def put_cpe_credential(self, key: str, username: str, password: str) -> None:
        """Create or replace the credential a CPE authenticates with. ``key`` is
        a device id, a serial number, or ``*`` for the shared credential;
        created_at is when it was (re)set.

        Raises InvalidArgument (empty key/username/password), StoreUnavailable/StoreError.
        """
        check_text("key", key, empty=False)
        self._check_secret(username, password)
        row = {"key": key, "username": username, "password": self._codec.encode(password), "created_at": self._now()}
        ins = self._insert(t.cpe_credentials)
        stmt = ins.on_conflict_do_update(
            index_elements=[t.cpe_credentials.c.key],
            set_={"username": ins.excluded.username, "password": ins.excluded.password,
                  "created_at": ins.excluded.created_at},
        )
        with self._write("store a CPE credential") as conn:
            conn.execute(stmt, row)

    def delete_cpe_credential(self, key: str) -> bool:
        """Delete a CPE credential; True if it existed.

        Raises InvalidArgument for an empty key; StoreUnavailable/StoreError.
        """
        check_text("key", key, empty=False)
        with self._write("delete a CPE credential") as conn:
            result = conn.execute(sa.delete(t.cpe_credentials).where(t.cpe_credentials.c.key == key))
            return bool(result.rowcount)

    def list_cpe_credentials(self) -> list[CredentialInfo]:
        """Every CPE credential by key, without passwords. Raises StoreUnavailable/StoreError."""
        c = t.cpe_credentials.c
        with self._read("list CPE credentials") as conn:
            rows = conn.execute(sa.select(c.key, c.username, c.created_at).order_by(c.key))
            return [CredentialInfo(key, username, created_at) for key, username, created_at in rows]

    def find_cpe_credential(
        self, *, device_id: str | None, serial_number: str | None, username: str | None = None
    ) -> Credential | None:
        """The credential a CPE must present: the first that exists of its
        device id, its serial number, then the shared ``*``.

        The most specific credential wins outright: if ``username`` is given
        and differs from it, the answer is None, never a fallback to a less
        specific one (a phone given its own credential cannot use the shared one).
        Raises InvalidArgument for non-string arguments; StoreUnavailable/StoreError.
        """
        keys: list[str] = []
        for name, value in (("device_id", device_id), ("serial_number", serial_number)):
            if value is not None and check_text(name, value):
                keys.append(value)
        keys.append(SHARED_CREDENTIAL_KEY)
        if username is not None:
            check_text("username", username)
        c = t.cpe_credentials.c
        with self._read("find a CPE credential") as conn:
            rows = {row.key: row for row in conn.execute(sa.select(t.cpe_credentials).where(c.key.in_(keys)))}
        for key in keys:
            row = rows.get(key)
            if row is None:
                continue
            if username is not None and row.username != username:
                return None
            return Credential(row.key, row.username, self._decode("CPE", row.key, row.password), row.created_at)
        return None

    # -- connection-request credentials ------------------------------------

    def put_connection_request_credential(self, device_id: str, username: str, password: str) -> None:
        """Create or replace the credential the ACS uses for the device's
        connection requests (Device.ManagementServer.ConnectionRequestUsername/Password).

        Raises UnknownDevice, InvalidArgument, StoreUnavailable/StoreError.
        """
        self._check_secret(username, password)
        row = {"device_id": device_id, "username": username, "password": self._codec.encode(password),
               "created_at": self._now()}
        ins = self._insert(t.connection_request_credentials)
        stmt = ins.on_conflict_do_update(
            index_elements=[t.connection_request_credentials.c.device_id],
            set_={"username": ins.excluded.username, "password": ins.excluded.password,
                  "created_at": ins.excluded.created_at},
        )
        with self._write("store a connection-request credential") as conn:
            self._require_device(conn, device_id)
            conn.execute(stmt, row)

    def get_connection_request_credential(self, device_id: str) -> Credential | None:
        """The connection-request credential for the device (key = device id), or None.

        Raises InvalidArgument for a bad id; StoreUnavailable/StoreError.
        """
        check_text("device_id", device_id, empty=False)
        c = t.connection_request_credentials.c
        with self._read("read a connection-request credential") as conn:
            if self._drv is not None:
                found = self._drv["cr_credential"].execute(conn, {"device_id": device_id})
                if not found:
                    return None
                username, password, created = found[0]
                created_at = created_at_result(self._engine.dialect, created)
            else:
                row = conn.execute(sa.select(t.connection_request_credentials).where(c.device_id == device_id)).first()
                if row is None:
                    return None
                username, password, created_at = row.username, row.password, row.created_at
        return Credential(device_id, username, self._decode("connection-request", device_id, password), created_at)
