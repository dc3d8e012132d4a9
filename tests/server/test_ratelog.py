"""The refusal log limiter (pure) and its Twisted side, on a fake clock (issue 13.6)."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import pytest
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger

from acs_security.server.ratelog import OTHER_SOURCES, RefusalLimiter, Summary
from acs_security.server.refusals import RefusalLog


def test_first_n_per_source_then_one_summary_when_the_window_ends() -> None:
    lim = RefusalLimiter(burst=3, window=60)
    admitted = [lim.admit("192.0.2.1", "auth: no credentials", t) for t in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    # Another source has its own share.
    assert lim.admit("192.0.2.2", "auth: no credentials", 5) is True
    lim.admit("192.0.2.1", "protocol error", 30)
    assert lim.due(59.9) == []
    assert lim.next_due() == 60.0
    assert lim.due(60) == [Summary("192.0.2.1", 8, (("auth: no credentials", 7), ("protocol error", 1)), 60.0)]
    assert lim.due(61) == []  # given once
    assert lim.next_due() is None  # 192.0.2.2 had only its logged line: no summary
    assert lim.due(65) == [] and len(lim) == 0
    # A new window starts with a new share of lines.
    assert lim.admit("192.0.2.1", "auth: no credentials", 70) is True


def test_summary_text_names_count_source_and_reasons() -> None:
    s = Summary("203.0.113.9", 37, (("auth: no credentials", 30), ("protocol error", 7)), 60.0)
    assert s.text() == "37 more refusals from 203.0.113.9 in 60 s: auth: no credentials x30, protocol error x7"


def test_an_ended_window_is_summarised_even_when_the_next_refusal_comes_first() -> None:
    lim = RefusalLimiter(burst=1, window=10)
    lim.admit("a", "r", 0)
    lim.admit("a", "r", 1)
    # No due() call in between: the refusal at 20 opens a new window; the old one's summary waits.
    assert lim.admit("a", "r", 20) is True
    assert lim.next_due() == float("-inf")
    assert [s.count for s in lim.due(20)] == [1]


def test_burst_zero_gives_summaries_only() -> None:
    lim = RefusalLimiter(burst=0, window=60)
    assert not any(lim.admit("a", "r", t) for t in range(5))
    assert [s.count for s in lim.due(60)] == [5]


def test_sources_beyond_the_limit_are_summarised_together_and_memory_stays_bounded() -> None:
    lim = RefusalLimiter(burst=2, window=60, max_sources=100)
    for i in range(10_000):
        lim.admit(f"10.0.{i // 256}.{i % 256}", "auth: no credentials", 1)
    assert len(lim) == 100
    summaries = lim.due(61)
    assert summaries == [Summary(OTHER_SOURCES, 9_900, (("auth: no credentials", 9_900),), 60.0)]


def test_reasons_per_summary_are_bounded() -> None:
    lim = RefusalLimiter(burst=0, window=60, max_reasons=3)
    for i in range(50):
        lim.admit("a", f"reason {i % 10}", 0)
    (summary,) = lim.due(60)
    assert summary.count == 50 and len(summary.reasons) == 3 and dict(summary.reasons)["other"] == 40


@pytest.mark.parametrize("kwargs", [{"burst": -1}, {"window": 0}, {"max_sources": 0}, {"max_reasons": 0}])
def test_invalid_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RefusalLimiter(**kwargs)  # type: ignore[arg-type]


def test_refusal_log_writes_lines_then_a_summary_on_the_clock() -> None:
    clock = Clock()
    events: list[dict[str, Any]] = []
    observer = cast(ILogObserver, events.append)
    rl = RefusalLog(clock, burst=2, window=60, logger=Logger(namespace="test", observer=observer))
    lines: list[int] = []
    for i in range(25):
        rl.refused("198.51.100.7", "auth: wrong token", partial(lines.append, i))
        clock.advance(1)
    assert lines == [0, 1]
    assert events == []  # nothing but the two lines until the window ends
    clock.advance(34)  # 59 s after the first refusal: not yet
    assert events == []
    clock.advance(1)
    assert len(events) == 1
    assert events[0]["summary"] == "23 more refusals from 198.51.100.7 in 60 s: auth: wrong token x23"
    assert events[0]["refusals"] == 23 and events[0]["log_level"].name == "warn"
    assert clock.getDelayedCalls() == []  # no timer left behind
    # A quiet source makes no summary at all.
    rl.refused("198.51.100.8", "auth: wrong token", lambda: lines.append(99))
    clock.advance(120)
    assert len(events) == 1 and lines[-1] == 99


def test_stop_writes_pending_summaries_and_cancels_the_timer() -> None:
    clock = Clock()
    events: list[dict[str, Any]] = []
    observer = cast(ILogObserver, events.append)
    rl = RefusalLog(clock, burst=0, window=60, logger=Logger(namespace="test", observer=observer))
    rl.refused("a", "r", lambda: None)
    assert len(clock.getDelayedCalls()) == 1
    rl.stop()
    assert clock.getDelayedCalls() == [] and len(events) == 1
