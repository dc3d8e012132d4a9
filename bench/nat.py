"""Figure 9: a push with 60 % of the phones behind NAT next to the same push without NAT,
measured side by side in one run (bench/push.py :func:`fleet_push` twice, each on a fresh
SQLite database, the ACS's STUN server on in both).

The phones behind NAT (``simulate --nat``, acs_security/sim/nat.py) are woken by UDP
connection requests from the STUN server's socket through their simulated NAT (Annex G: three
copies of each datagram), the others by HTTP; the push is measured once every phone behind
NAT has a fresh binding, as in a fleet that has been up for a while.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

__all__ = ["bindings_known", "nat_args", "push_behind_nat"]


def nat_args(nat: float, stun_port: int | None) -> list[str]:
    """The simulator's NAT arguments (none without NAT)."""
    if not nat or stun_port is None:
        return []
    return ["--nat", str(nat), "--stun-server", f"127.0.0.1:{stun_port}", "--stun-keepalive", "20"]


def bindings_known(db_url: str, nat: float, phones: int) -> bool:
    """Whether the ACS's store knows a fresh UDP address for (nearly) every phone behind NAT:
    the phones' VALUE CHANGE Informs and the STUN server's batches are in."""
    from datetime import UTC, datetime

    from acs_security.store import open_store

    store = open_store(db_url)
    try:
        now = datetime.now(UTC).timestamp()
        fresh = sum(1 for d in store.target_devices()
                    if d.nat_detected and d.udp_seen is not None and now - d.udp_seen < 25)
    finally:
        store.close()
    return fresh >= int(phones * nat * 0.9) and fresh > 0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_behind_nat(workdir: Path, *, phones: int, boot_ramp: float = 10.0, rate: float = 0.6) -> dict[str, Any]:
    """The push without NAT, then with ``rate`` of the phones behind NAT. Returns both
    figures, how the phones were reached, and the ratio."""
    from bench.push import fleet_push

    plain = fleet_push(workdir / "plain", f"sqlite:///{workdir}/plain/acs.db", phones=phones,
                       boot_ramp=boot_ramp, stun_port=_free_udp_port())
    natted = fleet_push(workdir / "nat", f"sqlite:///{workdir}/nat/acs.db", phones=phones,
                        boot_ramp=boot_ramp, nat=rate, stun_port=_free_udp_port())
    out: dict[str, Any] = {"nat_phones": phones, "nat_rate": rate}
    for name, r in (("plain", plain), ("nat", natted)):
        for key in ("phones_per_s", "p50_s", "p99_s", "server_cpu_ms_per_phone", "sim_cpu_ms_per_phone"):
            out[f"nat_{name}_{key}"] = r[key]
        out[f"nat_{name}_reached_by"] = r["reached_by"]
    out["nat_udp_reached"] = natted["reached_by"]["udp"]
    out["nat_ratio_vs_plain"] = round(natted["phones_per_s"] / plain["phones_per_s"], 3)
    return out


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="acs-bench-nat-") as tmp:
        print(json.dumps(push_behind_nat(Path(tmp), phones=n), indent=2))
