"""Tokens and roles: the pure checks, the token table, and the tokens command."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from acs_security.cli import main as cli_main
from acs_security.server.auth import (
    Forbidden,
    TokenAuthenticator,
    Unauthorized,
    hash_token,
    new_token,
    parse_authorization,
    role_allows,
)
from acs_security.store import open_store
from acs_security.store.errors import InvalidArgument
from acs_security.store.tokens import DuplicateToken, TokenRecord, tokens_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN = new_token(bytes(range(32)))


def result(coro):
    out = []
    ensureDeferred(coro).addBoth(out.append)
    assert out, "the coroutine did not finish synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def test_new_token_is_urlsafe_256_bits_and_hash_is_sha256_hex():
    assert len(TOKEN) == 47 and TOKEN.startswith("acs_") and "=" not in TOKEN
    # base64url can start with "-"; the prefix keeps every token usable as ``--token T``.
    assert new_token(b"\xf8" * 32).startswith("acs_-")
    assert hash_token(TOKEN) == __import__("hashlib").sha256(TOKEN.encode()).hexdigest()
    with pytest.raises(ValueError):
        new_token(b"short")


def test_roles_are_ordered():
    assert role_allows("admin", "operator") and role_allows("operator", "viewer")
    assert not role_allows("viewer", "operator") and not role_allows("operator", "admin")
    with pytest.raises(ValueError):
        role_allows("root", "viewer")


@pytest.mark.parametrize("header, problem", [
    (None, "needs an API token"), (b"", "needs an API token"), (b"Token abc", "unsupported"),
    (b"Bearer", "unsupported"), (b"Basic !!!", "malformed"), (b"Bearer " + b"a" * 2000, "too long"),
    (b"Basic " + base64.b64encode(b"nocolon"), "user and the token"), (b"Bearer \xff", "not ASCII"),
])
def test_malformed_headers_get_401_naming_the_problem(header, problem):
    with pytest.raises(Unauthorized) as info:
        parse_authorization(header)
    assert info.value.status == 401 and problem in info.value.detail


def test_bearer_and_basic_are_parsed():
    assert parse_authorization(b"Bearer abc") == (None, "abc")
    assert parse_authorization("basic " + base64.b64encode(b"ops:tok:en").decode()) == ("ops", "tok:en")


class FakeTokens:
    def __init__(self, *records: TokenRecord) -> None:
        self.records = {r.token_sha256: r for r in records}
        self.lookups = 0
        self.touched: list[tuple[int, datetime]] = []

    async def lookup(self, digest: str) -> TokenRecord | None:
        self.lookups += 1
        return self.records.get(digest)


def record(role: str = "operator", revoked: datetime | None = None) -> TokenRecord:
    return TokenRecord(7, "ops", role, T0, revoked, None, hash_token(TOKEN))


def test_authenticator_checks_role_caches_briefly_and_never_shows_the_token():
    clock = Clock()
    fake = FakeTokens(record())
    auth = TokenAuthenticator(fake.lookup, clock, cache_seconds=5,
                              touch=lambda i, when: fake.touched.append((i, when)))
    who = result(auth.require(f"Bearer {TOKEN}".encode(), "operator"))
    assert (who.name, who.role, who.token_id) == ("ops", "operator", 7)
    assert fake.touched == [(7, datetime.fromtimestamp(0, UTC))]
    with pytest.raises(Forbidden) as info:
        result(auth.require(f"Bearer {TOKEN}", "admin"))
    assert info.value.status == 403 and "operator" in info.value.detail
    assert fake.lookups == 1  # cached
    with pytest.raises(Unauthorized) as info:
        result(auth.authenticate(b"Bearer wrong-token"))
    assert TOKEN not in str(info.value) and "wrong-token" not in str(info.value)
    # Revoked in the store by another process: noticed once the cache entry expires.
    fake.records[hash_token(TOKEN)] = record(revoked=T0)
    assert result(auth.authenticate(f"Bearer {TOKEN}")).name == "ops"
    clock.advance(5.1)
    with pytest.raises(Unauthorized, match="revoked"):
        result(auth.authenticate(f"Bearer {TOKEN}"))


def test_basic_needs_the_right_token_name():
    auth = TokenAuthenticator(FakeTokens(record()).lookup, Clock())
    ok = "Basic " + base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    assert result(auth.authenticate(ok)).role == "operator"
    bad = "Basic " + base64.b64encode(f"other:{TOKEN}".encode()).decode()
    with pytest.raises(Unauthorized):
        result(auth.authenticate(bad))


def test_token_table_create_list_revoke_and_bad_input(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    try:
        tokens = tokens_of(store)
        rec = tokens.create_token("ops", "operator", hash_token(TOKEN), T0)
        assert "token_sha256" not in repr(rec) and hash_token(TOKEN) not in repr(rec)
        assert tokens.token_by_hash(hash_token(TOKEN)).name == "ops"
        with pytest.raises(DuplicateToken):
            tokens.create_token("ops", "viewer", hash_token("x" * 43), T0)
        for args in (("", "viewer"), ("x", "root"), (" pad", "viewer")):
            with pytest.raises(InvalidArgument):
                tokens.create_token(*args, hash_token("y" * 43), T0)
        with pytest.raises(InvalidArgument):
            tokens.create_token("raw", "viewer", "not-a-hash", T0)
        assert [r.name for r in tokens.list_tokens()] == ["ops"]
        assert tokens.revoke_token("ops", T0) is True
        assert tokens.revoke_token("ops", T0) is False
        assert tokens.token_by_hash(hash_token(TOKEN)).revoked_at == T0
        assert tokens.list_tokens(include_revoked=False) == []
    finally:
        store.close()


def test_tokens_command_creates_lists_and_revokes(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/c.db"
    assert cli_main(["tokens", "create", "--db", db, "--name", "noc", "--role", "viewer", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["role"] == "viewer" and len(created["token"]) == 47
    store = open_store(db)
    try:
        assert tokens_of(store).token_by_hash(hash_token(created["token"])).name == "noc"
    finally:
        store.close()
    assert cli_main(["tokens", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == ["noc"] and created["token"] not in json.dumps(listed)
    assert cli_main(["tokens", "create", "--db", db, "--name", "noc", "--role", "admin"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert cli_main(["tokens", "revoke", "--db", db, "noc"]) == 0
    assert cli_main(["tokens", "revoke", "--db", db, "noc"]) == 1
