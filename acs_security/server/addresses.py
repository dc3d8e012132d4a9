"""Client addresses behind proxies: trusted proxies, X-Forwarded-For, the per-address key.

Pure: strings in, strings out; no Twisted, no sockets.

A phone's address matters for the device registry (remote_address), for telling a phone
behind NAT from one that is not, for the per-address connection cap and for the logs. Behind
an HTTP proxy every connection comes from the proxy, so the proxy says who the client is, in
``X-Forwarded-For`` (or in a PROXY protocol header, server/proxy_protocol.py). Anybody can
write that header, so it is believed only from the operator's own proxies
(``trusted_proxies``), and only as far as the chain of trusted hops goes: the header is read
from the right (the entry the nearest proxy added) and the first address that is not a
trusted proxy is the client. An entry a client forged itself sits to the left of the one the
trusted proxy appended, so it is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "connection_key", "forwarded_client", "limit_key", "normalize"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 addresses are counted per /64 by the per-address cap: one subscriber or site gets a
#: /64 (RFC 6177), within which a client picks as many addresses as it likes (RFC 8981).
IPV6_LIMIT_PREFIX = 64


def _address(text: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d (RFC 4291 2.5.5.2).
            return addr.ipv4_mapped
        if addr.scope_id:
            return ipaddress.IPv6Address(str(addr).split("%", 1)[0])
    return addr


def normalize(text: str) -> str | None:
    """``text`` as the canonical form of an IP address (IPv4-mapped IPv6 as IPv4), or None
    when it is not one."""
    addr = _address(text)
    return str(addr) if addr is not None else None


class TrustedProxies:
    """The operator's proxies: addresses and CIDR networks (``trusted_proxies``)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        """Raises ValueError naming every entry that is neither an address nor a network."""
        networks: list[IPNetwork] = []
        bad: list[str] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                bad.append(entry)
        if bad:
            raise ValueError("not an IP address or network: " + ", ".join(repr(b) for b in bad))
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self._networks]!r})"

    def __contains__(self, host: object) -> bool:
        if not self._networks or not isinstance(host, str):
            return False
        addr = _address(host)
        return addr is not None and self.holds(addr)

    def holds(self, addr: IPAddress) -> bool:
        return any(addr in net for net in self._networks)


def _hop(entry: str) -> str | None:
    """One X-Forwarded-For entry as an address: ``a.b.c.d``, ``a.b.c.d:port``, an IPv6
    address or ``[v6]:port``; None for anything else (``unknown``, obfuscated names)."""
    text = entry.strip()
    port = ""
    if text.startswith("["):
        text, sep, port = text[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            return None
        port = port[1:]
    elif text.count(":") == 1:
        text, port = text.split(":", 1)
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None
    return normalize(text)


def forwarded_client(values: Sequence[str], peer: str, trusted: TrustedProxies) -> str:
    """The client's address given the ``X-Forwarded-For`` header ``values`` (every field
    line, in order) of a request from ``peer``.

    ``peer`` itself when it is not a trusted proxy or the header is absent. Otherwise the
    entries are read from the right: each trusted proxy passes on to the entry before it, and
    the first untrusted address is the client. A malformed entry stops the walk at the last
    address reached (a trusted proxy); when every entry is trusted, the leftmost is taken.
    """
    if peer not in trusted:
        return peer
    client = peer
    hops = [part for value in values for part in value.split(",")]
    for entry in reversed(hops):
        if not entry.strip():
            continue
        addr = _hop(entry)
        if addr is None:
            return client
        client = addr
        if addr not in trusted:
            return addr
    return client


def limit_key(host: str) -> str:
    """What the per-address connection cap counts ``host`` under: the IPv4 address, or the
    IPv6 address's /64; a host that is not an address counts as itself."""
    addr = _address(host)
    if addr is None:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_LIMIT_PREFIX), strict=False))
    return str(addr)


def connection_key(host: str, trusted: TrustedProxies) -> str | None:
    """:func:`limit_key` of a connection's client ``host``, or None when it is not counted
    per address: a trusted proxy (its requests name the clients) or not an IP address."""
    if not trusted and "." in host and ":" not in host:
        # An IPv4 address as the kernel (or the PROXY parser) writes it is canonical already;
        # this is every connection of a node without proxies, so it skips the parsing.
        return host
    addr = _address(host)
    if addr is None or (trusted and trusted.holds(addr)):
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_LIMIT_PREFIX), strict=False))
    return str(addr)
