"""The STUN server of a node (TR-111 part 2, docs/nat.md): started with ``serve`` where
its UDP port can be bound.

On by default: a phone behind NAT is reachable between its periodic Informs only through
it, and binding a UDP port harms nothing. When the port cannot be bound (taken, or a
privileged port without the right), the node goes on without it and says so once: UDP
connection requests then leave from an ephemeral port, which an address-and-port
restricted NAT drops. ``stun_listen = "off"`` turns it off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from acs_security.connreq.stun_service import StunService
from acs_security.server.config import ServerConfig

__all__ = ["start_stun"]

log = Logger(namespace="acs_security.server")


def start_stun(config: ServerConfig, reactor: Any, store: Any, random_bytes: Callable[[int], bytes], *,
               default_login: tuple[str, str] | None = None) -> StunService | None:
    """A listening StunService, or None (off, or the port cannot be bound: logged).
    ``default_login``: the server-wide connection-request credential (cr_username and its
    password), which Binding Requests of phones without their own may be signed with."""
    endpoint = config.stun_listen
    if endpoint is None:
        log.info("STUN server off (stun_listen = off): phones behind NAT are reached by XMPP or "
                 "at their periodic Inform only")
        return None
    service = StunService(reactor, store, random_bytes=random_bytes, node=config.node,
                          public_address=_literal(config.stun_address), default_login=default_login)
    try:
        service.listen(reactor, endpoint.host, endpoint.port)
    except CannotListenError as exc:
        log.warn("STUN server not started: cannot bind UDP {endpoint} ({error}); phones behind NAT "
                 "are reached by XMPP or at their periodic Inform only. Free the port, give "
                 "stun_listen another one, or set stun_listen = off to silence this",
                 endpoint=str(endpoint), error=str(exc.socketError or exc))
        return None
    address = service.address
    log.info("STUN server (TR-111) listening on UDP {host}:{port}",
             host=address[0] if address else endpoint.host, port=address[1] if address else endpoint.port)
    return service


def _literal(address: tuple[str, int] | None) -> tuple[str, int] | None:
    """The address when its host is an IP literal (RFC 3489's SOURCE-ADDRESS carries one)."""
    if address is None:
        return None
    try:
        ipaddress.ip_address(address[0])
    except ValueError:
        return None
    return address
