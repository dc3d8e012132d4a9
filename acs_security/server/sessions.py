"""Book-keeping of CWMP sessions in progress: by cookie, by connection, by device.

Three limits live here, because they are what keeps a server alive under a fleet:
- an idle session is dropped after ``timeout`` seconds (TR-069 section 3.7.1.5 lets the ACS
  end a session the CPE abandoned; 30 s is the customary value) and its state released;
- one device is in at most one session at a time (a second Inform from the same device while
  its first session runs is refused with 503 + Retry-After, so two sessions never race to
  change the same phone);
- at most ``max_sessions`` sessions run at once; beyond that new sessions get 503 +
  Retry-After while sessions in progress continue (new work is shed, not old work).

The clock is an ``IReactorTime`` passed in; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from acs_security.cwmp.session import Session

__all__ = ["SessionContext", "SessionRegistry", "CapacityExceeded"]


class CapacityExceeded(Exception):
    """No room for another session; answer 503 with Retry-After."""


@dataclass(eq=False, slots=True)
class SessionContext:
    """One CWMP session as the endpoint sees it. Not shared across threads."""

    token: str
    session: Session
    started: float
    remote: str | None
    channel: Any = None
    is_tls: bool = False
    device_id: str | None = None
    authenticated_as: str | None = None
    rpcs: list[str] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    busy: bool = False
    outcome: str | None = None
    timeout_call: IDelayedCall | None = None
    # Whatever the provisioner keeps for this session (e.g. the task it is applying).
    provisioner_state: Any = None
    # The store reads the provisioner asked to run with the Inform's commit, in its store
    # hop (inform_reads, server/provisioning.py), by read name: the device as its Inform
    # left it. Dropped once the session sends a request, which could change the device.
    inform_reads: dict[str, Any] | None = None
    # Clock time this node last took or renewed the device's lease in the store
    # (server/leases.py); None while the session holds no lease.
    lease_at: float | None = None
    # How the CPE's requests after the Inform find the session: "cookie" once one carried
    # the session cookie, "connection" once one came without it (a CPE that drops cookies);
    # None before the second request.
    keyed_by: str | None = None
    # The InformResponse, which sets the cookie, was written to the connection.
    cookie_sent: bool = False
    # The connection closed while a request of the session was being handled.
    connection_lost: bool = False

    @property
    def ends_with_connection(self) -> bool:
        """Whether the session cannot go on once its connection is lost: the CPE does not
        return the cookie, or never received it. A CPE that returns the cookie may carry on
        over a new connection (TR-069 section 3.4.1), so its session waits for the timeout."""
        return self.keyed_by == "connection" or (self.keyed_by is None and not self.cookie_sent)

    @property
    def inform(self):  # type: ignore[no-untyped-def]
        return self.session.inform


class SessionRegistry:
    """Sessions by cookie token, by HTTP channel (for CPEs that drop cookies) and by device."""

    def __init__(
        self,
        clock: IReactorTime,
        *,
        timeout: float,
        max_sessions: int,
        on_expire: Callable[[SessionContext], None],
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._max = max_sessions
        self._on_expire = on_expire
        self._by_token: dict[str, SessionContext] = {}
        self._by_channel: dict[int, SessionContext] = {}
        self._by_device: dict[str, SessionContext] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    @property
    def device_ids(self) -> frozenset[str]:
        return frozenset(self._by_device)

    def find(self, token: str | None, channel: Any) -> SessionContext | None:
        """The session a request belongs to: by cookie first, else by its connection."""
        if token is not None:
            ctx = self._by_token.get(token)
            if ctx is not None:
                return ctx
        if channel is not None:
            return self._by_channel.get(id(channel))
        return None

    def open(self, ctx: SessionContext) -> None:
        """Register a new session. Raises CapacityExceeded when max_sessions are running."""
        if len(self._by_token) >= self._max:
            raise CapacityExceeded(f"{len(self._by_token)} sessions in progress")
        self._by_token[ctx.token] = ctx
        if ctx.channel is not None:
            # A new session on a connection replaces whatever the connection had before.
            previous = self._by_channel.get(id(ctx.channel))
            if previous is not None and previous is not ctx:
                self.close(previous, previous.outcome or "superseded")
            self._by_channel[id(ctx.channel)] = ctx
        self.touch(ctx)

    def claim_device(self, ctx: SessionContext, device_id: str) -> bool:
        """Tie the session to its device; False when another live session holds the device."""
        holder = self._by_device.get(device_id)
        if holder is not None and holder is not ctx:
            return False
        self._by_device[device_id] = ctx
        ctx.device_id = device_id
        return True

    def touch(self, ctx: SessionContext) -> None:
        """Restart the idle timer after every message of the session."""
        if ctx.timeout_call is not None and ctx.timeout_call.active():
            ctx.timeout_call.reset(self._timeout)
        else:
            ctx.timeout_call = self._clock.callLater(self._timeout, self._expire, ctx)

    def close(self, ctx: SessionContext, outcome: str) -> bool:
        """Release the session; True if it was still registered (so callers log it once)."""
        if self._by_token.get(ctx.token) is not ctx:
            return False
        del self._by_token[ctx.token]
        if ctx.channel is not None and self._by_channel.get(id(ctx.channel)) is ctx:
            del self._by_channel[id(ctx.channel)]
        if ctx.device_id is not None and self._by_device.get(ctx.device_id) is ctx:
            del self._by_device[ctx.device_id]
        if ctx.timeout_call is not None and ctx.timeout_call.active():
            ctx.timeout_call.cancel()
        ctx.timeout_call = None
        ctx.outcome = ctx.outcome or outcome
        return True

    def drop_channel(self, channel: Any) -> SessionContext | None:
        """The connection closed: forget the channel mapping and return the session it
        carried, if any (still registered: the caller decides whether it ends now)."""
        ctx = self._by_channel.pop(id(channel), None)
        if ctx is not None:
            ctx.channel = None
        return ctx

    def _expire(self, ctx: SessionContext) -> None:
        ctx.timeout_call = None
        if self.close(ctx, "timeout"):
            self._on_expire(ctx)

    def close_all(self, outcome: str) -> list[SessionContext]:
        closed = []
        for ctx in list(self._by_token.values()):
            if self.close(ctx, outcome):
                closed.append(ctx)
        return closed
