"""Phones behind NAT end to end (issue 15): the real server with its STUN server, simulated
phones behind an address-and-port restricted NAT (sim/nat.py), loopback sockets.

A push completes without waiting for periodic Informs (their interval is an hour): the
phones not behind NAT by HTTP, those behind NAT by UDP from the STUN server's socket, and
the report names the method per phone. A NAT that remaps phones in the middle of the push
is followed. A forged, replayed or foreign UDP request is dropped."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, cast

import pytest

from acs_security.connreq.stun_service import RECEIVE_BUFFER_BYTES
from acs_security.connreq.udp import build_udp_connection_request
from acs_security.server.app import AcsServer
from acs_security.server.config import load_config
from acs_security.sim.fleet import SimulatedFleet
from tests.e2e.woken import HARDENING, RESOLVE, boot_with_credentials, device_id
from tests.support import run_in_reactor, sleep, wait_until

pytestmark = pytest.mark.e2e
MS = "Device.ManagementServer."


def _sysctl(name: str) -> int:
    """net.core.<name> (Linux: the socket buffer default and cap, in bytes)."""
    return int(Path(f"/proc/sys/net/core/{name}").read_text())


def nat_server(reactor: Any, tmp_path: Path, db: str | None = None) -> AcsServer:
    settings = {"db": db or f"sqlite:///{tmp_path}/acs.db", "cwmp_listen": "127.0.0.1:0",
                "api_listen": "127.0.0.1:0", "cpe_auth": False, "cr_session_wait": 10,
                "stun_listen": "127.0.0.1:0", "max_connections_per_ip": 0}
    server = AcsServer(config=load_config(environ={}, overrides=settings), reactor=reactor)
    server.start()
    return server


def nat_fleet(reactor: Any, server: AcsServer, phones: int, rate: float, **kwargs: Any) -> SimulatedFleet:
    assert server.stun is not None and server.stun.address is not None
    url = f"http://acs.example.net:{server.address('cwmp').port}/cwmp"
    options: dict[str, Any] = dict(
        phones=phones, resolve=RESOLVE, inform_interval=3600, boot_ramp_s=2.0, seed=11, cr_delay=(0.02, 0.1),
        retry_scale=0.02, cr_min_interval=0.2, nat=rate, stun_server=f"127.0.0.1:{server.stun.address[1]}",
        stun_keepalive=5)
    options.update(kwargs)
    return SimulatedFleet(reactor, url, **options)


async def boot_and_register(reactor: Any, server: AcsServer, fleet: SimulatedFleet) -> None:
    """Boot the fleet with the phones' credentials and wait until the ACS knows where each
    phone behind NAT is."""
    await boot_with_credentials(reactor, server, fleet)
    natted = fleet.nat_phones

    def learnt() -> bool:
        if not all(p.lookup(MS + "UDPConnectionRequestAddress") == fleet.nat.public_address(p) for p in natted):
            return False
        targets = {d.device_id: d for d in server.store.target_devices()}
        return all(targets[device_id(p)].udp_connection_request_address == fleet.nat.public_address(p)
                   for p in natted)

    try:
        await wait_until(reactor, learnt, timeout=60, interval=0.5, what="NAT bindings learnt")
    except AssertionError:
        targets = {d.device_id: d for d in server.store.target_devices()}
        phone_side = sum(1 for p in natted
                         if p.lookup(MS + "UDPConnectionRequestAddress") == fleet.nat.public_address(p))
        acs_side = sum(1 for p in natted
                       if targets[device_id(p)].udp_connection_request_address == fleet.nat.public_address(p))
        unknown = [p.serial for p in natted
                   if p.lookup(MS + "UDPConnectionRequestAddress") != fleet.nat.public_address(p)]
        stun = server.stun
        raise AssertionError(f"of {len(natted)} phones behind NAT, {phone_side} know their mapping, the ACS "
                             f"knows {acs_side}; not known: {unknown[:5]}...; NAT {dict(fleet.nat.stats)}; STUN "
                             f"answered {stun.bindings_seen if stun else None}, dropped "
                             f"{stun.protocol.dropped if stun else None}, refused "
                             f"{dict(stun.protocol.refused) if stun else None}") from None


def test_push_to_1000_phones_60_percent_behind_nat_with_rebinding_mid_push(tmp_path: Path) -> None:
    nat_push(tmp_path, 1000, moved_count=30)


def test_push_behind_nat_on_postgresql(tmp_path: Path, pg_db: str) -> None:
    nat_push(tmp_path, 300, moved_count=10, db=pg_db)


def nat_push(tmp_path: Path, count: int, *, moved_count: int, db: str | None = None) -> None:
    async def go(reactor: Any) -> Any:
        server = nat_server(reactor, tmp_path, db)
        await server.start_engine()
        fleet = nat_fleet(reactor, server, count, 0.6)
        # The phones report a new UDP address at most every 10 minutes: after the mid-push
        # rebinding the ACS must follow the STUN server's BINDING-CHANGE, not wait for their
        # VALUE CHANGE.
        fleet.nat.notify_hold = 600
        try:
            await boot_and_register(reactor, server, fleet)
            assert server.service is not None and server.engine is not None
            periodic_before = sum(1 for p in fleet.phones if p.next_periodic <= reactor.seconds())
            started = reactor.seconds()
            result = await server.service.submit_job({"policy": HARDENING.read_text(), "select": "all"})
            job = server.engine.jobs[result["id"]]
            # The NAT remaps 30 phones while the push runs: new public ports, old ones closed.
            moved = fleet.nat_phones[-moved_count:]
            old = {p.serial: fleet.nat.public_address(p) for p in moved}
            await sleep(reactor, 0.3)
            for phone in moved:
                await fleet.nat.rebind(phone)
            await wait_until(reactor, lambda: job.state == "completed", timeout=240, interval=0.2, what="push")
            elapsed = reactor.seconds() - started
            await server.engine.flush()
            assert server.stun is not None
            await server.stun.flush()  # the STUN server writes its bindings in batches, each second
            report = await server.service.job_report(job.id)
            new = {p.serial: fleet.nat.public_address(p) for p in moved}
            targets = {d.device_id: d for d in server.store.target_devices()}
            assert all(targets[device_id(p)].udp_connection_request_address == new[p.serial] for p in moved)
            assert all(p.lookup(MS + "UDPConnectionRequestAddress") == new[p.serial] for p in moved)
            return report, fleet, old, new, periodic_before, elapsed, dict(fleet.nat.stats)
        finally:
            await fleet.stop()
            await server.stop()

    report, fleet, old, new, periodic_before, elapsed, nat_stats = run_in_reactor(go, timeout=420, many_sockets=True)
    natted = {p.serial for p in fleet.nat_phones}
    assert 0.54 * count <= len(natted) <= 0.66 * count, len(natted)  # 60 %, drawn per phone
    assert periodic_before == 0  # no periodic Inform was due: every phone was woken
    devices = {d["serial_number"]: d for d in report["devices"]}
    assert report["job"]["state"] == "completed"
    assert all(d["state"] in ("applied", "applied_pending_reboot") for d in devices.values()), \
        {s: (d["state"], d["detail"]) for s, d in devices.items() if not d["state"].startswith("applied")}
    for serial, d in devices.items():
        assert d["reached_by"] == ("udp" if serial in natted else "http"), (serial, d)
    # Every phone applied the job exactly once, and the rebinding was followed.
    key = report["job"]["parameter_key"]
    assert [p.spv_by_key[key] for p in fleet.phones] == [1] * count
    assert all(old[s] != new[s] for s in old) and nat_stats["rebinds"] == moved_count
    assert nat_stats["notifications_held"] == moved_count  # none of them told the ACS by an Inform
    assert fleet.stats.udp_accepted >= len(natted)
    print(f"\npush to {count} phones ({len(natted)} behind NAT, {'PostgreSQL' if db else 'SQLite'}): "
          f"{elapsed:.1f} s, {count / elapsed:.0f} phones/s; NAT {nat_stats}")


def test_forged_replayed_and_foreign_udp_requests_are_dropped(tmp_path: Path) -> None:
    async def go(reactor: Any) -> Any:
        server = nat_server(reactor, tmp_path)
        await server.start_engine()
        fleet = nat_fleet(reactor, server, 4, 1.0)
        try:
            await boot_and_register(reactor, server, fleet)
            phone = fleet.nat_phones[0]
            username, password = phone.cr_credentials()
            host, port = fleet.nat.public_address(phone).split(":")
            stun = server.stun
            assert stun is not None
            now = int(reactor.seconds())

            def datagram(pw: str, request_id: int) -> bytes:
                return build_udp_connection_request(f"{host}:{port}", username=username, password=pw, ts=now,
                                                    request_id=request_id, cnonce="c0ffee")

            sent_from_stun = stun.protocol.transport
            assert sent_from_stun is not None
            # A burst of keep-alives larger than the kernel's default buffer would lose its tail.
            granted = cast(Any, sent_from_stun).getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            assert granted >= min(RECEIVE_BUFFER_BYTES, 2 * _sysctl("rmem_max")), granted
            assert granted > _sysctl("rmem_default"), granted
            assert stun.kernel_drops() == 0  # read from /proc/net/udp by the socket's inode
            before = fleet.stats.udp_accepted
            # Forged: signed with a guessed password, from the STUN server's own socket.
            sent_from_stun.write(datagram("guess", 1), (host, int(port)))
            # Genuine, then replayed.
            sent_from_stun.write(datagram(password, 2), (host, int(port)))
            await sleep(reactor, 0.3)
            sent_from_stun.write(datagram(password, 2), (host, int(port)))
            # Genuine but from another port: the NAT has no mapping for it.
            from twisted.internet.protocol import DatagramProtocol

            other = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
            other.write(datagram(password, 3), (host, int(port)))
            await sleep(reactor, 0.5)
            other.stopListening()
            return fleet.stats.udp_accepted - before, dict(fleet.stats.udp_ignored), dict(fleet.nat.stats)
        finally:
            await fleet.stop()
            await server.stop()

    accepted, ignored, nat_stats = run_in_reactor(go, timeout=120)
    assert accepted == 1
    assert ignored.get("bad_signature") == 1 and ignored.get("replayed_id") == 1
    assert nat_stats.get("filtered", 0) >= 1
