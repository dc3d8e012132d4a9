"""How many datagrams the kernel dropped at one UDP socket (Linux).

A UDP socket whose receive buffer is full loses what arrives next, silently: for the STUN
server that is phones' keep-alives (connreq/stun_service.py sizes the buffer). Linux counts
those drops per socket in the last column of ``/proc/net/udp`` and ``/proc/net/udp6``, keyed
by the socket's inode. Parsing is pure; :func:`socket_drops` reads the files and answers
None where there is nothing to read (another system, no such socket).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

__all__ = ["PROC_NET_UDP", "drops_of_inode", "socket_drops"]

PROC_NET_UDP = ("/proc/net/udp", "/proc/net/udp6")
_INODE, _DROPS = 9, 12  # columns of a socket's line (after "sl local_address rem_address ...")


def drops_of_inode(tables: Iterable[str], inode: int) -> int | None:
    """The drops column of the socket ``inode`` in the text of ``/proc/net/udp``-style
    tables, or None when no line names it (or the line is not in that format)."""
    wanted = str(inode)
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > _DROPS and fields[_INODE] == wanted:
                drops = fields[_DROPS]
                return int(drops) if drops.isdigit() else None
    return None


def socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped at ``sock`` since it was opened, or None when this
    system does not say (not Linux, /proc not mounted, the socket closed)."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except (OSError, ValueError):
        return None
    tables = []
    for path in PROC_NET_UDP:
        try:
            with open(path) as f:
                tables.append(f.read())
        except OSError:
            continue
    return drops_of_inode(tables, inode) if tables else None
