"""Figures 3, 4, 5 and 7: a policy pushed to a fleet of simulated phones, end to end
(figure 7: by SetParameterValues and by cfg.xml Download, side by side).

One run (:func:`fleet_push`):

1. optionally, ``registered`` other phones are put in the database first, straight through
   ``Store.record_informs`` (the store's own group-commit path, a BOOTSTRAP Inform each with
   ten parameters): they are registered devices of other models that the job does not
   select, so the store and the job's target selection hold the whole fleet;
2. ``acs-security serve`` starts on that database (connection-request credential shared,
   CPE authentication off);
3. ``acs-security simulate`` starts ``phones`` phones in its own process; they boot over
   ``boot_ramp`` seconds and register (not measured);
4. the example hardening policy is submitted through the management API for the simulated
   phones' models; the ACS sends a connection request to each phone over loopback, the phone
   calls in, gets its SetParameterValues, answers, and the outcome is committed;
5. measured from the submit to the last outcome (the tasks' ``finished_at`` in the job
   report): phones per second, each phone's time from the submit to its outcome (p50, p99),
   the server's CPU seconds per phone, its peak resident memory (the kernel's high-water
   mark over the whole run, boots included).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.nat import bindings_known, nat_args
from bench.procs import PY, Proc, Profiler, free_port, start_acs
from bench.sessions import HARDENING

__all__ = ["SIM_MODELS", "fleet_push", "push_with_download", "register_devices", "postgres_schema"]

#: The simulator's default models: the job selects them.
SIM_MODELS = ("CP-8851-3PCC", "CP-7841-3PCC", "CP-6821-3PCC", "CP-7832-3PCC")
#: Models of the phones registered in bulk (not selected by the job).
OTHER_MODELS = ("CP-8845-3PCC", "CP-8865-3PCC", "CP-7821-3PCC", "CP-8811-3PCC")
CR_USER = "acs-bench"
CR_PASSWORD = "bench-connection-request-secret"


def register_devices(db_url: str, count: int, *, batch: int = 1000) -> float:
    """Register ``count`` phones of OTHER_MODELS in the store; returns the seconds it took."""
    from acs_security.store import open_store
    from acs_security.store.records import InformRecord, make_device_id

    start = time.monotonic()
    store = open_store(db_url)
    try:
        now = datetime.now(UTC)
        records = []
        for i in range(count):
            serial = f"REG{i:08d}"
            model = OTHER_MODELS[i % len(OTHER_MODELS)]
            ms = "Device.ManagementServer."
            params = (
                ("Device.RootDataModelVersion", "2.12", "string"),
                ("Device.DeviceInfo.HardwareVersion", "V03", "string"),
                ("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP0001-276", "string"),
                ("Device.DeviceInfo.ProvisioningCode", "", "string"),
                ("Device.DeviceInfo.UpTime", "86400", "unsignedInt"),
                (ms + "ParameterKey", "", "string"),
                (ms + "ConnectionRequestURL", f"http://192.0.2.{i % 250 + 1}:7547/{serial}", "string"),
                (ms + "PeriodicInformEnable", "true", "boolean"),
                (ms + "PeriodicInformInterval", "3600", "unsignedInt"),
                (ms + "ConnectionRequestUsername", f"cr-{serial}", "string"),
            )
            records.append(InformRecord(
                device_id=make_device_id("00000C", model, serial), oui="00000C",
                product_class=model, serial_number=serial, manufacturer="Cisco Systems, Inc.",
                software_version="sip88xx.12-0-1MPP0001-276",
                connection_request_url=params[6][1], udp_connection_request_address=None,
                parameter_key="", events=("0 BOOTSTRAP", "1 BOOT"), inform_time=now,
                remote_address="192.0.2.1", parameters=params, bootstrap=True))
            if len(records) == batch:
                store.record_informs(records)
                records = []
        if records:
            store.record_informs(records)
    finally:
        store.close()
    return time.monotonic() - start


def postgres_schema(base_url: str, name: str) -> tuple[str, Any]:
    """A fresh schema on the PostgreSQL server of ``base_url``: (its store URL, a function
    that drops it)."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{name}"')

    def drop() -> None:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{name}", drop


def _wait(what: str, predicate: Any, timeout: float, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fleet_push(workdir: Path, db_url: str, *, phones: int, registered: int = 0,
               boot_ramp: float = 10.0, max_in_progress: int = 2000,
               max_cr_in_flight: int = 400, sim_sessions: int = 400,
               timeout: float = 600.0, profile: Path | None = None, method: str = "auto",
               nat: float = 0.0, stun_port: int | None = None, deadline: str = "30m") -> dict[str, Any]:
    """One end-to-end push (see the module doc). With ``profile``, py-spy samples the server
    and the simulator during the push (``profile``-server.txt, -sim.txt). ``method``: the
    job's (auto: SetParameterValues for these phones; download: one cfg.xml per phone, fetched
    from the ACS, then a TransferComplete session). ``nat``: share of the phones behind NAT
    (figure 9, bench/nat.py), reached through the STUN server on UDP ``stun_port``. Raises
    RuntimeError when a step fails or the job does not end with every phone applied."""
    workdir.mkdir(parents=True, exist_ok=True)
    register_s = register_devices(db_url, registered) if registered else 0.0
    (workdir / "cr.pw").write_text(CR_PASSWORD + "\n")
    os.chmod(workdir / "cr.pw", 0o600)
    cwmp, api = free_port(), free_port()
    acs = start_acs(workdir, db_url, cwmp=cwmp, api=api, args=[
        "--public-url", f"http://acs.example.net:{cwmp}/",
        "--cr-username", CR_USER, "--cr-password-file", str(workdir / "cr.pw"),
        "--max-cr-in-flight", str(max_cr_in_flight),
        "--stun-listen", f"127.0.0.1:{stun_port}" if stun_port else "off"])
    sim = None
    try:
        sim = Proc([PY, "-m", "acs_security.cli", "simulate",
                    "--acs", f"http://acs.example.net:{cwmp}/",
                    "--resolve", "acs.example.net:127.0.0.1", "--phones", str(phones),
                    "--inform-interval", "86400", "--seed", "7",
                    "--cr-password-mode", "shared", "--cr-username", CR_USER,
                    "--cr-password-file", str(workdir / "cr.pw"),
                    "--max-sessions", str(sim_sessions), "--boot-ramp", str(boot_ramp),
                    "--status-interval", "5", *nat_args(nat, stun_port)], log=workdir / f"simulate-{cwmp}.log")
        boot0 = time.monotonic()
        total = registered + phones

        def registered_all() -> bool:
            if sim.popen.poll() is not None:
                raise RuntimeError(f"the simulator exited; see {workdir}/simulate-{cwmp}.log")
            return int(acs.call("GET", "/api/v1/devices?limit=1")["total"]) >= total

        _wait(f"{phones} simulated phones to register", registered_all, timeout)
        if nat:
            _wait("the phones behind NAT to have fresh STUN bindings", lambda: bindings_known(db_url, nat, phones),
                  timeout, interval=1.0)
        boot_s = time.monotonic() - boot0
        time.sleep(1.0)  # the boot sessions' last commits
        spies = [Profiler(acs.proc.pid, profile and profile.with_name(profile.name + "-server.txt")),
                 Profiler(sim.pid, profile and profile.with_name(profile.name + "-sim.txt"))]
        cpu0, sim_cpu0 = acs.proc.cpu_s(), sim.cpu_s()
        submitted = time.time()
        job = acs.call("POST", "/api/v1/jobs", {
            "policy": HARDENING.read_text(), "policy_name": "hardening",
            "select": "model=" + ",".join(SIM_MODELS), "max_fault_rate": 1.0, "deadline": deadline,
            "max_in_progress": max_in_progress, "method": method})
        job_id = job["id"]
        state: dict[str, Any] = {}

        def finished() -> bool:
            state.update(acs.call("GET", f"/api/v1/jobs/{job_id}"))
            return state["state"] != "running"

        _wait("the job to end", finished, timeout)
        cpu = acs.proc.cpu_s() - cpu0
        sim_cpu = sim.cpu_s() - sim_cpu0
        for spy in spies:
            spy.stop()
        report = acs.call("GET", f"/api/v1/jobs/{job_id}/report", timeout=120)
        peak_rss = acs.proc.peak_rss_mb()
        sim_peak_rss = sim.peak_rss_mb()
    finally:
        if sim is not None:
            sim.stop()
        acs.proc.stop()
    devices = report["devices"]
    applied = [d for d in devices if str(d["state"]).startswith("applied")]
    if state.get("state") != "completed" or len(applied) != phones:
        raise RuntimeError(f"job {job_id} ended {state.get('state')} with {len(applied)} of "
                           f"{phones} applied: {state.get('counts')}")
    times = sorted(_time(d["finished_at"]) - submitted for d in applied)
    duration = times[-1]
    return {
        "phones": phones,
        "registered": registered + phones,
        "phones_per_s": round(phones / duration, 1),
        "duration_s": round(duration, 2),
        "p50_s": round(times[len(times) // 2], 2),
        "p99_s": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_phone": round(cpu / phones * 1000, 3),
        "sim_cpu_ms_per_phone": round(sim_cpu / phones * 1000, 3),
        "server_peak_rss_mb": round(peak_rss, 1),
        "sim_peak_rss_mb": round(sim_peak_rss, 1),
        "boot_s": round(boot_s, 1),
        "register_bulk_s": round(register_s, 1),
        "reached_by": {m: sum(1 for d in devices if d.get("reached_by") == m) for m in ("http", "udp", "periodic")},
    }


def push_with_download(workdir: Path, *, phones: int, boot_ramp: float = 10.0) -> dict[str, Any]:
    """Figure 7: the same push twice in one run, each on a fresh SQLite database: every
    setting by SetParameterValues, then every setting in a per-phone cfg.xml Download (the
    phone fetches its file from the ACS and reports a TransferComplete in a second session).
    Returns both figures and their ratios."""
    spv = fleet_push(workdir / "spv", f"sqlite:///{workdir}/spv/acs.db", phones=phones,
                     boot_ramp=boot_ramp, method="auto")
    download = fleet_push(workdir / "download", f"sqlite:///{workdir}/download/acs.db", phones=phones,
                          boot_ramp=boot_ramp, method="download")
    out: dict[str, Any] = {"files_phones": phones}
    for name, r in (("spv", spv), ("download", download)):
        for key in ("phones_per_s", "p50_s", "p99_s", "server_cpu_ms_per_phone", "server_peak_rss_mb"):
            out[f"files_{name}_{key}"] = r[key]
    out["files_ratio_download_vs_spv"] = round(download["phones_per_s"] / spv["phones_per_s"], 3)
    out["files_cpu_ratio_download_vs_spv"] = round(
        download["server_cpu_ms_per_phone"] / spv["server_cpu_ms_per_phone"], 3)
    return out


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    extra = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    prof = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] not in ("spv", "download", "both") else None
    how = sys.argv[-1] if sys.argv[-1] in ("spv", "download", "both") else "spv"
    with tempfile.TemporaryDirectory(prefix="acs-bench-") as tmp:
        if how == "both":
            print(json.dumps(push_with_download(Path(tmp), phones=n), indent=2))
        else:
            print(json.dumps(fleet_push(Path(tmp), f"sqlite:///{tmp}/acs.db", phones=n, registered=extra,
                                        profile=prof, method="download" if how == "download" else "auto"),
                             indent=2))
