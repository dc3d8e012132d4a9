"""Counters of a simulated fleet and their one-line status and summary. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FleetStats"]


@dataclass(slots=True)
class FleetStats:
    """What the fleet did so far. Mutated by the fleet only; read by anyone."""

    sessions_started: int = 0
    sessions_ok: int = 0
    sessions_failed: int = 0
    #: Informs the ACS answered, per event code ("1 BOOT", "2 PERIODIC", ...).
    informs: Counter[str] = field(default_factory=Counter)
    #: Why sessions failed ("ACS busy (503)", "connection refused", "TLS handshake ...").
    failures: Counter[str] = field(default_factory=Counter)
    #: ACS requests answered per RPC name, and CWMP faults the phones answered per code.
    rpcs: Counter[str] = field(default_factory=Counter)
    cpe_faults: Counter[int] = field(default_factory=Counter)
    cr_accepted: int = 0
    #: HTTP connection requests refused, per reason (auth, busy, rate, offline, fault503).
    cr_refused: Counter[str] = field(default_factory=Counter)
    udp_accepted: int = 0
    xmpp_accepted: int = 0
    #: UDP connection requests ignored, per reason (bad_signature, replayed_id, ...).
    udp_ignored: Counter[str] = field(default_factory=Counter)
    #: Phones that stopped contacting the ACS, per reason.
    lockouts: Counter[str] = field(default_factory=Counter)
    downloads: int = 0
    uploads: int = 0

    @property
    def cpe_fault_count(self) -> int:
        return sum(self.cpe_faults.values())

    @property
    def cr_refused_count(self) -> int:
        return sum(self.cr_refused.values())

    def line(self, *, phones: int, in_session: int, locked_out: int) -> str:
        """One status line, for a terminal every few seconds."""
        return (
            f"phones={phones} in_session={in_session} sessions ok={self.sessions_ok} "
            f"failed={self.sessions_failed} faults={self.cpe_fault_count} "
            f"cr accepted={self.cr_accepted + self.udp_accepted + self.xmpp_accepted} "
            f"refused={self.cr_refused_count + sum(self.udp_ignored.values())} "
            f"locked_out={locked_out}"
        )

    def summary(self) -> str:
        """Several lines: every counter that is not zero."""
        lines = [
            f"sessions: {self.sessions_ok} ok, {self.sessions_failed} failed "
            f"({self.sessions_started} started)",
            "informs: " + _fmt(self.informs),
            "ACS requests answered: " + _fmt(self.rpcs),
            "faults answered: " + _fmt(self.cpe_faults),
            f"connection requests: HTTP {self.cr_accepted} accepted, refused "
            + _fmt(self.cr_refused) + f"; UDP {self.udp_accepted} accepted, ignored "
            + _fmt(self.udp_ignored) + f"; XMPP {self.xmpp_accepted} accepted",
            "session failures: " + _fmt(self.failures),
            "lockouts: " + _fmt(self.lockouts),
            f"downloads: {self.downloads}",
            f"uploads: {self.uploads}",
        ]
        return "\n".join(lines)


def _fmt(counter: Counter) -> str:  # type: ignore[type-arg]
    if not counter:
        return "none"
    return ", ".join(f"{key}={count}" for key, count in counter.most_common())
