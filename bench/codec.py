"""Figure 1, the codec: microseconds to parse a 10-parameter Inform and to build a 20-parameter
SetParameterValues, next to plain lxml on the same bytes.

Baselines: ``lxml.etree.fromstring`` of the Inform's bytes (what any lxml-based parser pays
before it reads one value) and ``lxml.etree.tostring`` of the SetParameterValues envelope's
tree (what any lxml-based builder pays to serialise, before building elements). The
codec's own figures include everything it does: the hostile-input checks, the walk into
frozen dataclasses with their validation, the header, the escaping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lxml import etree

from acs_security.cwmp.soap import CWMP_1_2, build_envelope, parse_envelope
from bench.envelopes import inform_bytes, spv_message

__all__ = ["measure_codec", "per_call_us"]


def _calls_per_round(fn: Callable[[], Any], round_s: float) -> int:
    n, elapsed = 1, 0.0
    while elapsed < 0.005:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed < 0.005:
            n *= 4
    return max(1, int(n * round_s / max(elapsed, 1e-9)))


def _round(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def per_call_us(fn: Callable[[], Any], baseline: Callable[[], Any], *, budget_s: float,
                repeats: int = 9) -> tuple[float, float, float]:
    """(fn's µs per call, baseline's µs per call, median of the per-round ratios).

    Rounds of ``fn`` and ``baseline`` alternate, so that both see the same machine (a VM's
    speed drifts by tens of percent over seconds here); the ratio is the median of the
    rounds' ratios, the times the medians of the rounds' times."""
    n_fn = _calls_per_round(fn, budget_s / (2 * repeats))
    n_base = _calls_per_round(baseline, budget_s / (2 * repeats))
    times, bases, ratios = [], [], []
    for _ in range(repeats):
        a = _round(fn, n_fn)
        b = _round(baseline, n_base)
        times.append(a)
        bases.append(b)
        ratios.append(a / b)
    mid = repeats // 2
    return sorted(times)[mid] * 1e6, sorted(bases)[mid] * 1e6, sorted(ratios)[mid]


def measure_codec(*, budget_s: float = 2.0) -> dict[str, Any]:
    """The four timings and the two ratios (codec / lxml), in about ``budget_s`` seconds."""
    inform = inform_bytes("FCH2231A0B1")
    spv = spv_message(20)
    spv_env = build_envelope(spv, namespace=CWMP_1_2, cwmp_id="acs-1")
    spv_tree = etree.fromstring(spv_env)
    # Same outcome checks as the server's: the figures are for a parse that worked.
    parsed = parse_envelope(inform)
    assert parsed is not None and len(parsed.message.parameters) == 10  # type: ignore[union-attr]
    assert len(spv.parameters) == 20

    half = budget_s / 2
    parse_us, lxml_parse_us, parse_ratio = per_call_us(
        lambda: parse_envelope(inform), lambda: etree.fromstring(inform), budget_s=half)
    build_us, lxml_build_us, build_ratio = per_call_us(
        lambda: build_envelope(spv, namespace=CWMP_1_2, cwmp_id="acs-1"),
        lambda: etree.tostring(spv_tree), budget_s=half)
    return {
        "codec_inform_parse_us": round(parse_us, 2),
        "codec_inform_parse_lxml_us": round(lxml_parse_us, 2),
        "codec_inform_parse_ratio": round(parse_ratio, 3),
        "codec_inform_bytes": len(inform),
        "codec_spv_build_us": round(build_us, 2),
        "codec_spv_build_lxml_us": round(lxml_build_us, 2),
        "codec_spv_build_ratio": round(build_ratio, 3),
        "codec_spv_bytes": len(spv_env),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure_codec(), indent=2))
