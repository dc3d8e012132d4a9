"""The assignments of this node, compiled and kept current from the store (Twisted edge).

Sessions must not read the assignments from the store: a periodic session of a compliant
device is the most common thing an ACS does, and its cost is the bench target (decision
0009). So every node holds the compiled set (acs_security.desired.compiled) and, every
``sync_interval`` seconds, asks the store for the assignments' generation (one cheap
aggregate) and reloads them only when it moved; a change made through this node's service
is picked up at once. The device tags that selectors name are kept here too.

It also remembers, per device, the desired state the device was last settled for
(:meth:`remember`): the stamp of that state, the ParameterKey the device then had and until
when the memory holds (a faulted change is retried later). A periodic Inform that reports
the same key (TR-069 A.3.2.1: nobody changed the device through SetParameterValues since),
no boot and no controlled value changed is then settled without reading the store. The
memory is bounded (``cache_size`` devices, oldest forgotten first); forgetting costs one
store read at the device's next session, never a wrong answer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from acs_security.desired.compiled import AssignmentSet, Compiled, compile_assignment
from acs_security.mapping import Catalogue, load_catalogue

__all__ = ["LiveAssignments"]

log = Logger(namespace="acs_security.desired")


class LiveAssignments:
    """The compiled assignments, device tags and per-device memory of one node."""

    def __init__(self, store: Any, clock: Any, *, catalogue: Catalogue | None = None,
                 sync_interval: float = 5.0, cache_size: int = 200_000) -> None:
        if sync_interval <= 0 or cache_size < 0:
            raise ValueError("sync_interval must be positive and cache_size not negative")
        self._store = store
        self._clock = clock
        self.catalogue = catalogue or load_catalogue()
        self.sync_interval = sync_interval
        self.cache_size = cache_size
        self.current = AssignmentSet((), catalogue=self.catalogue)
        self.tags: dict[str, tuple[str, ...]] = {}
        self._generation: Any = None
        self._memory: dict[str, tuple[int, str | None, float]] = {}
        self._loop: LoopingCall | None = None
        self._syncing = False
        self.loaded = False
        self.unreadable: dict[str, str] = {}  # assignment name -> why it could not be compiled

    # -- life cycle -------------------------------------------------------------------

    def load(self, records: list[Any], generation: Any, tags: dict[str, tuple[str, ...]]) -> None:
        """Install assignments read by the caller (the server's first load, before it listens)."""
        self._install(records, generation)
        self.tags = tags if self.current.uses_tags else {}

    async def start(self) -> None:
        """Keep the set current (loaded now unless :meth:`load` did it)."""
        if not self.loaded:
            await self.refresh(force=True)
        self._loop = LoopingCall(self._sync_soon)
        self._loop.clock = self._clock
        self._loop.start(self.sync_interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _sync_soon(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        d = Deferred.fromCoroutine(self.refresh())

        def done(result: Any) -> None:
            self._syncing = False
            if hasattr(result, "getErrorMessage"):
                log.warn("cannot refresh the assignments from the store: {error}", error=result.getErrorMessage())

        d.addBoth(done)

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the assignments when the store's generation moved (or ``force``); the
        tags whenever a selector uses them. True when the set was rebuilt."""
        generation = await self._store.call("assignment_generation")
        rebuilt = False
        if force or generation != self._generation:
            self._install(await self._store.call("list_assignments"), generation)
            rebuilt = True
        if self.current.uses_tags:
            self.tags = await self._store.call("all_device_tags")
        elif self.tags:
            self.tags = {}
        return rebuilt

    def _install(self, records: list[Any], generation: Any) -> None:
        compiled: list[Compiled] = []
        unreadable: dict[str, str] = {}
        for rec in records:
            try:
                compiled.append(compile_assignment(rec))
            except ValueError as exc:
                unreadable[rec.name] = str(exc)
                log.error("assignment {name} is not enforced: {error}", name=rec.name, error=str(exc))
        # Stamps of the new set differ wherever something changed, so the devices' memory
        # stays valid and is kept.
        self.current = AssignmentSet(compiled, catalogue=self.catalogue, generation=generation)
        self.unreadable = unreadable
        self._generation = generation
        self.loaded = True

    # -- per-device memory ------------------------------------------------------------

    def recall(self, device_id: str) -> tuple[int, str | None, float] | None:
        """(stamp, ParameterKey, valid until) the device was last settled with, or None."""
        return self._memory.get(device_id)

    def remember(self, device_id: str, stamp: int, key: str | None, until: float = float("inf")) -> None:
        if self.cache_size == 0:
            return
        memory = self._memory
        if device_id not in memory and len(memory) >= self.cache_size:
            del memory[next(iter(memory))]  # the oldest entry (dicts keep insertion order)
        memory[device_id] = (stamp, key, until)

    def forget(self, device_id: str) -> None:
        self._memory.pop(device_id, None)

    @property
    def remembered(self) -> int:
        return len(self._memory)
