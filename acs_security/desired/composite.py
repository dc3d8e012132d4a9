"""One provisioner made of several, asked in order within each session (decision 0009).

The CWMP endpoint asks one :class:`~acs_security.server.provisioning.Provisioner`. The
server's is this composite: the job engine first (a one-off push wins the session), then
the audit jobs' side, then the assignments'. Each part keeps its own per-session state (the
composite swaps ``ctx.provisioner_state`` around each call, so parts written for a session
of their own need no change), answers go to the part that sent the request, and every
other part that wants to know is shown the exchange (``observe``): the assignments' side
learns what a job set in this session, and that an audit read values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger

__all__ = ["CompositeProvisioner"]

log = Logger(namespace="acs_security.desired")


class _Shared:
    __slots__ = ("states", "current", "sender")

    def __init__(self, n: int) -> None:
        self.states: list[Any] = [None] * n
        self.current = 0
        self.sender: int | None = None


class CompositeProvisioner:
    """``parts`` are provisioners (session_started, next_request, handle_response,
    session_ended; optionally ``observe(ctx, request, response)``), asked in order."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("a composite provisioner needs at least one part")
        self.parts = tuple(parts)

    def _shared(self, ctx: Any) -> _Shared:
        shared = ctx.provisioner_state
        if not isinstance(shared, _Shared):
            shared = ctx.provisioner_state = _Shared(len(self.parts))
        return shared

    async def _call(self, ctx: Any, shared: _Shared, i: int, method: str, *args: Any) -> Any:
        ctx.provisioner_state = shared.states[i]
        try:
            return await getattr(self.parts[i], method)(ctx, *args)
        finally:
            shared.states[i] = ctx.provisioner_state
            ctx.provisioner_state = shared

    def inform_reads(self, device_id: str) -> tuple[str, ...]:
        """The store reads the parts want with the Inform (server/provisioning.py), once each."""
        reads: dict[str, None] = {}
        for part in self.parts:
            hook = getattr(part, "inform_reads", None)
            if hook is not None:
                reads.update(dict.fromkeys(hook(device_id)))
        return tuple(reads)

    async def session_started(self, ctx: Any) -> None:
        shared = _Shared(len(self.parts))
        ctx.provisioner_state = shared
        for i in range(len(self.parts)):
            await self._call(ctx, shared, i, "session_started")

    async def next_request(self, ctx: Any) -> Any | None:
        shared = self._shared(ctx)
        while shared.current < len(self.parts):
            request = await self._call(ctx, shared, shared.current, "next_request")
            if request is not None:
                shared.sender = shared.current
                return request
            shared.current += 1  # this part is done for the session: the next one's turn
        return None

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        shared = self._shared(ctx)
        sender = shared.sender
        shared.sender = None
        if sender is None:
            return
        await self._call(ctx, shared, sender, "handle_response", request, response)
        for i, part in enumerate(self.parts):
            observe = getattr(part, "observe", None)
            if i == sender or observe is None:
                continue
            ctx.provisioner_state = shared.states[i]
            try:
                observe(ctx, request, response)
            finally:
                shared.states[i] = ctx.provisioner_state
                ctx.provisioner_state = shared

    async def transfer_complete(self, ctx: Any, message: Any) -> None:
        """A TransferComplete of the session (server/provisioning.py): every part that takes
        them is told (the job engine's file transfers, fleet/transfers.py), in order."""
        shared = self._shared(ctx)
        for i, part in enumerate(self.parts):
            if getattr(part, "transfer_complete", None) is not None:
                await self._call(ctx, shared, i, "transfer_complete", message)

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        shared = ctx.provisioner_state
        if not isinstance(shared, _Shared):
            shared = _Shared(len(self.parts))
        for i in range(len(self.parts)):
            try:
                await self._call(ctx, shared, i, "session_ended", outcome)
            except Exception:  # noqa: BLE001 - one part's failure must not keep the others from cleaning up
                log.failure("provisioner part {part} failed at session end", part=type(self.parts[i]).__name__)
        ctx.provisioner_state = None
