"""Firewall Options (seed 000 Table 5): examples, limits, and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_security.mapping import ValidationError, parse_firewall_options, validate_value
from acs_security.mapping.firewall import FirewallError, FirewallOptions


def test_seed_example() -> None:
    options = parse_firewall_options("NO_ICMP_PING,TCP:12000,UDP:8000:8010")
    assert options == FirewallOptions(("NO_ICMP_PING",), udp=((8000, 8010),), tcp=((12000, 12000),))
    validate_value("Firewall_Config", "NO_ICMP_PING")  # seed 000 cfg.xml example
    validate_value("Firewall_Config", "")


def test_five_udp_and_five_tcp_entries_are_the_limit() -> None:
    five = ",".join(f"UDP:{p}" for p in range(1, 6)) + "," + ",".join(f"TCP:{p}:{p + 1}" for p in range(10, 15))
    assert len(parse_firewall_options(five).udp) == 5
    with pytest.raises(FirewallError, match="more than 5 UDP"):
        parse_firewall_options(five + ",UDP:9")
    with pytest.raises(FirewallError, match="more than 5 TCP"):
        parse_firewall_options(five + ",TCP:9")


@pytest.mark.parametrize(
    "value, rule",
    [
        ("NO_ICMP_PONG", "no firewall option"),
        ("no_icmp_ping", "upper case"),
        ("udp:80", "upper case"),
        ("UDP:0", "outside 1-65535"),
        ("TCP:65536", "outside 1-65535"),
        ("UDP:8010:8000", "range start 8010 is above its end 8000"),
        ("UDP:1:2:3", "at most a port range"),
        ("UDP:", "not a port number"),
        ("UDP:-1", "not a port number"),
        ("TCP:80,,UDP:53", "empty entry"),
        ("SCTP:80", "no firewall option"),
    ],
)
def test_invalid(value: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_value("Firewall_Config", value)
    assert rule in info.value.rule
    assert info.value.path == "Device.X_CISCO_SecuritySettings.FirewallOptions"
    assert "NO_ICMP_PING" in info.value.allowed


PORT = st.integers(1, 65535)
RANGE = st.tuples(PORT, PORT).map(lambda t: (min(t), max(t)))
OPTIONS = st.builds(
    FirewallOptions,
    st.lists(st.sampled_from(["NO_ICMP_PING", "NO_ICMP_UNREACHABLE", "NO_CISCO_TFTP"]), max_size=3).map(tuple),
    st.lists(RANGE, max_size=5).map(tuple),
    st.lists(RANGE, max_size=5).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(OPTIONS)
def test_rendered_options_parse_back(options: FirewallOptions) -> None:
    assert parse_firewall_options(options.render()) == options


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("UDPTC:,0123456789 NO_ICMPINGx-")), max_size=40))
def test_any_text_is_a_parse_or_an_error(text: str) -> None:
    try:
        options = parse_firewall_options(text)
    except FirewallError as exc:
        assert exc.rule
    else:
        assert len(options.udp) <= 5 and len(options.tcp) <= 5
        assert all(1 <= lo <= hi <= 65535 for lo, hi in options.udp + options.tcp)
