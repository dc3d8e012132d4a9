"""A minimal classic STUN server for TR-111 part 2: learns where phones behind NAT are.

Answers each Binding Request with MAPPED-ADDRESS = the datagram's source address
(RFC 3489 section 8.1) and reports the binding to a callback, which stores it as the
phone's UDPConnectionRequestAddress. Malformed datagrams and other message types are
dropped silently: answering them would make the server a reflector.

RESPONSE-ADDRESS (answer elsewhere) and CHANGE-REQUEST (answer from another address) are
ignored on purpose: the first turns the server into a traffic amplifier (RFC 5389 drops
it for that reason), the second needs a second IP address this server does not have.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from acs_security.connreq.stun import (
    BINDING_REQUEST,
    StunError,
    binding_response,
    decode_message,
    encode_message,
)

__all__ = ["StunBinding", "StunServerProtocol"]


@dataclass(frozen=True, slots=True)
class StunBinding:
    """What one Binding Request told: who (USERNAME), where from, and the TR-111 flags."""

    username: str | None
    mapped_host: str
    mapped_port: int
    binding_change: bool
    connection_request_binding: bool

    @property
    def address(self) -> str:
        """``host:port`` as UDPConnectionRequestAddress writes it (IPv6 in brackets)."""
        if ":" in self.mapped_host:
            return f"[{self.mapped_host}]:{self.mapped_port}"
        return f"{self.mapped_host}:{self.mapped_port}"


class StunServerProtocol(DatagramProtocol):
    """Answer Binding Requests; report each one to ``on_binding``.

    ``server_address`` (this server's public ip, port), when given, is sent back as
    SOURCE-ADDRESS and CHANGED-ADDRESS, which RFC 3489 section 11.1 lists in every
    Binding Response; with one address only, CHANGED-ADDRESS repeats it.
    """

    def __init__(
        self,
        on_binding: Callable[[StunBinding], None],
        *,
        server_address: tuple[str, int] | None = None,
    ) -> None:
        self._on_binding = on_binding
        self._server_address = server_address
        self.dropped = 0  # malformed or unexpected datagrams, for a metric

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:  # noqa: N802 - Twisted's interface name
        host, port = addr[0], addr[1]
        try:
            message = decode_message(datagram)
            ipaddress.ip_address(host)
        except (StunError, ValueError):
            self.dropped += 1
            return
        if message.message_type != BINDING_REQUEST:
            self.dropped += 1
            return
        transport = self.transport
        if transport is None:  # not listening (yet): nothing can be answered
            return
        response = binding_response(
            message.transaction_id,
            (host, port),
            source=self._server_address,
            changed=self._server_address,
        )
        transport.write(encode_message(response), (host, port))
        self._on_binding(
            StunBinding(
                username=message.username,
                mapped_host=host,
                mapped_port=port,
                binding_change=message.binding_change,
                connection_request_binding=message.connection_request_binding,
            )
        )
