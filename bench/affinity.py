"""Applying bench/pinning.py's layout to figure 6's processes (Linux: /proc and
sched_setaffinity), and reading back where the kernel lets each of them run.

- Processes the bench starts (nodes, simulator, TCP balancer) start under ``taskset -c`` so
  that every thread they ever create inherits the mask (sched_setaffinity(2) on a PID moves
  only that one thread; threads started before it keep the old mask).
- HAProxy (started by acs_security/sim/haproxy.py) starts from a thread of the bench that is
  itself moved to the shared CPUs for that moment (:func:`launching_on`): the child inherits
  the mask at fork, so HAProxy also sizes its thread count to them.
- The bench itself (it polls the management API, samples the processes' memory) runs on the
  shared CPUs for the figure: it too is a process both runs share.
- PostgreSQL runs already, under its own user: :class:`PostgresPin` moves the postmaster and
  its current children (backends, checkpointer, WAL writer...) to the shared CPUs for the run
  (backends forked during the run inherit the postmaster's mask) and puts every one back
  afterwards. Without permission (CAP_SYS_NICE, or the same user) it says so and changes
  nothing.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.pinning import PinningRefused, format_cpus

__all__ = ["read_cores", "parse_stat", "allowed_list", "threads_allowed", "children",
           "taskset_prefix", "launching_on", "PostgresPin", "observe"]

PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")
GetAffinity = Callable[[int], set[int]]
SetAffinity = Callable[[int, frozenset[int]], None]


def read_cores(cpus: frozenset[int], root: Path = SYS_CPU) -> dict[int, tuple[int, int]]:
    """CPU -> (package, core) from sysfs, for the CPUs whose topology is readable (the others
    count as cores of their own in plan_layout)."""
    out: dict[int, tuple[int, int]] = {}
    for cpu in cpus:
        topo = root / f"cpu{cpu}" / "topology"
        try:
            out[cpu] = (int((topo / "physical_package_id").read_text()),
                        int((topo / "core_id").read_text()))
        except (OSError, ValueError):
            continue
    return out


def parse_stat(text: str) -> tuple[str, int, int]:
    """(comm, parent PID, start time in clock ticks) of a /proc/PID/stat line (proc(5)); comm
    may hold spaces and parentheses, so the fields are counted from its last ``)``."""
    head, sep, tail = text.rpartition(")")
    if not sep or "(" not in head:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    fields = tail.split()
    # fields[0] is field 3 (state): ppid is field 4, starttime field 22.
    return head.split("(", 1)[1], int(fields[1]), int(fields[19])


def _stat(pid: int, proc: Path) -> tuple[str, int, int] | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def allowed_list(status: Path) -> str | None:
    """``Cpus_allowed_list`` of a /proc/PID[/task/TID]/status file; None when gone."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def threads_allowed(pid: int, proc: Path = PROC) -> dict[str, int]:
    """Threads of the process per ``Cpus_allowed_list``: ``{"0": 7}`` when all 7 run on CPU 0."""
    counts: Counter[str] = Counter()
    try:
        tids = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return {}
    for tid in tids:
        allowed = allowed_list(tid / "status")
        if allowed is not None:
            counts[allowed] += 1
    return dict(counts)


def children(ppid: int, proc: Path = PROC) -> list[int]:
    """PIDs whose parent is ``ppid``."""
    out = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name), proc)
            if stat is not None and stat[1] == ppid:
                out.append(int(entry.name))
    return sorted(out)


def taskset_prefix(cpus: frozenset[int]) -> list[str]:
    """``taskset -c LIST``, to put before a command. Raises PinningRefused without taskset."""
    taskset = shutil.which("taskset")
    if taskset is None:
        raise PinningRefused("taskset (util-linux) is not installed: the processes cannot be "
                             "started pinned")
    return [taskset, "-c", format_cpus(cpus)]


@contextmanager
def launching_on(cpus: frozenset[int]) -> Iterator[None]:
    """The calling thread (Linux: PID 0 is the calling thread) runs on ``cpus`` inside the
    block, so a process or a thread it starts there inherits them (a thread keeps them for
    good); the old mask afterwards."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class PostgresPin:
    """The local PostgreSQL server (found from one of its backends) on ``cpus`` for a run.

    :meth:`pin` and :meth:`restore` return a line for the figure's output; neither raises for
    a server it may not or cannot pin (another machine or PID namespace, another user without
    CAP_SYS_NICE): the run goes on with PostgreSQL unpinned and says so."""

    def __init__(self, backend_pid: int, cpus: frozenset[int], *, proc: Path = PROC,
                 get: GetAffinity = os.sched_getaffinity,
                 set_: SetAffinity = os.sched_setaffinity) -> None:
        self.cpus = cpus
        self._proc = proc
        self._get = get
        self._set = set_
        self.postmaster: int | None = None
        self.pinned = False
        #: PID -> (start time, mask before the run): a PID reused by another process during
        #: the run has another start time and is left alone.
        self._saved: dict[int, tuple[int, set[int]]] = {}
        self.reason = self._find(backend_pid)

    def _find(self, backend: int) -> str | None:
        stat = _stat(backend, self._proc)
        if stat is None or not stat[0].startswith("postgres"):
            return (f"its backend (PID {backend}) is not a postgres process of this machine "
                    "(a server elsewhere or in another PID namespace)")
        parent = _stat(stat[1], self._proc)
        if parent is None or not parent[0].startswith("postgres"):
            return f"the parent of backend {backend} (PID {stat[1]}) is not the postmaster"
        self.postmaster = stat[1]
        return None

    def pin(self) -> str:
        if self.postmaster is None:
            return f"PostgreSQL not pinned: {self.reason}"
        pids = [self.postmaster, *children(self.postmaster, self._proc)]
        for pid in pids:
            stat = _stat(pid, self._proc)
            if stat is None:
                continue  # exited meanwhile
            try:
                self._saved[pid] = (stat[2], set(self._get(pid)))
                self._set(pid, self.cpus)
            except ProcessLookupError:
                self._saved.pop(pid, None)
            except PermissionError as exc:
                self._saved.pop(pid, None)
                self.restore()
                self.reason = (f"permission refused to move PID {pid} ({exc.strerror}): run the bench as "
                               "root or as PostgreSQL's user, or pin the server by hand (docs/performance.md)")
                return f"PostgreSQL not pinned: {self.reason}"
        self.pinned = True
        return (f"PostgreSQL pinned: the postmaster (PID {self.postmaster}) and its {len(self._saved) - 1} "
                f"processes on CPU {format_cpus(self.cpus)}; restored after the run")

    def restore(self) -> str:
        """Every saved process back to its mask; the children forked during the run (they
        inherited the pinned one) to the postmaster's."""
        if not self._saved or self.postmaster is None:
            return "PostgreSQL: nothing to restore"
        home = self._saved.get(self.postmaster, (0, None))[1]
        restored = 0
        targets = dict(self._saved)
        if home is not None:
            for pid in children(self.postmaster, self._proc):
                stat = _stat(pid, self._proc)
                if pid not in targets and stat is not None:
                    targets[pid] = (stat[2], home)
        for pid, (start, mask) in targets.items():
            stat = _stat(pid, self._proc)
            if stat is None or stat[2] != start:
                continue  # gone, or the PID is another process now
            try:
                self._set(pid, frozenset(mask))
                restored += 1
            except (ProcessLookupError, PermissionError):
                continue
        self._saved.clear()
        self.pinned = False
        return f"PostgreSQL: {restored} processes back on their CPUs"

    def processes_allowed(self) -> dict[str, int]:
        """The postmaster's children per Cpus_allowed_list, as the kernel has them now."""
        counts: Counter[str] = Counter()
        if self.postmaster is not None:
            for pid in children(self.postmaster, self._proc):
                allowed = allowed_list(self._proc / str(pid) / "status")
                if allowed is not None:
                    counts[allowed] += 1
        return dict(counts)


def observe(pids: Mapping[str, int], pg: PostgresPin | None = None, proc: Path = PROC) -> dict[str, dict[str, int]]:
    """Where the kernel lets each named process's threads (and PostgreSQL's processes) run now:
    ``{"acs1": {"0": 9}, "simulator": {"1": 3}, "postgres": {"1": 14}}``."""
    out = {name: threads_allowed(pid, proc) for name, pid in pids.items()}
    if pg is not None:
        out["postgres"] = pg.processes_allowed()
    return out
