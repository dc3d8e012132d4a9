"""Rate limit for refusal log lines: the first N per source address per window, then one
summary line per source and window.

Every refused request (an unauthenticated Inform, a wrong API token, a forbidden role)
deserves a log line, until a misconfigured fleet or a scanner makes thousands a minute and
the lines drown everything else. :class:`RefusalLimiter` decides which refusals get their
own line: the first ``burst`` of a source within ``window`` seconds; the rest are counted
by reason and reported as one :class:`Summary` when the source's window ends. Sources are
tracked up to ``max_sources`` at once; refusals from further sources are summarised
together as ``other sources`` (memory stays bounded whatever the number of addresses).

Pure: time comes in as ``now`` (seconds), nothing is logged or scheduled here; the server's
RefusalLog (refusals.py) writes the lines and wakes up for the summaries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["OTHER_SOURCES", "RefusalLimiter", "Summary"]

#: The source named in the summary of refusals from sources beyond ``max_sources``.
OTHER_SOURCES = "other sources"


@dataclass(frozen=True, slots=True)
class Summary:
    """Refusals of one source (or :data:`OTHER_SOURCES`) that had no line of their own in
    one window: how many, and how many of each reason (most frequent first)."""

    source: str
    count: int
    reasons: tuple[tuple[str, int], ...]
    window: float

    def text(self) -> str:
        """``37 more refusals from 203.0.113.9 in 60 s: auth: no credentials x30, ...``."""
        reasons = ", ".join(f"{reason} x{n}" for reason, n in self.reasons)
        return f"{self.count} more refusals from {self.source} in {self.window:g} s: {reasons}"


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class RefusalLimiter:
    """Which refusals get a log line (:meth:`admit`) and the summaries of the others
    (:meth:`due`). ``burst`` lines per source per ``window`` seconds (0: summaries only);
    ``max_reasons`` distinct reasons per summary, the rest counted as ``other``.

    Raises ValueError for a negative burst, a window that is not positive, or limits below 1.
    """

    def __init__(self, *, burst: int = 10, window: float = 60.0, max_sources: int = 10_000,
                 max_reasons: int = 8) -> None:
        if burst < 0 or not window > 0 or max_sources < 1 or max_reasons < 1:
            raise ValueError("burst must be >= 0, window > 0, max_sources and max_reasons >= 1")
        self.burst = burst
        self.window = float(window)
        self.max_sources = max_sources
        self.max_reasons = max_reasons
        # Insertion order is window start order: a source's entry is created when its window
        # starts and removed when it ends, so the oldest windows are always first.
        self._windows: dict[str, _Window] = {}
        self._others: _Window | None = None
        self._ended: list[Summary] = []

    def __len__(self) -> int:
        """Sources with an open window."""
        return len(self._windows)

    def admit(self, source: str | None, reason: str, now: float) -> bool:
        """Record one refusal from ``source`` (an address; None counts as ``unknown``) for
        ``reason`` (a short, bounded text). True when it gets its own log line."""
        self._expire(now)
        key = source if source else "unknown"
        win = self._windows.get(key)
        if win is None:
            if len(self._windows) >= self.max_sources:
                if self._others is None:
                    self._others = _Window(now)
                self._count(self._others, reason)
                return False
            win = self._windows[key] = _Window(now)
        if win.logged < self.burst:
            win.logged += 1
            return True
        self._count(win, reason)
        return False

    def due(self, now: float) -> list[Summary]:
        """The summaries of the windows that have ended by ``now`` and held refusals without
        a line of their own, oldest first; each is given once."""
        self._expire(now)
        out, self._ended = self._ended, []
        return out

    def next_due(self) -> float | None:
        """When the next summary is due (the end of the oldest window holding unlogged
        refusals), or None when none is pending."""
        if self._ended:
            return float("-inf")  # ended already, waiting for due()
        ends = []
        # The first window holding unlogged refusals started first among those, so it ends first.
        first = next((w for w in self._windows.values() if w.suppressed), None)
        if first is not None:
            ends.append(first.start + self.window)
        if self._others is not None:
            ends.append(self._others.start + self.window)
        return min(ends) if ends else None

    def _count(self, win: _Window, reason: str) -> None:
        win.suppressed += 1
        if reason in win.reasons or len(win.reasons) < self.max_reasons - 1:
            win.reasons[reason] += 1
        else:
            win.reasons["other"] += 1

    def _summary(self, source: str, win: _Window) -> Summary:
        reasons = tuple(sorted(win.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        return Summary(source, win.suppressed, reasons, self.window)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._windows:
            source, win = next(iter(self._windows.items()))
            if win.start > horizon:
                break
            del self._windows[source]
            if win.suppressed:
                self._ended.append(self._summary(source, win))
        if self._others is not None and self._others.start <= horizon:
            self._ended.append(self._summary(OTHER_SOURCES, self._others))
            self._others = None
