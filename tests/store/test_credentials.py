"""CPE credentials and connection-request credentials, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from acs_security.store import (
    InvalidArgument,
    SecretCodec,
    Store,
    StoreError,
    UnknownDevice,
    make_device_id,
    open_store,
)
from acs_security.store import schema as t
from tests.store.conftest import CISCO_CLASS, CISCO_OUI, FakeClock, inform

DEVICE = make_device_id(CISCO_OUI, CISCO_CLASS, "FCH1")
SECRETS = ("Dev1ce-Secret!", "Seri4l-Secret!", "Sh4red-Secret!")


def _find(store: Store, username: str | None = None):  # type: ignore[no-untyped-def]
    return store.find_cpe_credential(device_id=DEVICE, serial_number="FCH1", username=username)


def test_lookup_order_is_device_id_then_serial_then_shared(store: Store) -> None:
    assert _find(store) is None
    store.put_cpe_credential("*", "fleet", SECRETS[2])
    store.put_cpe_credential("FCH1", "fch1", SECRETS[1])
    store.put_cpe_credential(DEVICE, "dev1", SECRETS[0])
    store.put_cpe_credential("FCH2", "other", "Other-Secret!")
    found = _find(store)
    assert found is not None and (found.key, found.username, found.password) == (DEVICE, "dev1", SECRETS[0])
    assert store.delete_cpe_credential(DEVICE) is True
    found = _find(store)
    assert found is not None and (found.key, found.username, found.password) == ("FCH1", "fch1", SECRETS[1])
    assert store.delete_cpe_credential("FCH1") is True
    found = _find(store)
    assert found is not None and (found.key, found.username, found.password) == ("*", "fleet", SECRETS[2])
    assert store.delete_cpe_credential("*") is True
    assert store.delete_cpe_credential("*") is False
    assert _find(store) is None


def test_lookup_with_only_a_serial_number(store: Store) -> None:
    store.put_cpe_credential("FCH1", "fch1", SECRETS[1])
    found = store.find_cpe_credential(device_id=None, serial_number="FCH1")
    assert found is not None and found.username == "fch1"


def test_the_most_specific_credential_wins_outright(store: Store) -> None:
    # A phone given its own credential cannot authenticate with the shared one.
    store.put_cpe_credential("*", "fleet", SECRETS[2])
    store.put_cpe_credential(DEVICE, "dev1", SECRETS[0])
    assert _find(store, username="fleet") is None
    found = _find(store, username="dev1")
    assert found is not None and found.password == SECRETS[0]
    other = store.find_cpe_credential(device_id="00562B-X-FCH9", serial_number="FCH9", username="fleet")
    assert other is not None and other.key == "*"


def test_put_replaces_username_password_and_created_at(store: Store, clock: FakeClock) -> None:
    store.put_cpe_credential("*", "fleet", SECRETS[2])
    first = clock.now
    clock.advance(3600)
    store.put_cpe_credential("*", "fleet2", "R0tated-Secret!")
    found = _find(store)
    assert found is not None and (found.username, found.password) == ("fleet2", "R0tated-Secret!")
    assert found.created_at == clock.now != first
    assert [(c.key, c.username) for c in store.list_cpe_credentials()] == [("*", "fleet2")]


def test_no_password_in_repr_str_or_listing(store: Store) -> None:
    store.put_cpe_credential("*", "fleet", SECRETS[2])
    store.put_cpe_credential(DEVICE, "dev1", SECRETS[0])
    listing = store.list_cpe_credentials()
    assert [(c.key, c.username) for c in listing] == [("*", "fleet"), (DEVICE, "dev1")]
    found = _find(store)
    for text in (repr(listing), str(listing), repr(found), str(found)):
        for secret in SECRETS:
            assert secret not in text
    assert not hasattr(listing[0], "password")


@pytest.mark.parametrize(
    "key, username, password, message",
    [
        ("", "u", "Hunter2-Secret!", "key must not be empty"),
        ("*", "", "Hunter2-Secret!", "username must not be empty"),
        ("*", "u", "", "password must not be empty"),
        ("*", "u", "Hunter2\x00Secret", "password contains a NUL"),
    ],
)
def test_bad_credentials_are_refused_without_echoing_the_password(
    store: Store, key: str, username: str, password: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        store.put_cpe_credential(key, username, password)
    assert "Hunter2" not in str(info.value)
    assert store.list_cpe_credentials() == []


class ReversingCodec:
    """Stands in for the future encrypting codec: stored text differs from the password."""

    def encode(self, plaintext: str) -> str:
        return "rev:" + plaintext[::-1]

    def decode(self, stored: str) -> str:
        if not stored.startswith("rev:"):
            raise ValueError(f"not encoded: {stored}")
        return stored[4:][::-1]


@pytest.fixture
def codec_store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(store_url, clock=clock, secret_codec=ReversingCodec())
    try:
        yield s
    finally:
        s.close()


def test_passwords_go_through_the_secret_codec(codec_store: Store) -> None:
    assert isinstance(ReversingCodec(), SecretCodec)
    codec_store.record_informs([inform("FCH1")])
    codec_store.put_cpe_credential("*", "fleet", SECRETS[2])
    codec_store.put_connection_request_credential(DEVICE, "cr", "Cr-Secret!")
    with codec_store.engine.connect() as conn:
        stored = conn.execute(sa.select(t.cpe_credentials.c.password)).scalar_one()
        stored_cr = conn.execute(sa.select(t.connection_request_credentials.c.password)).scalar_one()
    assert stored == "rev:" + SECRETS[2][::-1]
    assert stored_cr == "rev:" + "Cr-Secret!"[::-1]
    assert _find(codec_store).password == SECRETS[2]  # type: ignore[union-attr]
    assert codec_store.get_connection_request_credential(DEVICE).password == "Cr-Secret!"  # type: ignore[union-attr]


def test_a_password_the_codec_cannot_decode_is_a_store_error_without_the_secret(
    store_url: str, clock: FakeClock
) -> None:
    plain = open_store(store_url, clock=clock)
    plain.put_cpe_credential("*", "fleet", SECRETS[2])  # stored without the codec
    plain.close()
    s = open_store(store_url, clock=clock, secret_codec=ReversingCodec())
    try:
        with pytest.raises(StoreError, match=r"cannot decode the stored CPE password for '\*' \(ValueError\)") as info:
            _find(s)
        assert SECRETS[2] not in str(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__
    finally:
        s.close()


def test_connection_request_credentials(store: Store, clock: FakeClock) -> None:
    assert store.get_connection_request_credential(DEVICE) is None
    with pytest.raises(UnknownDevice, match="FCH1"):
        store.put_connection_request_credential(DEVICE, "cr", "Cr-Secret!")
    store.record_informs([inform("FCH1")])
    store.put_connection_request_credential(DEVICE, "cr", "Cr-Secret!")
    clock.advance(60)
    store.put_connection_request_credential(DEVICE, "cr2", "Cr-Secret-2!")
    found = store.get_connection_request_credential(DEVICE)
    assert found is not None
    assert (found.key, found.username, found.password, found.created_at) == (DEVICE, "cr2", "Cr-Secret-2!", clock.now)
    assert "Cr-Secret-2!" not in repr(found)
