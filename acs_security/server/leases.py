"""One CWMP session per device across every node on one database.

TR-069 section 3.7.1.5 lets the ACS refuse a session; the ACS refuses a second session of a
device already in one, so that two sessions never race to change the same phone. In one
process SessionRegistry.claim_device enforces that. With several nodes behind a load
balancer a device may reach any node, so the node that opens a session also takes a lease
on the device in the store (store/leases.py): the lease lasts ``lease`` seconds, is renewed
while the session's messages come (at most every ``lease / 3`` seconds, so a busy session
costs one store write per third of a lease, not one per message), and is dropped when the
session ends or times out. A node that dies leaves leases behind; they lapse after
``lease`` seconds and another node takes them.

A live session's lease is at most ``lease / 3 + session_timeout`` seconds old (renewed
only after a third of it, and a session silent for session_timeout ends), so ``lease`` must
exceed ``1.5 * session_timeout``; the defaults (90, 30) leave 30 s. Lease times come from
the reactor clock and another node compares them with its own clock, so the nodes' clocks
must agree to well within that margin (NTP does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from acs_security.display import label_of
from acs_security.server.sessions import SessionContext
from acs_security.store.errors import StoreUnavailable

__all__ = ["DeviceLeases"]

log = Logger(namespace="acs_security.leases")


class DeviceLeases:
    """A node's device session leases. ``store`` is a DeferredStore (anything whose
    ``call(method, *args)`` returns a Deferred of the Store method's result)."""

    def __init__(self, store: Any, clock: IReactorTime, node: str, lease: float) -> None:
        """Raises ValueError for an empty node name or a lease that is not positive."""
        if not isinstance(node, str) or not node or "\x00" in node:
            raise ValueError("node must be a non-empty string without NUL")
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        self._store = store
        self._clock = clock
        self._node = node
        self._lease = float(lease)

    def __repr__(self) -> str:
        return f"DeviceLeases(node={self._node!r}, lease={self._lease})"

    @property
    def node(self) -> str:
        return self._node

    @property
    def lease(self) -> float:
        return self._lease

    def _until(self, now: float) -> datetime:
        return datetime.fromtimestamp(now + self._lease, UTC)

    async def claim(self, ctx: SessionContext) -> str | None:
        """Take the lease on ``ctx.device_id`` for this session: None when taken, else the
        name of the node whose session holds the device. Raises what the store raises.

        Call it after SessionRegistry.claim_device gave this session the device: then no
        other live session of this node holds it, and a lease of this node's name found in
        the store is a leftover (a session that ended while its release was still on the
        way, one the registry superseded, or this node's previous process when node_id is
        set): it is dropped and the claim made again, instead of refusing the device until
        the leftover lapses. Node names must be unique among live nodes (the default,
        host:pid, is)."""
        if ctx.device_id is None:
            raise ValueError("the session has no device yet")
        now = self._clock.seconds()
        holder = await self._store.call("claim_device_session", ctx.device_id, self._node, ctx.token,
                                        self._until(now))
        if holder == self._node:
            lease = await self._store.call("device_session", ctx.device_id)
            if lease is not None and lease[0] == self._node and lease[1] != ctx.token:
                # By token: should another node have taken the device meanwhile, its lease stays.
                await self._store.call("release_device_session", ctx.device_id, lease[1])
            now = self._clock.seconds()
            holder = await self._store.call("claim_device_session", ctx.device_id, self._node, ctx.token,
                                            self._until(now))
        if holder is None:
            ctx.lease_at = now
        return holder

    def renew(self, ctx: SessionContext) -> None:
        """A message of the session arrived: renew its lease when more than a third of
        the lease has passed since it was taken or last renewed. Fire and forget: a
        failure is logged; the session goes on."""
        if ctx.lease_at is None or ctx.device_id is None:
            return
        now = self._clock.seconds()
        if now - ctx.lease_at <= self._lease / 3:
            return
        ctx.lease_at = now
        device_id = ctx.device_id

        def renewed(held: bool) -> None:
            if not held:
                # Only after the store was unreachable for most of a lease: another node
                # may have taken the device; this session ends at its next timeout at most.
                log.warn("session lease on {label} lost: it lapsed before it was renewed",
                         label=label_of(device_id), device=device_id)

        def failed(failure: Failure) -> None:
            _log_failure(failure, "cannot renew the session lease on {label}: {error}", device_id)

        self._store.call("renew_device_session", device_id, ctx.token, self._until(now)).addCallbacks(
            renewed, failed)

    def release(self, ctx: SessionContext) -> Deferred[None] | None:
        """The session ended: drop its lease, if it took one (None when it took none). The
        Deferred fires once the release is committed, or once its failure is logged (the
        lease then lapses on its own); it never errbacks. A session that ends normally waits
        for it before its 204, so that the device's next session, on any node, finds the
        lease free."""
        if ctx.lease_at is None or ctx.device_id is None:
            return None
        ctx.lease_at = None
        device_id = ctx.device_id

        def failed(failure: Failure) -> None:
            _log_failure(failure, "cannot release the session lease on {label}: {error}", device_id)

        d: Deferred[None] = self._store.call("release_device_session", device_id, ctx.token)
        return d.addCallbacks(lambda _: None, failed)

    def release_all(self) -> Deferred[int]:
        """Drop every lease of this node (clean shutdown, before the store closes); fires
        with the number dropped, or errbacks with the store's error."""
        return self._store.call("release_node_sessions", self._node)


def _log_failure(failure: Failure, text: str, device_id: str) -> None:
    # During a database outage every session's lease call fails: the outage is logged once
    # (server/outages.py), so these are debug lines then; other failures stay warnings.
    emit = log.debug if failure.check(StoreUnavailable) else log.warn
    emit(text, device=device_id, label=label_of(device_id), error=failure.getErrorMessage())
