"""Digest nonce counts in the store (store/nonces.py), on SQLite and PostgreSQL: a count is
fresh once across every store object on the database (every node), and expired records go."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from acs_security.store import InvalidArgument, open_store
from acs_security.store.nonces import MAX_NONCE_COUNT
from tests.store.conftest import T0

NONCE = "AAAAAGVT8QACAgICAgICAgICAgICAgICJmIoST4U5qk6IHTYbkIl3w"
UNTIL = T0 + timedelta(seconds=300)


def test_a_count_is_fresh_once_and_only_higher_counts_after_it(store):
    assert store.use_digest_nonce(NONCE, 1, UNTIL) is True
    assert store.use_digest_nonce(NONCE, 1, UNTIL) is False  # the replay
    assert store.use_digest_nonce(NONCE, 3, UNTIL) is True  # RFC 7616 3.4: the client counts up
    assert store.use_digest_nonce(NONCE, 2, UNTIL) is False  # going back is a replay too
    assert store.use_digest_nonce(NONCE, 3, UNTIL) is False
    assert store.use_digest_nonce(NONCE + "x", 1, UNTIL) is True  # another nonce, its own counts
    assert store.use_digest_nonce(NONCE, MAX_NONCE_COUNT, UNTIL) is True
    assert store.digest_nonce_count() == 2


def test_a_use_on_one_node_is_a_replay_on_another(store_url, clock):
    # Two store objects, two engines and pools: as two ACS nodes on one database.
    a, b = open_store(store_url, clock=clock), open_store(store_url, clock=clock)
    try:
        assert a.use_digest_nonce(NONCE, 1, UNTIL) is True
        assert b.use_digest_nonce(NONCE, 1, UNTIL) is False
        assert b.use_digest_nonce(NONCE, 2, UNTIL) is True
        assert a.use_digest_nonce(NONCE, 2, UNTIL) is False
    finally:
        a.close()
        b.close()


def test_concurrent_uses_of_one_count_have_exactly_one_winner(store_url, clock):
    nodes = [open_store(store_url, clock=clock) for _ in range(4)]
    results: list[bool] = []
    start = threading.Barrier(len(nodes))

    def use(node) -> None:
        start.wait()
        results.append(node.use_digest_nonce(NONCE, 1, UNTIL))

    try:
        threads = [threading.Thread(target=use, args=(node,)) for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for node in nodes:
            node.close()
    assert sorted(results) == [False, False, False, True]


def test_expired_records_are_purged_and_live_ones_kept(store):
    for i in range(5):
        store.use_digest_nonce(f"old{i}", 1, T0 - timedelta(seconds=61 + i))
    store.use_digest_nonce("live", 1, T0 + timedelta(seconds=10))
    store.use_digest_nonce("edge", 1, T0 - timedelta(seconds=60))
    assert store.purge_digest_nonces(T0 - timedelta(seconds=60)) == 5
    assert store.digest_nonce_count() == 2
    assert store.use_digest_nonce("live", 1, T0 + timedelta(seconds=10)) is False  # still known


@pytest.mark.parametrize(("args", "message"), [
    (("", 1, UNTIL), "nonce"),
    (("n" * 129, 1, UNTIL), "at most 128"),
    ((NONCE, 0, UNTIL), "nc must be"),
    ((NONCE, MAX_NONCE_COUNT + 1, UNTIL), "nc must be"),
    ((NONCE, True, UNTIL), "nc must be"),
    ((NONCE, 1, UNTIL.replace(tzinfo=None)), "expires_at"),
    ((NONCE, "1", UNTIL), "nc must be"),
])
def test_bad_arguments_are_refused_and_nothing_is_written(store, args, message):
    with pytest.raises(InvalidArgument, match=message):
        store.use_digest_nonce(*args)
    assert store.digest_nonce_count() == 0
