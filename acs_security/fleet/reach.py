"""How the job engine asks one phone to call in: the choice of a method, and sending it.

The choice (:func:`choose_method`) is pure: the device as the store knows it, the time, and
which senders this node has. TR-069 section 3.2.2 and TR-111 part 2 give the order an
operator of phones behind NAT expects:

1. HTTP to the ConnectionRequestURL, when the phone is not behind NAT: it did not report
   NATDetected true (TR-181 Device.ManagementServer.NATDetected) and its URL's host is the
   address its last Inform came from (a phone behind NAT reports a private address the ACS
   cannot reach; a URL naming a host rather than an address is taken as reachable);
2. UDP (Annex G) to the address the STUN server saw it at, while that binding is fresh:
   seen within the phone's keep-alive period (STUNMaximumKeepAlivePeriod, else
   STUNMinimumKeepAlivePeriod, else the server's default) plus a few seconds of network
   delay; an older binding may be gone from the NAT and is treated as unknown;
3. XMPP (Annex K) to its Jabber ID, when this node has an XMPP connection;
4. nothing: the phone is reached at its next periodic Inform.

:func:`send_wake` then sends the chosen request and says how it went (Twisted-free: the
requesters return awaitables).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from acs_security.connreq.methods import ReachMethod, XmppRequester
from acs_security.store.jobrecords import TargetDevice

__all__ = ["NETWORK_GRACE", "ReachChoice", "WakeOutcome", "behind_nat", "binding_fresh", "choose_method",
           "send_wake"]

#: Seconds added to a keep-alive period before a binding counts as stale: the Binding
#: Request's trip and the batch that records it.
NETWORK_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class ReachChoice:
    """The method and where it goes (URL, ip:port or JID); ``why`` says why the better
    methods were passed over (shown in the task's detail when nothing can be sent)."""

    method: ReachMethod
    target: str | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class WakeOutcome:
    """What sending a request came to. ``final``: retrying cannot help (the phone wants a
    credential the ACS does not have); the task then waits for the periodic Inform."""

    ok: bool
    detail: str = ""
    final: bool = False


def _url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def behind_nat(device: TargetDevice) -> bool:
    """The phone said so (NATDetected), or its ConnectionRequestURL names an IP address
    other than the one its last Inform came from."""
    if device.nat_detected:
        return True
    url = device.connection_request_url
    if not url or not device.remote_address:
        return False
    host = _url_host(url)
    if host is None:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: whatever it resolves to, the ACS may reach it
    return not _same_address(host, device.remote_address)


def binding_fresh(device: TargetDevice, now: float, default_keepalive: float) -> bool:
    """The STUN server saw the phone's UDP address within its keep-alive period."""
    if not device.udp_connection_request_address or device.udp_seen is None:
        return False
    period = float(device.keepalive_s) if device.keepalive_s else default_keepalive
    return now - device.udp_seen <= period + NETWORK_GRACE


def choose_method(device: TargetDevice, *, now: float, http: bool, udp: bool, xmpp: bool,
                  has_credential: bool = True, default_keepalive: float = 120.0) -> ReachChoice:
    """The method for ``device`` (see the module's docstring). ``http``/``udp``/``xmpp``:
    whether this node can send that kind. UDP and XMPP carry the connection-request
    credential (the Annex G signature, the Annex K IQ), so without one only HTTP remains
    (TR-069 lets a phone take it unauthenticated)."""
    passed: list[str] = []
    url = device.connection_request_url
    if url and http:
        if not behind_nat(device):
            return ReachChoice(ReachMethod.HTTP, url)
        passed.append("behind NAT")
    elif not url:
        passed.append("no ConnectionRequestURL")
    if udp and has_credential:
        if binding_fresh(device, now, default_keepalive):
            return ReachChoice(ReachMethod.UDP, device.udp_connection_request_address)
        if device.udp_connection_request_address:
            passed.append("no fresh STUN binding")
        else:
            passed.append("no STUN binding")
    if xmpp and has_credential and device.xmpp_jid:
        return ReachChoice(ReachMethod.XMPP, device.xmpp_jid)
    if not has_credential and (udp or xmpp):
        passed.append("no connection-request credential for UDP or XMPP")
    return ReachChoice(ReachMethod.PERIODIC, None, ", ".join(passed) or "no way to send a connection request")


async def send_wake(choice: ReachChoice, creds: tuple[str, str] | None, *, http: Any = None, udp: Any = None,
                    xmpp: XmppRequester | None = None) -> WakeOutcome:
    """Send the chosen request. Never raises for what the network or the phone did."""
    username, password = creds if creds is not None else (None, None)
    target = choice.target or ""
    if choice.method is ReachMethod.HTTP and http is not None:
        result = await http.request(target, username, password)
        kind = getattr(result.kind, "value", str(result.kind))
        detail = f"{kind}: {result.detail}".strip(": ")
        if kind == "needs_credential":
            return WakeOutcome(False, "needs a connection-request credential", final=True)
        return WakeOutcome(bool(result.ok), detail)
    if username is None or password is None:
        return WakeOutcome(False, "no connection-request credential for this device")
    if choice.method is ReachMethod.UDP and udp is not None:
        try:
            sent = await udp.send(target, username, password)
        except ValueError as exc:  # an address the store holds but that is not ip:port
            return WakeOutcome(False, f"udp: {exc}")
        return WakeOutcome(bool(sent.ok), "" if sent.ok else f"udp: {sent.error}")
    if choice.method is ReachMethod.XMPP and xmpp is not None:
        woke = await xmpp.request(target, username, password)
        return WakeOutcome(woke.ok, "" if woke.ok else f"xmpp: {woke.detail}")
    return WakeOutcome(False, "no way to send a connection request")
