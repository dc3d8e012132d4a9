"""The project's TCP balancer in its own process, for figure 6 with ``--balancer tcp``: the
figure as measured before it ran through real HAProxy, kept to compare the two
(acs_security/sim/balancer.py says why it is no part of the deploy story).

    python -m bench.lb --listen 127.0.0.1:PORT --backend 127.0.0.1:P1 [--backend ...] --stats FILE

Prints ``listening PORT`` once it accepts. Writes its counters as JSON to ``--stats`` on
SIGUSR1 (with ``seq`` counting the writes, so the harness can wait for a fresh one) and once
more when it stops (SIGTERM/SIGINT). Its own process so that its CPU is measured apart from
the nodes' and the simulator's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

from twisted.internet.address import IPv4Address

from acs_security.sim.balancer import TcpBalancer


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=_endpoint, required=True, metavar="HOST:PORT")
    p.add_argument("--backend", type=_endpoint, action="append", required=True, metavar="HOST:PORT")
    p.add_argument("--stats", type=Path, required=True, metavar="FILE")
    p.add_argument("--down-for", type=float, default=5.0)
    args = p.parse_args(argv)

    from twisted.internet.epollreactor import EPollReactor

    reactor: Any = EPollReactor()  # a private one: the balancer takes its reactor as given
    balancer = TcpBalancer(reactor, args.backend, down_for=args.down_for)
    seq = 0

    def write_stats() -> None:
        nonlocal seq
        seq += 1
        data = {"seq": seq, "refused": balancer.refused,
                "backends": {f"{h}:{port}": c for (h, port), c in balancer.counters.items()}}
        tmp = args.stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, args.stats)  # the harness never reads half a file

    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(write_stats))
    port = balancer.listen(args.listen[1], interface=args.listen[0])
    # A TCP port has an IPv4Address; IListeningPort.getHost promises only an IAddress.
    print(f"listening {cast(IPv4Address, port.getHost()).port}", flush=True)
    reactor.run(installSignalHandlers=True)  # SIGTERM/SIGINT stop it
    write_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
