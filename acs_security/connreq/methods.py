"""The ways the ACS can ask a phone to call in, and the contract of each sender (pure).

TR-069 gives three: the HTTP connection request to the phone's ConnectionRequestURL
(section 3.2.2), a UDP datagram to the address a phone behind NAT learned with STUN
(Annex G, TR-111 part 2), and an XMPP IQ to the phone's Jabber ID (Annex K). When none
can reach it, the ACS waits for the phone's periodic Inform. The job engine chooses one
per phone; its reports name the method that reached the phone.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ReachMethod", "WakeResult", "XmppRequester"]


class ReachMethod(enum.Enum):
    """How a phone was (or is to be) reached; the value is what reports show."""

    HTTP = "http"
    UDP = "udp"
    XMPP = "xmpp"
    PERIODIC = "periodic"  # nothing sent: the phone's own periodic Inform


@dataclass(frozen=True, slots=True)
class WakeResult:
    """What one XMPP connection request came to: ``ok`` when the phone acknowledged the
    IQ (Annex K section K.2.2: an IQ result), else ``detail`` says why (an IQ error's
    condition, a timeout, no XMPP connection); never a credential."""

    ok: bool
    detail: str = ""


class XmppRequester(Protocol):
    """Sends one Annex K connection request: an IQ ``connectionRequest`` carrying the phone's
    connection-request username and password to the phone's JID
    (``Device.ManagementServer.ConnReqJabberID``)."""

    def request(self, jid: str, username: str, password: str) -> Awaitable[WakeResult]: ...
