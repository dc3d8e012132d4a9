"""Refusal lines of the CWMP endpoint are rate limited per source address (issue 13.6):
real envelopes over in-memory HTTP, a fake clock, the log observed."""

from __future__ import annotations

from typing import Any, cast

from twisted.logger import ILogObserver, globalLogPublisher

from acs_security.server.metrics import AcsMetrics
from acs_security.server.refusals import RefusalLog
from tests.server.harness import inform, make_harness, run


def test_a_flood_of_unauthenticated_informs_makes_n_lines_then_one_summary() -> None:
    h = make_harness(cpe_auth=True, refusal_log=lambda clock: RefusalLog(clock, burst=3, window=60))
    metrics = AcsMetrics()
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(cast(ILogObserver, events.append))
    try:
        async def flood(n: int) -> None:
            for i in range(n):
                code, _, _ = await h.post(inform(f"FCH{i:08d}"))
                assert code == 401

        run(h, flood(40))
        h.clock.advance(30)
        run(h, flood(10))
        refused = [e for e in events if e.get("log_namespace") == "acs_security.cwmp"
                   and "refused" in str(e.get("log_format"))]
        summaries = [e for e in events if e.get("log_namespace") == "acs_security.refusals"]
        assert len(refused) == 3 and summaries == []
        h.clock.advance(29.9)
        assert [e for e in events if e.get("log_namespace") == "acs_security.refusals"] == []
        h.clock.advance(0.1)  # the window of the first refusal ends: one summary for the 47 others
        summaries = [e for e in events if e.get("log_namespace") == "acs_security.refusals"]
        assert len(summaries) == 1
        assert summaries[0]["refusals"] == 47 and summaries[0]["reasons"] == {"auth: no credentials": 47}
        assert summaries[0]["summary"].startswith("47 more refusals from ")
        assert summaries[0]["log_level"].name == "warn"
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, events.append))
        h.close()
    # Every refusal is still counted (acs_cwmp_refusals_total), lines or not.
    for entry in h.log:
        metrics.observe_session(entry)
    assert metrics.refusals.labels("auth")._value.get() == 50
    assert len([e for e in h.log if e["outcome"] == "refused"]) == 50
