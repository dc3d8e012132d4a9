"""Device session leases (store/leases.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from acs_security.store import InvalidArgument, open_store
from acs_security.store import schema as t
from tests.store.conftest import T0

DEV = "00562B-CP%2D8841%2D3PCC-FCH1"
OTHER = "00562B-CP%2D8841%2D3PCC-FCH2"


def until(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_claim_free_device(store):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    assert store.device_session(DEV) == ("a", "tok-a", until(90))
    assert store.device_session(OTHER) is None


def test_second_claim_by_another_node_is_refused_with_the_holder(store):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    assert store.claim_device_session(DEV, "b", "tok-b", until(95)) == "a"
    # The refused claim changed nothing.
    assert store.device_session(DEV) == ("a", "tok-a", until(90))
    # Another session of the same node is refused too (it would be a second session).
    assert store.claim_device_session(DEV, "a", "tok-a2", until(95)) == "a"
    # Other devices are independent.
    assert store.claim_device_session(OTHER, "b", "tok-b", until(95)) is None


def test_same_session_reclaims_and_moves_the_expiry(store):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    assert store.claim_device_session(DEV, "a", "tok-a", until(120)) is None
    assert store.device_session(DEV) == ("a", "tok-a", until(120))


def test_expired_lease_is_taken_over(store, clock):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    clock.advance(90)  # expires_at == now: still held (taken only once it is in the past)
    assert store.claim_device_session(DEV, "b", "tok-b", until(180)) == "a"
    clock.advance(1)
    assert store.claim_device_session(DEV, "b", "tok-b", until(180)) is None
    assert store.device_session(DEV) == ("b", "tok-b", until(180))
    # The dead node's session can no longer renew nor release what b holds now.
    assert store.renew_device_session(DEV, "tok-a", until(300)) is False
    assert store.release_device_session(DEV, "tok-a") is False
    assert store.device_session(DEV) == ("b", "tok-b", until(180))


def test_renew_extends_only_the_holding_session(store, clock):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    clock.advance(60)
    assert store.renew_device_session(DEV, "tok-a", until(150)) is True
    clock.advance(60)  # past the first expiry, within the renewed one
    assert store.claim_device_session(DEV, "b", "tok-b", until(300)) == "a"
    assert store.renew_device_session(DEV, "tok-b", until(300)) is False
    assert store.renew_device_session(OTHER, "tok-a", until(300)) is False
    assert store.device_session(DEV) == ("a", "tok-a", until(150))


def test_release_frees_the_device(store):
    assert store.claim_device_session(DEV, "a", "tok-a", until(90)) is None
    assert store.release_device_session(DEV, "tok-other") is False
    assert store.device_session(DEV) is not None
    assert store.release_device_session(DEV, "tok-a") is True
    assert store.device_session(DEV) is None
    assert store.release_device_session(DEV, "tok-a") is False
    assert store.claim_device_session(DEV, "b", "tok-b", until(90)) is None


def test_release_node_sessions_drops_only_that_nodes_leases(store):
    assert store.claim_device_session(DEV, "a", "t1", until(90)) is None
    assert store.claim_device_session(OTHER, "a", "t2", until(90)) is None
    assert store.claim_device_session("00562B-FCH3", "b", "t3", until(90)) is None
    assert store.release_node_sessions("a") == 2
    assert store.release_node_sessions("a") == 0
    assert store.device_session(DEV) is None and store.device_session(OTHER) is None
    assert store.device_session("00562B-FCH3") == ("b", "t3", until(90))


def test_leases_are_shared_by_stores_on_one_database(store_url, clock):
    # Two nodes = two Store objects (two engines) on the same database.
    a = open_store(store_url, clock=clock)
    b = open_store(store_url, clock=clock)
    try:
        assert a.claim_device_session(DEV, "a", "tok-a", until(90)) is None
        assert b.claim_device_session(DEV, "b", "tok-b", until(90)) == "a"
        assert a.release_device_session(DEV, "tok-a") is True
        assert b.claim_device_session(DEV, "b", "tok-b", until(90)) is None
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "a", "t", until(1)), "device_id must not be empty"),
        ((DEV, "", "t", until(1)), "node must not be empty"),
        ((DEV, "a", "", until(1)), "token must not be empty"),
        ((DEV, "a\x00", "t", until(1)), "node contains a NUL"),
        ((DEV, 7, "t", until(1)), "node must be a string"),
        ((DEV, "a", "t", datetime(2025, 3, 1, 12, 0)), "until must be timezone-aware"),
        ((DEV, "a", "t", "2025-03-01"), "until must be a datetime"),
    ],
)
def test_bad_arguments_are_refused(store, args, message):
    with pytest.raises(InvalidArgument, match=message):
        store.claim_device_session(*args)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.device_sessions)).scalar_one() == 0


def test_bad_arguments_of_renew_and_release(store):
    with pytest.raises(InvalidArgument, match="until must be timezone-aware"):
        store.renew_device_session(DEV, "t", datetime(2025, 3, 1))
    with pytest.raises(InvalidArgument, match="token must not be empty"):
        store.release_device_session(DEV, "")
    with pytest.raises(InvalidArgument, match="node must be a string"):
        store.release_node_sessions(None)
