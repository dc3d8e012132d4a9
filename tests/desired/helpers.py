"""Shared builders of the desired-state tests."""

from __future__ import annotations

from datetime import UTC, datetime

from acs_security.desired.compiled import Compiled
from acs_security.fleet.selector import parse_selector
from acs_security.policy.document import parse_policy
from acs_security.store.jobrecords import TargetDevice

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
M8851, M7832 = "CP-8851-3PCC", "CP-7832-3PCC"
FW12 = "12.0(1)"


def policy(text: str, name: str = "p") -> object:
    return parse_policy(text.encode(), source=f"{name}.toml")


def assignment(aid: int, text: str, *, select: str = "all", priority: int = 0, mode: str = "enforce",
               revision: int = 1, name: str | None = None) -> Compiled:
    return Compiled(id=aid, name=name or f"a{aid}", priority=priority, mode=mode, revision=revision,
                    policy=policy(text), selector=parse_selector(select))  # type: ignore[arg-type]


def device(serial: str, model: str = M8851, fw: str | None = FW12, tags: tuple[str, ...] = ()) -> TargetDevice:
    return TargetDevice(f"00000C-{model.replace('-', '%2D')}-{serial}", model, fw, serial, None, None, None, tags)
