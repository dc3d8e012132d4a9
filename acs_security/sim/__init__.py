"""Simulated Cisco phones: many per process, for tests, the demo, benchmarks and rehearsals.

Pure parts: :mod:`.table` (one shared parameter table per model and firmware), :mod:`.phone`
(one phone's state), :mod:`.rpc` (how it answers each ACS request), :mod:`.cpe_session` (the
CPE side of a CWMP session), :mod:`.lockout` (how its own settings cut it off its ACS),
:mod:`.faults`, :mod:`.build`, :mod:`.stats`. Twisted parts: :mod:`.fleet`
(:class:`SimulatedFleet`), :mod:`.http`, :mod:`.listeners`. See docs/simulator.md.

Importing this package does not import Twisted: ``SimulatedFleet`` and ``FleetConfigError``
are loaded from :mod:`.fleet` on first use (``from acs_security.sim import SimulatedFleet``).
"""

from typing import Any

from acs_security.sim.faults import FaultKind, FaultSpec, FaultSpecError, parse_faults
from acs_security.sim.lockout import AcsTlsFacts
from acs_security.sim.phone import Phone, PhoneEnvironment, UnknownParameterError
from acs_security.sim.stats import FleetStats
from acs_security.sim.table import DEFAULT_FIRMWARE, DEFAULT_MODELS, ModelTable

__all__ = [
    "AcsTlsFacts",
    "DEFAULT_FIRMWARE",
    "DEFAULT_MODELS",
    "FaultKind",
    "FaultSpec",
    "FaultSpecError",
    "FleetConfigError",
    "FleetStats",
    "ModelTable",
    "Phone",
    "PhoneEnvironment",
    "SimulatedFleet",
    "UnknownParameterError",
    "parse_faults",
]


def __getattr__(name: str) -> Any:
    if name in ("SimulatedFleet", "FleetConfigError"):
        from acs_security.sim import fleet

        return getattr(fleet, name)
    raise AttributeError(f"module 'acs_security.sim' has no attribute {name!r}")
