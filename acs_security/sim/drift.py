"""Simulated phones that drift (issue 14): a person changes a setting on the phone's web page,
or someone resets the phone to its factory values.

:func:`web_page_change` is pure (a phone and a random generator in, one changed value out):
the person picks a setting the ACS watches (one with active notification, which the ACS sets
on the settings it controls) when there is one, else any security setting of the model, and
sets it back to its factory value (or another allowed value, or flips a boolean). The phone
then reports ``4 VALUE CHANGE`` with the new value when notification is active (TR-069
A.3.2.4; Phone.set_param), and nothing otherwise. :func:`factory_reset` makes the phone forget
everything and start over with ``0 BOOTSTRAP``.

:class:`DriftInjector` does both to a share of the fleet every interval (``simulate --drift
RATE --factory-reset RATE``).
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.task import LoopingCall

from acs_security.mapping import Catalogue
from acs_security.mapping.convert import to_tr069_text
from acs_security.mapping.errors import MappingError
from acs_security.sim.fleet import IDLE, SimulatedFleet
from acs_security.sim.phone import Phone

__all__ = ["DriftInjector", "factory_reset", "web_page_change"]


def _other_value(phone: Phone, path: str, catalogue: Catalogue) -> str | None:
    info = phone.table.params[path]
    current = phone.value(path)
    if info.default != current:
        return info.default  # "reset to default" on the web page
    if info.xsi_type == "boolean":
        return "false" if current == "true" else "true"
    if info.setting_key is None:
        return None
    try:
        setting = catalogue.setting(info.setting_key)
        for value in setting.values:
            text = to_tr069_text(setting, value)
            if text != current:
                return text
    except MappingError:
        return None
    return None


def web_page_change(phone: Phone, rng: random.Random, catalogue: Catalogue) -> tuple[str, str] | None:
    """Change one setting as a person on the web page would; (path, new value), or None when
    the phone has nothing to change."""
    watched = [p for p in phone.active_notification() if p in phone.table.params]
    candidates = watched or sorted(
        path for path, info in phone.table.params.items()
        if info.setting_key is not None and info.writable and not info.secret)
    rng.shuffle(candidates)
    for path in candidates:
        new = _other_value(phone, path, catalogue)
        if new is not None:
            phone.set_param(path, new)
            return path, new
    return None


def factory_reset(fleet: SimulatedFleet, phone: Phone, now: float) -> bool:
    """Reset an idle phone to its factory values; it informs ``0 BOOTSTRAP`` at once.
    False when the phone is busy, locked out or offline."""
    if phone.state != IDLE:
        return False
    phone.factory_reset(now)
    phone.udp_verifier = None
    return fleet.inform_now(phone.serial, "1 BOOT")


class DriftInjector:
    """Every ``interval`` seconds, ``drift_rate`` of the idle phones change a setting on their
    web page and ``reset_rate`` of them are factory reset (rates are shares of the fleet,
    0-1; the count is rounded at random so small rates still happen)."""

    def __init__(self, reactor: Any, fleet: SimulatedFleet, *, drift_rate: float = 0.0, reset_rate: float = 0.0,
                 interval: float = 300.0, seed: int = 0) -> None:
        if not (0 <= drift_rate <= 1 and 0 <= reset_rate <= 1) or interval <= 0:
            raise ValueError("rates must be 0-1 and the interval positive")
        self._reactor = reactor
        self._fleet = fleet
        self.drift_rate = drift_rate
        self.reset_rate = reset_rate
        self._interval = interval
        self._rng = random.Random(f"drift:{seed}")
        self._loop: LoopingCall | None = None
        self.drifted = 0
        self.resets = 0

    def start(self) -> None:
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self._reactor
        self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _count(self, rate: float, population: int) -> int:
        exact = rate * population
        whole = int(exact)
        return whole + (1 if self._rng.random() < exact - whole else 0)

    def tick(self) -> None:
        idle = [p for p in self._fleet.phones if p.state == IDLE and p.locked_out is None]
        now = self._reactor.seconds()
        for phone in self._rng.sample(idle, min(len(idle), self._count(self.drift_rate, len(idle)))):
            if web_page_change(phone, self._rng, phone.env.catalogue) is not None:
                self.drifted += 1
        idle = [p for p in idle if p.state == IDLE]
        for phone in self._rng.sample(idle, min(len(idle), self._count(self.reset_rate, len(idle)))):
            if factory_reset(self._fleet, phone, now):
                self.resets += 1
