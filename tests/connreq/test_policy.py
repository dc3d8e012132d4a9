"""Backoff schedule and Retry-After parsing."""

from __future__ import annotations

import pytest

from acs_security.connreq.policy import BackoffPolicy, parse_retry_after


def test_exponential_capped_without_jitter_draw() -> None:
    policy = BackoffPolicy(base=1.0, factor=2.0, cap=10.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(10_000, 0.0) == 10.0  # no overflow on absurd attempt numbers


def test_jitter_only_shortens_and_stays_within_fraction() -> None:
    policy = BackoffPolicy(base=4.0, factor=2.0, cap=60.0, jitter=0.25)
    assert policy.delay(1, 0.5) == pytest.approx(4.0 * (1 - 0.125))
    assert 3.0 < policy.delay(1, 0.999999) <= 4.0
    assert policy.delay(9, 0.999) <= 60.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"base": 0}, "positive"), ({"factor": 0.5}, "at least 1"), ({"jitter": 1.5}, "between 0 and 1"),
     ({"max_retry_after": -1}, "negative")],
)
def test_policy_refuses_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**kwargs)


def test_delay_argument_errors() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        BackoffPolicy().delay(0, 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        BackoffPolicy().delay(1, 1.0)


def test_retry_after_forms() -> None:
    now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 5 ", now) == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None
    assert parse_retry_after("9" * 40, now) == 1e9
