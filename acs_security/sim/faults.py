"""Fault injection for the simulated fleet: which share of the phones misbehave, and how.

A spec is ``kind=fraction`` pairs separated by commas, e.g.
``offline=0.05,slow=0.02,cr503=0.02,drop=0.01,old_firmware=0.05,reject=0.02``. Each kind is
assigned to phones independently, deterministically from the fleet's seed and the phone's
serial number (so that several processes sharing a fleet by serial ranges agree on which
phone has which fault). Parsing is pure; a bad spec raises :class:`FaultSpecError` naming
the element and what is wrong with it.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["FaultKind", "FaultSpec", "FaultSpecError", "parse_faults"]


class FaultKind(enum.IntFlag):
    """One way a phone misbehaves (a bit, so that a phone's faults fit in one int)."""

    #: Never contacts the ACS and never answers a connection request (unplugged phone).
    OFFLINE = 1
    #: Answers every ACS request (and connection request) only after ``slow_delay`` seconds.
    SLOW = 2
    #: Answers every HTTP connection request with 503 + Retry-After (a busy phone).
    CR503 = 4
    #: Drops the TCP connection at the first ACS request of each session, without answering.
    DROP = 8
    #: Runs an older firmware that lacks the settings seed 000 introduced (TLS Min Version,
    #: FIPS Mode, RFC 8760, Webex metrics, PRT upload): SetParameterValues on them gets 9005.
    OLD_FIRMWARE = 16
    #: A firmware that refuses every value of ``Device.X_CISCO_SecuritySettings.*`` with 9007.
    REJECT = 32
    #: A firmware that finds every downloaded configuration file unusable: TransferComplete
    #: 9018 "file corrupted or otherwise unusable", nothing applied.
    REFUSE_FILE = 64

    @property
    def spec_name(self) -> str:
        """The name used in a spec (``old_firmware``)."""
        return (self.name or "").lower()


_BY_NAME: dict[str, FaultKind] = {kind.spec_name: kind for kind in FaultKind}


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message names the element and the problem."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Fraction of the fleet (0..1) that has each fault kind; kinds not named have 0."""

    fractions: Mapping[FaultKind, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, fraction in self.fractions.items():
            if not isinstance(kind, FaultKind) or kind.name is None:
                raise FaultSpecError(f"{kind!r} is not a single fault kind")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
                raise FaultSpecError(f"{kind.spec_name}: the fraction must be a number")
            if not 0.0 <= float(fraction) <= 1.0:
                raise FaultSpecError(f"{kind.spec_name}: fraction {fraction} is outside 0..1")
        object.__setattr__(self, "fractions", dict(self.fractions))

    def fraction(self, kind: FaultKind) -> float:
        return float(self.fractions.get(kind, 0.0))

    def __iter__(self) -> Iterator[tuple[FaultKind, float]]:
        return iter(sorted(self.fractions.items(), key=lambda item: item[0].value))

    def __str__(self) -> str:
        return ",".join(f"{kind.spec_name}={fraction:g}" for kind, fraction in self)

    def assign(self, draw: Mapping[FaultKind, float]) -> int:
        """The fault bits of one phone, given one uniform draw in [0, 1) per kind."""
        bits = 0
        for kind, fraction in self.fractions.items():
            if draw[kind] < fraction:
                bits |= kind.value
        return bits


def parse_faults(text: str) -> FaultSpec:
    """Parse ``kind=fraction,...`` (an empty string is no faults).

    Raises:
        FaultSpecError: an element without ``=``, an unknown kind (with the closest known
        one), a kind given twice, or a fraction that is not a number in 0..1 (a trailing
        ``%`` is accepted: ``offline=5%``).
    """
    fractions: dict[FaultKind, float] = {}
    if not text.strip():
        return FaultSpec({})
    for position, element in enumerate(text.split(","), start=1):
        element = element.strip()
        if not element:
            raise FaultSpecError(f"element {position} is empty (a stray comma?)")
        name, sep, value = element.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep:
            raise FaultSpecError(f"{element!r} is not kind=fraction")
        kind = _BY_NAME.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FaultSpecError(
                f"unknown fault kind {name!r}{hint} (known: {', '.join(_BY_NAME)})"
            )
        if kind in fractions:
            raise FaultSpecError(f"{name} is given twice")
        value = value.strip()
        scale = 1.0
        if value.endswith("%"):
            value, scale = value[:-1].strip(), 0.01
        try:
            fraction = float(value) * scale
        except ValueError:
            raise FaultSpecError(f"{name}: {value!r} is not a number") from None
        if not 0.0 <= fraction <= 1.0 or fraction != fraction:
            raise FaultSpecError(f"{name}: fraction {value} is outside 0..1")
        fractions[kind] = fraction
    return FaultSpec(fractions)
