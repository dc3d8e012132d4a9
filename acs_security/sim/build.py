"""Who each simulated phone is, decided from the fleet's seed and the phone's index. Pure.

A phone's model, firmware and faults depend only on (seed, global index), never on the
fleet's size or on the other phones, so that several processes that share a fleet by serial
ranges (``serial_start``) build exactly the phones one process would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from acs_security.sim.faults import FaultKind, FaultSpec
from acs_security.sim.table import OLD_FIRMWARE

__all__ = ["PhonePlan", "index_of", "phone_draws", "plan_phone", "serial_for"]

_SERIAL_DIGITS = 8
_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """What one phone is: serial, model, firmware it runs, fault bits."""

    index: int
    serial: str
    product_class: str
    firmware: str
    assigned_firmware: str
    faults: int


def phone_draws(seed: int, index: int, count: int = 8) -> tuple[float, ...]:
    """``count`` uniform numbers in [0, 1) for phone ``index``: BLAKE2b of (seed, index)."""
    digest = hashlib.blake2b(f"acs-security-sim:{seed}:{index}".encode(),
                             digest_size=2 * count).digest()
    return tuple(int.from_bytes(digest[2 * i:2 * i + 2], "big") / 65536 for i in range(count))


def serial_for(prefix: str, index: int) -> str:
    """The serial number of phone ``index``: prefix and 8 digits (``SIM00000042``)."""
    return f"{prefix}{index:0{_SERIAL_DIGITS}d}"


def index_of(prefix: str, serial: str) -> int | None:
    """The global index of a serial built by :func:`serial_for`, or None."""
    if not serial.startswith(prefix):
        return None
    digits = serial[len(prefix):]
    if len(digits) < _SERIAL_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def plan_phone(seed: int, index: int, *, serial_prefix: str, models: Sequence[str],
               firmware: Sequence[str], faults: FaultSpec) -> PhonePlan:
    """The phone at global ``index``. Raises ValueError for empty models or firmware."""
    if not models or not firmware:
        raise ValueError("models and firmware must not be empty")
    draws = phone_draws(seed, index, 2 + len(_KINDS))
    model = models[int(draws[0] * len(models))]
    assigned = firmware[int(draws[1] * len(firmware))]
    bits = faults.assign({kind: draws[2 + i] for i, kind in enumerate(_KINDS)})
    running = OLD_FIRMWARE if bits & FaultKind.OLD_FIRMWARE else assigned
    return PhonePlan(index, serial_for(serial_prefix, index), model, running, assigned, bits)
