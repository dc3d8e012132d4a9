"""The kernel's per-socket UDP drop count, read from /proc/net/udp-style text (pure)."""

from __future__ import annotations

from acs_security.connreq.udp_drops import drops_of_inode

HEADER = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
          "inode ref pointer drops\n")
UDP = HEADER + (
    " 6030: 00000000:0D96 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3087107 2 "
    "000000000a4974fb 0\n"
    " 9903: 0100007F:DCB7 00000000:0000 07 00000000:00030000 00:00000000 00000000     0        0 3087130 2 "
    "0000000071afa138 344\n")
UDP6 = HEADER + (
    "  512: 00000000000000000000000000000000:0D96 00000000000000000000000000000000:0000 07 00000000:00000000 "
    "00:00000000 00000000     0        0 4100001 2 00000000deadbeef 17\n")


def test_the_drops_of_the_socket_named_by_its_inode() -> None:
    assert drops_of_inode([UDP, UDP6], 3087130) == 344
    assert drops_of_inode([UDP, UDP6], 3087107) == 0
    assert drops_of_inode([UDP, UDP6], 4100001) == 17  # an IPv6 socket


def test_no_line_or_a_line_in_another_format_says_nothing() -> None:
    assert drops_of_inode([UDP, UDP6], 1) is None
    assert drops_of_inode([], 3087130) is None
    assert drops_of_inode([HEADER + " 1: 0100007F:DCB7 3087130 x\n"], 3087130) is None
    assert drops_of_inode([UDP.replace(" 344\n", " n/a\n")], 3087130) is None
