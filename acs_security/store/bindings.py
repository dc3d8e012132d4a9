"""The STUN server's bindings in the store (a mixin of :class:`Store`), and the logins it
checks Binding Requests against.

TR-111 part 2: a phone behind NAT sends Binding Requests to the ACS's STUN server every
keep-alive period; their source address is the phone's public UDP address, where UDP
connection requests (TR-069 Annex G) go. Every phone of a fleet does so every few tens of
seconds, so the STUN server gathers them and writes a batch at once (connreq/stun_service.py):
``record_udp_bindings`` takes the batch in ONE transaction, one statement per table, rows in
address order (several nodes lock rows in the same order and cannot deadlock).

One row per public address: its last sight, the device when the request's USERNAME is a
device's connection-request username (or the device already known at that address), and
the STUN server that saw it (with several nodes, the UDP request must leave from the socket
the phone's NAT has a mapping for). A new address for a known device (BINDING-CHANGE, or a
different source) becomes its UDPConnectionRequestAddress at once, so a push follows a NAT
that remapped the phone before the phone's VALUE CHANGE Inform arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument
from acs_security.store.records import check_aware, check_text

__all__ = ["BindingsMixin", "UdpBindingRecord"]

_MAX_LOGINS = 1000  # usernames per lookup: one IN list, far below SQLite's variable limit


@dataclass(frozen=True, slots=True)
class UdpBindingRecord:
    """One phone's public UDP address as a Binding Request showed it."""

    address: str  # host:port, IPv6 in brackets (as UDPConnectionRequestAddress writes it)
    seen: datetime
    device_id: str | None = None
    username: str | None = None
    changed: bool = False  # BINDING-CHANGE was set
    server: str | None = None  # the STUN server (node) that saw it

    def __post_init__(self) -> None:
        check_text("address", self.address, empty=False)
        check_aware("seen", self.seen)
        for name in ("device_id", "username", "server"):
            value = getattr(self, name)
            if value is not None:
                check_text(name, value)


class BindingsMixin:
    """STUN binding methods of the Store; uses the Store's ``_read``/``_write``/``_insert``
    plumbing and ``_decode`` for passwords. Raise InvalidArgument for bad arguments,
    StoreUnavailable/StoreError when the database fails."""

    _read: Any
    _write: Any
    _insert: Any
    _decode: Any

    def connection_request_logins(self, usernames: Sequence[str]) -> dict[str, tuple[str, str]]:
        """username -> (device id, connection-request password) for the usernames that name
        exactly one device's connection-request credential (a username shared by several
        devices identifies none of them and is left out)."""
        names = sorted(set(usernames))
        if len(names) > _MAX_LOGINS:
            raise InvalidArgument(f"at most {_MAX_LOGINS} usernames per lookup")
        for name in names:
            check_text("username", name, empty=False)
        if not names:
            return {}
        c = t.connection_request_credentials.c
        with self._read("read connection-request logins") as conn:
            rows = conn.execute(sa.select(c.username, c.device_id, c.password).where(c.username.in_(names))).all()
        found: dict[str, tuple[str, str]] = {}
        shared: set[str] = set()
        for username, device_id, password in rows:
            if username in found:
                shared.add(username)
            found[username] = (device_id, self._decode("connection-request", device_id, password))
        return {k: v for k, v in found.items() if k not in shared}

    def record_udp_bindings(self, bindings: Sequence[UdpBindingRecord]) -> int:
        """Write a batch of bindings in one transaction (the latest sight of an address
        wins); returns how many devices got a new UDPConnectionRequestAddress."""
        if not bindings:
            return 0
        latest: dict[str, UdpBindingRecord] = {}
        for b in bindings:
            if not isinstance(b, UdpBindingRecord):
                raise InvalidArgument(f"record_udp_bindings takes UdpBindingRecord objects, not {type(b).__name__}")
            known = latest.get(b.address)
            if known is None or b.seen >= known.seen:
                latest[b.address] = b
        rows = [latest[a] for a in sorted(latest)]
        ub = t.udp_bindings
        ins = self._insert(ub)
        stmt = ins.on_conflict_do_update(
            index_elements=[ub.c.address],
            set_={"last_seen": ins.excluded.last_seen, "server": ins.excluded.server,
                  "username": sa.func.coalesce(ins.excluded.username, ub.c.username),
                  "device_id": sa.func.coalesce(ins.excluded.device_id, ub.c.device_id),
                  "changed_at": sa.func.coalesce(ins.excluded.changed_at, ub.c.changed_at)},
        )
        d = t.devices.c
        move = (sa.update(t.devices)
                .where(d.id == sa.bindparam("b_device"),
                       sa.or_(d.udp_connection_request_address.is_(None),
                              d.udp_connection_request_address != sa.bindparam("b_address")))
                .values(udp_connection_request_address=sa.bindparam("b_address")))
        moves = [{"b_device": b.device_id, "b_address": b.address} for b in rows if b.device_id is not None]
        with self._write("record UDP bindings") as conn:
            conn.execute(stmt, [{"address": b.address, "device_id": b.device_id, "username": b.username,
                                 "last_seen": b.seen, "changed_at": b.seen if b.changed else None,
                                 "server": b.server} for b in rows])
            moved = conn.execute(move, moves).rowcount if moves else 0
        return max(0, moved or 0)

    def purge_udp_bindings(self, before: datetime) -> int:
        """Forget addresses not seen since ``before`` (a phone that stopped its keep-alives is
        unknown anyway once its keep-alive period passed). Returns how many."""
        check_aware("before", before)
        with self._write("purge UDP bindings") as conn:
            return int(conn.execute(sa.delete(t.udp_bindings).where(t.udp_bindings.c.last_seen < before)).rowcount)
