"""What a web console page costs the server, next to the API call that reads the same data.

    .venv/bin/python -m bench.console [--devices 1000,10000] [--rounds 20]

In memory (no sockets): the real API resource with the console mounted, a real SQLite store
(in memory) behind an inline thread pool, StubTreq as the client. For each
fleet size it registers that many phones, signs in, and times (median of ``rounds``) the
fleet page (all, and filtered by a firmware range the store cannot index), a device page, a
job's live part, next to ``GET /api/v1/devices?limit=100`` and ``GET /api/v1/jobs/N``.
Figures only: nothing here passes or fails a test (docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from acs_security.store import InformRecord, make_device_id

__all__ = ["main"]

MODELS = ("CP-8851-3PCC", "CP-7841-3PCC", "CP-6821-3PCC", "CP-8845-3PCC")
FIRMWARE = ("sip88xx.11-3-7MPP0001-276", "sip88xx.12-0-1MPP0001-276")


def _fleet(console: Any, count: int) -> list[str]:
    now = datetime.fromtimestamp(console.clock.seconds(), UTC)
    records = [InformRecord(
        device_id=make_device_id("00000C", MODELS[i % 4], f"FCH{i:07d}"), oui="00000C", product_class=MODELS[i % 4],
        serial_number=f"FCH{i:07d}", manufacturer="Cisco Systems, Inc.", software_version=FIRMWARE[i % 2],
        connection_request_url=f"http://10.0.{i // 250 % 250}.{i % 250}:7547/cr", udp_connection_request_address=None,
        parameter_key="", events=("2 PERIODIC",), inform_time=now, remote_address="192.0.2.1") for i in range(count)]
    for start in range(0, count, 1000):
        console.store.record_informs(records[start:start + 1000])
    return [r.device_id for r in records]


def _time(fn: Any, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        answer = fn()
        samples.append(time.perf_counter() - t0)
        assert answer.status == 200, (answer.status, answer.body[:300])
    return statistics.median(samples) * 1000


def measure(count: int, rounds: int) -> dict[str, float]:
    from tests.console.support import Browser, make_console_harness

    console = make_console_harness()
    try:
        ids = _fleet(console, count)
        job = console.store.create_job(name="bench", policy={}, selector="all", options={},
                                       parameter_key_prefix="acs-", deadline=datetime.now(UTC) + timedelta(days=1),
                                       tasks=[(d, 0) for d in ids])
        token = console.token("bench", "operator")
        browser = Browser(console)
        browser.sign_in(token)
        api = {"Authorization": f"Bearer {token}"}
        device = "/devices/" + quote(ids[count // 2], safe="")
        return {
            "api devices page (100)": _time(lambda: console.request("GET", "/api/v1/devices?limit=100",
                                                                     headers=api), rounds),
            "console fleet (all)": _time(lambda: browser.get("/fleet"), rounds),
            "console fleet (firmware>=12.0(1))": _time(lambda: browser.get("/fleet?select=firmware%3E%3D12.0(1)"),
                                                       rounds),
            "console device page": _time(lambda: browser.get(device), rounds),
            "api job summary": _time(lambda: console.request("GET", f"/api/v1/jobs/{job.id}", headers=api), rounds),
            "console job live part": _time(lambda: browser.get(f"/jobs/{job.id}/live"), rounds),
        }
    finally:
        console.store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="1000,10000")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.devices.split(",") if x]
    results = {n: measure(n, args.rounds) for n in sizes}
    names = list(next(iter(results.values())))
    print(f"{'median ms per request':40}" + "".join(f"{n:>12,} phones" for n in sizes))
    for name in names:
        print(f"{name:40}" + "".join(f"{results[n][name]:>19.1f}" for n in sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
