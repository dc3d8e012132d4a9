"""Shared helpers of the simulator tests: phones built without a fleet."""

from __future__ import annotations

from typing import Any

from acs_security.mapping import load_catalogue
from acs_security.sim.phone import Phone, PhoneEnvironment
from acs_security.sim.table import ModelTables

CATALOGUE = load_catalogue()
TABLES = ModelTables(CATALOGUE)
ACS_URL = "http://acs.example.net:7547/"


class FixedClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def environment(clock: FixedClock | None = None, **kwargs) -> PhoneEnvironment:
    base: dict[str, Any] = dict(acs_url=ACS_URL, acs_username="cpe", acs_password="acs-secret",
                periodic_interval=300, cr_secret=b"k" * 32,
                cr_url_base="http://127.0.0.1:9000/", udp_address="127.0.0.1:7999")
    base.update(kwargs)
    return PhoneEnvironment(CATALOGUE, clock or FixedClock(), **base)


def make_phone(model: str = "CP-8851-3PCC", firmware: str = "12.0(1)", *, serial: str = "SIM00000001",
               faults: int = 0, env: PhoneEnvironment | None = None) -> Phone:
    return Phone(serial, TABLES.get(model, firmware), env or environment(), faults=faults)
