"""Firewall Options (cfg.xml ``Firewall_Config``): the phone's keyword grammar.

Seed 000 "Configure Your Firewall with Additional Options", Table 5: a comma-separated
list of ``NO_ICMP_PING``, ``NO_ICMP_UNREACHABLE``, ``NO_CISCO_TFTP``, ``UDP:p``,
``UDP:p:q``, ``TCP:p``, ``TCP:p:q`` (values separated by colons; ranges inclusive); at
most 5 UDP and 5 TCP port options; empty = the firewall runs with its default open ports.
Seed example: ``NO_ICMP_PING,TCP:12000,UDP:8000:8010``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIREWALL_KEYWORDS", "MAX_PORT_OPTIONS", "FirewallOptions", "FirewallError", "parse_firewall_options"]

FIREWALL_KEYWORDS: tuple[str, ...] = ("NO_ICMP_PING", "NO_ICMP_UNREACHABLE", "NO_CISCO_TFTP")
MAX_PORT_OPTIONS = 5
ALLOWED = (
    "empty, or a comma-separated list of NO_ICMP_PING, NO_ICMP_UNREACHABLE, NO_CISCO_TFTP, "
    "UDP:p, UDP:p:q, TCP:p, TCP:p:q (ports 1-65535, p <= q, at most 5 UDP and 5 TCP entries)"
)


class FirewallError(ValueError):
    """The Firewall Options value breaks the grammar; ``rule`` says how."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule
        self.allowed = ALLOWED


@dataclass(frozen=True, slots=True)
class FirewallOptions:
    """A parsed Firewall Options value: keywords and inclusive (low, high) port ranges."""

    keywords: tuple[str, ...] = ()
    udp: tuple[tuple[int, int], ...] = ()
    tcp: tuple[tuple[int, int], ...] = ()

    def render(self) -> str:
        """The canonical text the phone takes (keywords, then TCP, then UDP)."""
        items = list(self.keywords)
        for proto, ranges in (("TCP", self.tcp), ("UDP", self.udp)):
            items += [f"{proto}:{lo}" if lo == hi else f"{proto}:{lo}:{hi}" for lo, hi in ranges]
        return ",".join(items)


def _port(text: str, entry: str) -> int:
    # Digits only: no sign, no spaces, no hex; TCP and UDP ports are 1..65535.
    if not text or not text.isascii() or not text.isdigit():
        raise FirewallError(f"{entry!r}: {text!r} is not a port number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise FirewallError(f"{entry!r}: port {port} is outside 1-65535")
    return port


def parse_firewall_options(text: str) -> FirewallOptions:
    """Parse a Firewall Options value. Raises FirewallError (and nothing else) when invalid.

    Spaces around an entry are tolerated (the web page separates nothing else).
    """
    if text.strip() == "":
        return FirewallOptions()
    keywords: list[str] = []
    ports: dict[str, list[tuple[int, int]]] = {"UDP": [], "TCP": []}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            raise FirewallError("empty entry between commas")
        if entry in FIREWALL_KEYWORDS:
            keywords.append(entry)
            continue
        proto, sep, rest = entry.partition(":")
        if proto not in ports or not sep:
            upper = entry.upper()
            if upper in FIREWALL_KEYWORDS or upper.split(":")[0] in ports:
                raise FirewallError(f"{entry!r}: keywords are upper case ({upper})")
            raise FirewallError(f"{entry!r} is no firewall option")
        values = rest.split(":")
        if len(values) > 2:
            raise FirewallError(f"{entry!r}: at most a port range {proto}:low:high")
        low = _port(values[0], entry)
        high = _port(values[1], entry) if len(values) == 2 else low
        if low > high:
            raise FirewallError(f"{entry!r}: range start {low} is above its end {high}")
        ports[proto].append((low, high))
        if len(ports[proto]) > MAX_PORT_OPTIONS:
            raise FirewallError(f"more than {MAX_PORT_OPTIONS} {proto} port options")
    return FirewallOptions(tuple(keywords), tuple(ports["UDP"]), tuple(ports["TCP"]))
