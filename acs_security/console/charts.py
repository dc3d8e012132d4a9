"""Chart geometry for the console's inline SVG, pure: numbers in, rectangles out.

Templates draw the rectangles as ``<rect>`` elements with presentation attributes and CSS
classes (the Content-Security-Policy allows no inline style), each with a ``<title>`` that
the browser shows on hover. No chart library: the console serves only its own files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Segment", "Bar", "TimeChart", "stacked_share", "time_chart"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One coloured part of a bar: ``state`` names its CSS class, ``n`` its count."""

    state: str
    n: int
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class TimeChart:
    width: int
    height: int
    top: int
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]  # (y, label) of the count axis
    x_labels: tuple[tuple[float, str], ...]


def stacked_share(counts: Mapping[str, int], states: Sequence[str], *, width: float = 100.0) -> tuple[Segment, ...]:
    """One horizontal bar of ``width`` split by share of each state (zero states left out;
    an empty bar for no count at all)."""
    total = sum(max(0, int(counts.get(s, 0))) for s in states)
    if total == 0:
        return ()
    out = []
    x = 0.0
    for s in states:
        n = max(0, int(counts.get(s, 0)))
        if n == 0:
            continue
        w = width * n / total
        out.append(Segment(s, n, round(x, 3), 0.0, round(w, 3), 1.0))
        x += w
    return tuple(out)


def _nice_top(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _clock(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"


def time_chart(rows: Sequence[Mapping[str, Any]], states: Sequence[str], *, bucket_seconds: int,
               width: int = 720, height: int = 180) -> TimeChart:
    """Stacked columns, one per time bucket (``rows`` of {start_s, counts}), with a count
    axis of round numbers and a few time labels (minutes:seconds since the job started)."""
    left, bottom, top_pad = 40, 20, 8
    plot_w, plot_h = width - left - 4, height - bottom - top_pad
    totals = [sum(int(r["counts"].get(s, 0)) for s in states) for r in rows]
    top = _nice_top(max(totals, default=0))
    n = max(1, len(rows))
    slot = plot_w / n
    bars = []
    for i, row in enumerate(rows):
        counts = row["counts"]
        x = left + i * slot
        y = float(top_pad + plot_h)
        segs = []
        for s in states:
            c = int(counts.get(s, 0))
            if c <= 0:
                continue
            h = plot_h * c / top
            y -= h
            segs.append(Segment(s, c, round(x + slot * 0.1, 2), round(y, 2), round(max(1.0, slot * 0.8), 2),
                                round(h, 2)))
        start = int(row["start_s"])
        bars.append(Bar(f"{_clock(start)} - {_clock(start + bucket_seconds)}", totals[i], tuple(segs)))
    ticks = tuple((round(top_pad + plot_h - plot_h * f, 2), str(int(top * f))) for f in (0.0, 0.5, 1.0))
    every = max(1, n // 6)
    x_labels = tuple((round(left + i * slot, 2), _clock(int(rows[i]["start_s"])))
                     for i in range(0, len(rows), every))
    return TimeChart(width, height, top, tuple(bars), ticks, x_labels)
