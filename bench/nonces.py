"""What the shared digest nonce record costs a session's store work (issue 13 item 8).

    .venv/bin/python -m bench.nonces [--sessions N] [--concurrency C] [--postgres URL]

A CWMP session authenticated with digest records its nonce-count in the store
(``use_digest_nonce``, group-committed with the other session writes: store/deferred.py).
Measured side by side in one run, on SQLite (a file) and PostgreSQL (when a URL is given or
$ACS_TEST_POSTGRES_URL is set), through the real DeferredStore and thread pool: ``C``
concurrent sessions, each doing the store work of a push session (its Inform, then the
values it applied), with and without the nonce record first; rounds alternate between the
two so that drifts of the machine hit both alike. Figures: store sessions per second of
each, and their ratio. Never part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.selectreactor import SelectReactor

from acs_security.store import InformRecord, make_device_id, open_store
from acs_security.store.deferred import DeferredStore, make_threadpool

ROUNDS = 4


def _record(serial: str, at: datetime) -> InformRecord:
    return InformRecord(
        device_id=make_device_id("00562B", "CP-8841-3PCC", serial), oui="00562B",
        product_class="CP-8841-3PCC", serial_number=serial, manufacturer="Cisco Systems, Inc.",
        software_version="12.0.1", connection_request_url="http://192.0.2.10:7547/cr",
        udp_connection_request_address=None, parameter_key="", events=("6 CONNECTION REQUEST",),
        inform_time=at, remote_address="192.0.2.10",
        parameters=(("Device.ManagementServer.ParameterKey", "", "string"),), bootstrap=False)


def _run_round(reactor: Any, ds: DeferredStore, serials: list[str], concurrency: int,
               with_nonce: bool, tag: str) -> float:
    """Seconds for every serial's session store work, ``concurrency`` at a time."""
    now = datetime.now(UTC)
    until = now + timedelta(minutes=5)
    pending = iter(serials)
    out: dict[str, Any] = {}  # the seconds taken, and the failure if any

    async def worker() -> None:
        for serial in pending:
            if with_nonce:
                await ds.call("use_digest_nonce", f"{tag}-{serial}", 1, until)
            rec = _record(serial, now)
            await ds.record_inform(rec)
            await ds.call("set_device_parameters", rec.device_id,
                          [("Device.X_CISCO_SecuritySettings.Firewall", "true", "boolean")])

    def start() -> None:
        started = time.perf_counter()
        d = DeferredList([ensureDeferred(worker()) for _ in range(concurrency)], fireOnOneErrback=True)

        def done(result: Any) -> None:
            out["s"] = time.perf_counter() - started
            out["error"] = result if hasattr(result, "getErrorMessage") else None
            reactor.stop()

        d.addBoth(done)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if out.get("error") is not None:
        raise RuntimeError(out["error"].getErrorMessage())
    return out["s"]


def measure(url: str, sessions: int, concurrency: int) -> dict[str, float]:
    store = open_store(url)
    pool = make_threadpool(store)
    pool.start()
    try:
        serials = [f"B{i:06d}" for i in range(sessions)]
        times: dict[bool, list[float]] = {False: [], True: []}
        for n in range(ROUNDS):
            for with_nonce in ((False, True) if n % 2 == 0 else (True, False)):
                reactor = SelectReactor()
                ds = DeferredStore(store, reactor, pool)
                times[with_nonce].append(_run_round(reactor, ds, serials, concurrency, with_nonce,
                                                    tag=uuid.uuid4().hex[:12]))
        without = sessions * len(times[False]) / sum(times[False])
        with_ = sessions * len(times[True]) / sum(times[True])
        return {"sessions_per_s_without": round(without, 1), "sessions_per_s_with": round(with_, 1),
                "ratio": round(with_ / without, 3)}
    finally:
        pool.stop()
        store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--postgres", default=os.environ.get("ACS_BENCH_POSTGRES_URL")
                   or os.environ.get("ACS_TEST_POSTGRES_URL"), metavar="URL")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="acs-bench-nonces-") as work:
        figures = {"sqlite": measure(f"sqlite:///{work}/acs.db", args.sessions, args.concurrency)}
    print(f"sqlite: {figures['sqlite']}", flush=True)
    if args.postgres:
        import psycopg

        schema = f"bench_nonces_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in args.postgres else "?"
            figures["postgresql"] = measure(f"{args.postgres}{sep}options=-csearch_path%3D{schema}",
                                            args.sessions, args.concurrency)
            print(f"postgresql: {figures['postgresql']}", flush=True)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
