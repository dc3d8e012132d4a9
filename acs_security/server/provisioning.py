"""The seam between the CWMP endpoint and whatever decides what to send to a device.

The endpoint owns the protocol (sessions, authentication, the registry); a
:class:`Provisioner` owns the work: after the Inform it is asked, each time the CPE is
ready, for the next ACS request, and it is told each response or fault. The fleet engine
is a provisioner; the default one sends nothing, so a periodic Inform ends with
Inform -> InformResponse -> empty POST -> 204.

Optionally a provisioner has ``session_refused(device_id)``, called when a device's
session is refused with 503 because the store is unavailable (the fleet engine then
requests the device again: fleet/session_side.py).

Optionally a provisioner has ``inform_reads(device_id) -> tuple[str, ...]``, asked before
the Inform is recorded: the store reads (store/deferred.py INFORM_READS, e.g. the device's
stored values for the plan of a push) to run in the same store hop as the Inform's commit;
their results are in ``ctx.inform_reads``, so that the session needs no store call for them.
"""

from __future__ import annotations

from typing import Any, Protocol

from acs_security.server.sessions import SessionContext

__all__ = ["Provisioner", "NullProvisioner"]


class Provisioner(Protocol):
    async def session_started(self, ctx: SessionContext) -> None:
        """The Inform was authenticated and recorded; ``ctx.inform`` and ``ctx.device_id`` are set."""

    async def next_request(self, ctx: SessionContext) -> Any | None:
        """The next ACS->CPE message for this session, or None to end it."""

    async def handle_response(self, ctx: SessionContext, request: Any, response: Any) -> None:
        """The CPE answered ``request`` with ``response`` (a response message or a Fault)."""

    async def session_ended(self, ctx: SessionContext, outcome: str) -> None:
        """The session is over: ``outcome`` is done, timeout, error, refused or disconnected."""

    # Optional: ``async def transfer_complete(ctx, message)`` is called (when present) with
    # each TransferComplete the CPE sends, after it is recorded and before it is answered.


class NullProvisioner:
    """Sends nothing: every session is Inform, InformResponse, empty POST, 204."""

    async def session_started(self, ctx: SessionContext) -> None:
        return None

    async def next_request(self, ctx: SessionContext) -> Any | None:
        return None

    async def handle_response(self, ctx: SessionContext, request: Any, response: Any) -> None:
        return None

    async def session_ended(self, ctx: SessionContext, outcome: str) -> None:
        return None
