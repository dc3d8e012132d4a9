"""Where figure 6's processes run: a core for each ACS node, the rest for the shared ones.

Issue 17 target 5 compares two nodes with one "so that each node has a core of its own as a
second machine would give it", with the processes both runs share (the simulator, PostgreSQL,
the balancer) placed the same way in both. This module only decides the layout; it reads and
changes nothing (bench/affinity.py applies it):

- node *i* gets one CPU of a core of its own, the same CPU in the one-node and the two-node
  run (node 1 on the same core in both; node 2's core stays idle in the one-node run);
- the shared processes get every CPU of the remaining cores, the same set in both runs;
- the other hyperthreads of a node's core are left idle: a sibling shares the core's
  execution units, so a process there would take cycles from the node;
- fewer cores than nodes + 1: no layout, and the reason says how many it needs and how many
  this process may use (the figure is then not measured "pinned" at all, rather than
  measured some other way under that name).

``--cpus`` (e.g. ``0-3`` or ``0,2,4-7``) names the CPUs to lay out instead of all the CPUs
this process may use (``os.sched_getaffinity(0)``); it must be a subset of those.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

__all__ = ["PinningRefused", "parse_cpus", "format_cpus", "choose_cpus", "plan_layout",
           "describe_layout"]

#: What runs on the shared CPUs (the words of the reasons and the report).
SHARED = "the simulator, PostgreSQL and the balancer"


class PinningRefused(ValueError):
    """The layout cannot be made (too few cores) or ``--cpus`` is malformed; the message says
    precisely why."""


def parse_cpus(text: str) -> frozenset[int]:
    """``0-3``, ``0,2,4-7`` (taskset's list syntax) as a set of CPU numbers.

    Raises PinningRefused naming the part that is not a CPU number or an increasing range."""
    cpus: set[int] = set()
    parts = [p.strip() for p in text.split(",")]
    if not text.strip():
        raise PinningRefused("--cpus is empty: give CPU numbers or ranges such as 0-3 or 0,2,4-7")
    for part in parts:
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise PinningRefused(f"--cpus {text!r}: {part!r} is not a CPU number or a range such as 0-3")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise PinningRefused(f"--cpus {text!r}: the range {part!r} ends below its start")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def format_cpus(cpus: Iterable[int]) -> str:
    """The taskset / Cpus_allowed_list form: ``0-3,6``."""
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def choose_cpus(allowed: Iterable[int], override: str | None = None) -> frozenset[int]:
    """The CPUs to lay out: ``override`` (``--cpus``) when given, else ``allowed`` (what
    ``os.sched_getaffinity(0)`` returns). Raises PinningRefused when the override is malformed
    or names CPUs this process may not use (the kernel would refuse them)."""
    may = frozenset(allowed)
    if override is None:
        return may
    chosen = parse_cpus(override)
    outside = chosen - may
    if outside:
        raise PinningRefused(f"--cpus {override!r}: CPU(s) {format_cpus(outside)} are not ones this "
                             f"process may use (allowed: {format_cpus(may) or 'none'})")
    return chosen


def plan_layout(cpus: Iterable[int], nodes: int,
                cores: Mapping[int, Hashable] | None = None) -> dict[str, frozenset[int]]:
    """``{"node1": {cpu}, ..., "nodeN": {cpu}, "shared": {cpus}}`` (and ``"idle"`` for the
    hyperthread siblings of the nodes' cores, when there are any) for the comparison of 1 to
    ``nodes`` nodes: use the same layout for every run of it.

    ``cores`` maps a CPU to its physical core (CPUs without an entry are cores of their own);
    a core's CPUs go all to one role. Raises PinningRefused with the counts when there are
    fewer cores than ``nodes`` + 1."""
    if nodes < 1:
        raise ValueError(f"nodes must be at least 1, not {nodes}")
    given = sorted(set(cpus))
    by_core: dict[Hashable, list[int]] = {}
    for cpu in given:
        by_core.setdefault(cores.get(cpu, ("cpu", cpu)) if cores else ("cpu", cpu), []).append(cpu)
    groups = sorted(by_core.values())  # by each core's lowest CPU: the same layout every run
    if len(groups) < nodes + 1:
        smt = f" on {len(groups)} core(s)" if len(groups) != len(given) else ""
        raise PinningRefused(
            f"pinning {nodes} node{'s' if nodes > 1 else ''} needs {nodes + 1} CPUs on separate cores "
            f"(a core each and one for {SHARED}); this machine lets us use {len(given)}{smt}"
            + (f" (CPUs {format_cpus(given)})" if given else ""))
    layout = {f"node{i}": frozenset(group[:1]) for i, group in enumerate(groups[:nodes], 1)}
    layout["shared"] = frozenset(cpu for group in groups[nodes:] for cpu in group)
    idle = frozenset(cpu for group in groups[:nodes] for cpu in group[1:])
    if idle:
        layout["idle"] = idle
    return layout


def describe_layout(layout: Mapping[str, Iterable[int]]) -> str:
    """One line for the report: ``node1 on CPU 0, node2 on CPU 1, shared (...) on CPUs 2-3``."""
    parts = [f"{role} on CPU {format_cpus(cpus)}" for role, cpus in layout.items()
             if role.startswith("node")]
    parts.append(f"shared ({SHARED}) on CPU {format_cpus(layout['shared'])}")
    if layout.get("idle"):
        parts.append(f"idle (the nodes' hyperthread siblings) CPU {format_cpus(layout['idle'])}")
    return ", ".join(parts)
