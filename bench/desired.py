"""Figure 7, desired state: the extra server CPU of a periodic session of a compliant device
that three assignments select, next to the same session on a server without assignments
(target: under 10 % more), measured side by side in one run.

1. Two ``acs-security serve`` processes (SQLite, CPE authentication off), each given three
   assignments (TLS, firewall, restricted domains and SIP per extension: the example
   hardening policy split in three, none conflicting).
2. One unmeasured boot round registers the phones on both, one more converges them: each
   phone's session gets its three SetParameterValues and the SetParameterAttributes,
   answered by the load generator (``--mode converge``), which notes the ParameterKey the
   phones end with. Then A's assignments are deleted: both stores hold the same known values
   (as a push of the same settings would have left them), so the two servers differ only in
   the assignments' work, not in the size of their tables.
3. Measured: periodic sessions of the same phones on A and on B *at the same time* (one load
   generator each, started together, CPU read before and after), in ``rounds`` rounds, so
   that whatever else the machine does hits both alike (rounds run one after the other on a
   machine shared with other work differed by tens of percent); on B the Informs report the
   ParameterKey of the last assignment, as the phones would (TR-069 A.3.2.1). The figure is
   the ratio of the totals; the rounds' ratios are reported beside it.
4. B's ``acs_desired_checks_total`` says how many measured sessions took the fast path (the
   device remembered as settled: no store read).

The load generator's phones are CP-8851-3PCC on firmware 12.0(1) (bench/envelopes.py).
"""

from __future__ import annotations

import json
import re
import statistics
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.procs import start_acs
from bench.sessions import _add, _per, run_loadgen

__all__ = ["ASSIGNMENTS", "measure_desired"]

ASSIGNMENTS = (
    ("tls", '[settings]\nTLS_Client_Min_Version = "TLS 1.2"\n'
            'TLS_Cipher_List = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"\n'),
    ("firewall", '[settings]\nFirewall = "Enabled"\nFirewall_Config = "NO_ICMP_PING"\n'),
    ("domains", '[settings]\nRestricted_Access_Domains = "acs.example.net,sip.example.net"\n'
                '[extensions]\napply_to = "all"\nSIP_Transport = "TLS"\nTLS_Name_Validate = "Yes"\n'),
)


def _checks(acs: Any) -> dict[str, float]:
    req = urllib.request.Request(acs.api + "/metrics", headers={"Authorization": f"Bearer {acs.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    pattern = r'^acs_desired_checks_total\{check="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def measure_desired(workdir: Path, *, phones: int, rounds: int = 10, procs: int = 2,
                    concurrency: int = 32) -> dict[str, Any]:
    """Figure 7 with ``phones`` periodic sessions per server. Raises RuntimeError when a round
    has failed sessions or the convergence round did not set every phone."""
    kw: dict[str, Any] = {"procs": procs, "concurrency": concurrency}
    plain = start_acs(workdir / "plain", f"sqlite:///{workdir}/plain.db")
    assigned = start_acs(workdir / "assigned", f"sqlite:///{workdir}/assigned.db")
    results: dict[str, dict[str, Any] | None] = {"none": None, "three": None}
    try:
        keys = set()
        for acs in (plain, assigned):
            run_loadgen(acs.cwmp_url, "periodic", 0, phones, **kw)  # boot round: registers them
            for name, text in ASSIGNMENTS:
                acs.call("POST", "/api/v1/assignments", {"policy": text, "select": "all", "name": name})
            converged = run_loadgen(acs.cwmp_url, "converge", 0, phones, **kw)
            if converged["failed"] or sum(converged["keys"].values()) != phones:
                raise RuntimeError(f"convergence round: {converged}")
            keys |= set(converged["keys"])
        for name, _ in ASSIGNMENTS:
            plain.call("DELETE", f"/api/v1/assignments/{name}")
        (key,) = keys  # every phone ends with the same (the last assignment's) key
        before = _checks(assigned)
        share = -(-phones // rounds)
        pairs: list[float] = []
        one = {"procs": 1, "concurrency": max(1, concurrency // 2)}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for r in range(rounds):
                lo, n = r * share, min(share, phones - r * share)
                if n <= 0:
                    break
                cpu0 = plain.proc.cpu_s(), assigned.proc.cpu_s()
                a = pool.submit(run_loadgen, plain.cwmp_url, "periodic", lo, n, parameter_key=key, **one)
                b = pool.submit(run_loadgen, assigned.cwmp_url, "periodic", lo, n, parameter_key=key, **one)
                runs = {"none": a.result(), "three": b.result()}
                runs["none"]["server_cpu_s"] = plain.proc.cpu_s() - cpu0[0]
                runs["three"]["server_cpu_s"] = assigned.proc.cpu_s() - cpu0[1]
                for which, stats in runs.items():
                    if stats["failed"]:
                        raise RuntimeError(f"{which} round: {stats['failed']} sessions failed: {stats['errors']}")
                    results[which] = _add(results[which], stats)
                pairs.append(_per(runs["three"], "sessions") / _per(runs["none"], "sessions") - 1)
        after = _checks(assigned)
    finally:
        plain.proc.stop()
        assigned.proc.stop()
    none, three = results["none"], results["three"]
    assert none is not None and three is not None
    base, extra = _per(none, "sessions"), _per(three, "sessions")
    return {
        "desired_cpu_per_session_us_none": round(base * 1e6, 1),
        "desired_cpu_per_session_us_three": round(extra * 1e6, 1),
        "desired_extra_cpu_ratio": round(extra / base - 1, 3),
        "desired_extra_cpu_ratio_median_round": round(statistics.median(pairs), 3),
        "desired_extra_cpu_ratio_rounds": [round(p, 3) for p in pairs],
        "desired_sessions": three["sessions"],
        "desired_fast_checks": int(after.get("fast", 0) - before.get("fast", 0)),
        "desired_full_checks": int(after.get("full", 0) - before.get("full", 0)),
        "desired_converge_spv_per_phone": round(converged["pushed"] / phones, 2),
        "desired_final_key": key,
    }


if __name__ == "__main__":
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(prefix="acs-bench-") as tmp:
        print(json.dumps(measure_desired(Path(tmp), phones=n), indent=2))
