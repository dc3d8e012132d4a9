"""What the server log says during a 500-phone push: the job's story, one line per session,
no per-connection noise, phones named by serial and model."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher

from tests.e2e.test_push import HARDENING, booted, fleet_for, server_for
from tests.support import run_in_reactor, wait_until

pytestmark = pytest.mark.e2e


def test_a_500_phone_push_logs_the_job_and_one_line_per_session(tmp_path) -> None:
    events: list[dict[str, Any]] = []
    pushing = {"on": False}

    def observe(event: dict[str, Any]) -> None:
        if pushing["on"] and event.get("log_level", LogLevel.info) >= LogLevel.info:
            events.append(event)

    async def go(reactor: Any) -> Any:
        server = server_for(reactor, tmp_path)
        await server.start_engine()
        fleet = fleet_for(reactor, server, 500)
        try:
            await booted(reactor, server, fleet, 500)
            assert server.service is not None and server.engine is not None
            pushing["on"] = True
            result = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all",
                                                      "canary": "5%", "wave": 250})
            job = server.engine.jobs[result["id"]]
            await wait_until(reactor, lambda: job.state == "completed", timeout=120, what="job end")
            await server.engine.flush()
            pushing["on"] = False
            return [p.serial for p in fleet.phones]
        finally:
            pushing["on"] = False
            await fleet.stop()
            await server.stop()

    globalLogPublisher.addObserver(cast(ILogObserver, observe))
    try:
        serials = run_in_reactor(go, timeout=180)
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, observe))

    namespaces = Counter(e.get("log_namespace") for e in events)
    texts = [formatEvent(e) for e in events]
    # Per-connection client factory lines ("Starting factory" / "Stopping factory") are gone.
    assert not [t for t in texts if "factory" in t.lower()], namespaces
    # The job's story: submitted, each wave, completed, with counts.
    story = [e["job_event"] for e in events if e.get("log_namespace") == "acs_security.jobs"]
    assert story[0] == "submitted" and story[-1] == "completed"
    assert story.count("wave_started") == 2  # canary, then two waves of 250
    completed = next(e for e in events if e.get("job_event") == "completed")
    assert sum(completed["counts"].values()) == 500 and completed["counts"]["applied"] == 500
    # One line per session, naming the phone by serial and model, not the escaped id.
    sessions = [e for e in events if e.get("log_namespace") == "acs_security.cwmp"
                and e.get("log_format", "").startswith("session ")]
    assert len(sessions) == 500
    assert {e["label"].split(" ")[0] for e in sessions} == set(serials)
    assert not [t for t in texts if "%2D" in t]
    # Nothing else scales with the fleet: accepted connection requests log at debug.
    per_phone = len(events) / 500
    assert per_phone < 1.05, (per_phone, namespaces)
