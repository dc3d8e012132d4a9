"""A memo of device plans within one job. Pure: no I/O.

Planning a device (``acs_security.policy.plan.plan_device``) translates the policy's cfg.xml
settings to TR-069 for the device's model and firmware and validates every value the way the
phone would (cipher strings expanded through OpenSSL among them): about 1.5 ms of CPU, the
largest part of a push session's cost on the ACS (py-spy, bench/ figure 2). A fleet has a
handful of model/firmware pairs and most of its devices hold the same known values, so one
job plans the same thing thousands of times.

The memo relies on what ``plan_device`` reads: the policy, the product class, the software
version, ``force_all``, and the known values only at the TR-069 paths the policy translates
to for that model and firmware (``known.get(param.path)``). The key is exactly that, so a
hit returns the very plan a fresh call would (``tests/fleet/test_plancache.py`` checks it
against fresh calls). Plans are frozen dataclasses and are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PlanCache"]

#: plan(product_class, software_version, known, force_all) -> DevicePlan
PlanFunction = Callable[[str, "str | None", "Mapping[str, str] | None", bool], Any]


class PlanCache:
    """Plans of one policy, memoised by (model, firmware, force_all, the known values at the
    paths the policy sets). At most ``max_entries`` plans are kept; past that, plans are
    computed without being kept (a fleet whose devices all differ gains nothing anyway)."""

    def __init__(self, plan: PlanFunction, *, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._plan = plan
        self._max = max_entries
        self._paths: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._rpcs: dict[tuple[Any, ...], Any] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memo)

    def plan(self, product_class: str, software_version: str | None,
             known: Mapping[str, str] | None, *, force_all: bool = False) -> Any:
        """The device's plan (what ``plan`` would return for these arguments)."""
        model = (product_class, software_version)
        paths = self._paths.get(model)
        if paths is None:
            # Every path the policy sets on this model and firmware: the plan with nothing
            # known and everything forced lists them all.
            every = self._plan(product_class, software_version, None, True)
            paths = self._paths[model] = tuple(every.paths)
        values = None if known is None else tuple(known.get(path) for path in paths)
        key = (model, force_all, values)
        found = self._memo.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        plan = self._plan(product_class, software_version, known, force_all)
        if len(self._memo) < self._max:
            self._memo[key] = plan
        return plan

    def rpc(self, batch: tuple[Any, ...], parameter_key: str, build: Callable[[], Any]) -> Any:
        """The RPC carrying ``batch`` (a slice of a plan's params) with ``parameter_key``: what
        ``build()`` returns, memoised by exactly those two (RPCs are frozen and shared by the
        sessions of every device with the same plan). Parsing and checking the 25 values of
        the example hardening policy again per session cost 22-36 µs; a hit costs 0.5 µs
        (timeit, issue 17). At most ``max_entries`` are kept."""
        key = (batch, parameter_key)
        found = self._rpcs.get(key)
        if found is None:
            found = build()
            if len(self._rpcs) < self._max:
                self._rpcs[key] = found
        return found
