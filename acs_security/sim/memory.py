"""How much memory an idle simulated phone costs (tracemalloc), for the docs and benchmarks.

Run ``python -m acs_security.sim.memory 10000``. Not a test: it allocates a large fleet and
takes a few seconds. The fleet runs on a fake clock without listeners, so the figure is the
phones, their schedule and the shared tables, measured after every phone has had its boot
session against the project's sans-IO ACS session machine (what "idle" means: between two
periodic Informs), optionally with a policy applied in that session.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from dataclasses import dataclass
from typing import Any

__all__ = ["MemoryReport", "measure_idle_memory"]


@dataclass(frozen=True, slots=True)
class MemoryReport:
    phones: int
    total_bytes: int
    tables: int

    @property
    def per_phone(self) -> float:
        return self.total_bytes / self.phones if self.phones else 0.0

    def __str__(self) -> str:
        return (f"{self.phones} idle phones: {self.total_bytes / 1e6:.1f} MB in total, "
                f"{self.per_phone / 1024:.2f} KiB per phone ({self.tables} shared tables)")


_POLICY = (
    ("Device.X_CISCO_SecuritySettings.TLSCipherList", "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"),
    ("Device.X_CISCO_SecuritySettings.FirewallOptions", "NO_ICMP_PING"),
    ("Device.X_CISCO_SystemConfiguration.RestrictedAccessDomains",
     "acs.example.net,sip.example.net,prov.example.net"),
    ("Device.X_CISCO_Ext.1.SIPTransport", "TLS"),
    ("Device.X_CISCO_Ext.1.TLSNameValidate", "Yes"),
)


def _session_in_memory(fleet: Any, phone: Any, now: float, with_policy: bool) -> None:
    """One whole session of ``phone`` against the project's sans-IO ACS machine, bytes and
    all, without sockets; then the fleet's own bookkeeping, as after a real session."""
    from acs_security.cwmp import messages as m
    from acs_security.cwmp.session import Session
    from acs_security.sim.cpe_session import CpeSession, HttpReply, SessionEnd

    acs = Session()
    cpe = CpeSession(phone, now=now, url=phone.acs_url, cnonce=lambda: "cn")
    acs.receive(cpe.start().body)
    step = cpe.receive(HttpReply(200, acs.respond(m.InformResponse()).body), now)
    acs.receive(step.body)  # type: ignore[union-attr]
    if with_policy:
        policy = m.SetParameterValues(tuple(m.ParameterValue(p, v, "string") for p, v in _POLICY),
                                      "hardening-1")
        step = cpe.receive(HttpReply(200, acs.send_request(policy).body), now)
        acs.receive(step.body)  # type: ignore[union-attr]
    end = cpe.receive(HttpReply(204), now)
    assert isinstance(end, SessionEnd) and end.ok, end
    fleet._runner.record(phone, cpe, end, False)
    fleet._after_session(phone)


def measure_idle_memory(phones: int = 10_000, *, seed: int = 0,
                        with_policy: bool = False) -> MemoryReport:
    """Build ``phones`` phones, run each one's boot session (and, with ``with_policy``, a
    five-setting SetParameterValues in it), and measure what stays allocated."""
    from twisted.internet.task import Clock

    from acs_security.mapping import load_catalogue
    from acs_security.sim.fleet import SimulatedFleet

    load_catalogue()  # the catalogue is shared by every fleet: not counted per phone
    clock = Clock()
    clock.advance(1_700_000_000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fleet = SimulatedFleet(clock, "http://acs.example.net:7547/", phones=phones, seed=seed,
                           cr_listen=None, udp_listen=None, boot_ramp_s=10.0)
    fleet.start()
    for phone in fleet.phones:
        _session_in_memory(fleet, phone, clock.seconds(), with_policy)
    booted = sum(1 for p in fleet.phones if p.sessions_completed)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    if booted != phones:
        raise RuntimeError(f"only {booted} of {phones} phones booted")
    report = MemoryReport(phones, after - before, len(fleet._tables))
    fleet.stop()
    return report


if __name__ == "__main__":  # pragma: no cover - a measurement, run by hand
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(measure_idle_memory(count))
    print("after a policy:", measure_idle_memory(count, with_policy=True))
