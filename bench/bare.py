"""The bare baseline of figure 2: a plain ``twisted.web`` resource answering fixed bodies.

It does the HTTP part of what the ACS does and nothing of the CWMP part: the same Site
machinery, one request read whole, one fixed answer, the access log off as in the ACS. The
answer is chosen by the cheapest possible look at the request, so that the load generator's
session script runs unchanged against it:

- an empty POST: 204 (``--mode periodic``) or the fixed SetParameterValues envelope (``push``);
- a SetParameterValuesResponse: 204;
- anything else (the Inform): the fixed InformResponse envelope.

``python -m bench.bare --port 0 --mode periodic`` prints ``PORT <n>`` once it listens.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.web import resource, server

from bench.envelopes import inform_response_bytes, spv_bytes

__all__ = ["BareResource", "main"]


class BareResource(resource.Resource):
    isLeaf = True

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._push = mode == "push"
        self._inform_response = inform_response_bytes("1")
        self._spv = spv_bytes(20, "acs-1")

    def render_POST(self, request: Any) -> bytes:  # noqa: N802 - Twisted's interface name
        body = request.content.read()
        if not body:
            if self._push:
                request.setHeader(b"Content-Type", b'text/xml; charset="utf-8"')
                return self._spv
            request.setResponseCode(204)
            return b""
        if b"SetParameterValuesResponse" in body:
            request.setResponseCode(204)
            return b""
        request.setHeader(b"Content-Type", b'text/xml; charset="utf-8"')
        return self._inform_response


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=("periodic", "push"), default="periodic")
    args = p.parse_args(argv)
    from twisted.internet import reactor as global_reactor  # the process entry point

    # Any, as the ACS takes its reactor: mypy-zope cannot call the interfaces the module's
    # reactor is typed with.
    reactor: Any = global_reactor
    site = server.Site(BareResource(args.mode))
    site.log = lambda request: None  # type: ignore[method-assign]  # as the ACS's Site
    port = reactor.listenTCP(args.port, site, interface="127.0.0.1")
    print(f"PORT {port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
