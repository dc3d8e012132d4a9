"""The web console: server-rendered pages for operators on the management API listener
(docs/console.md, docs/decisions/0013-web-console.md).

:func:`make_console` builds it from a running server's parts; the pages read through the
service layer (service.py FleetService, overview.py FleetOverview) and act through it only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acs_security.console.pages_compliance import CompliancePages
from acs_security.console.pages_fleet import FleetPages
from acs_security.console.pages_jobs import JobPages
from acs_security.console.pages_policies import PolicyPages
from acs_security.console.resource import ConsoleResource
from acs_security.console.sessions import ConsoleSessions
from acs_security.overview import FleetOverview
from acs_security.server.addresses import TrustedProxies, normalize

__all__ = ["ConsoleResource", "ConsoleSessions", "make_console", "secure_check"]


def secure_check(trusted: TrustedProxies) -> Callable[[Any], bool]:
    """Whether a request reached us over TLS: directly, or through one of the operator's
    proxies that says so (``X-Forwarded-Proto: https`` from a trusted_proxies peer only;
    anybody else can write the header)."""

    def secure(request: Any) -> bool:
        if request.isSecure():
            return True
        proto = request.getHeader(b"x-forwarded-proto")
        if proto is None or proto.strip().lower() != b"https" or request.transport is None:
            return False
        peer = getattr(request.transport.getPeer(), "host", None)
        return isinstance(peer, str) and (normalize(peer) or peer) in trusted

    return secure


def make_console(*, store: Any, service: Any, clock: Any, random_bytes: Callable[[int], bytes],
                 role_for: Callable[[str, str], str | None], max_age: float, idle_timeout: float,
                 trusted: TrustedProxies, refusal_log: Any = None, metrics: Any = None,
                 desired: Any = None) -> ConsoleResource:
    """The console resource over a DeferredStore-like ``store`` and the FleetService."""
    overview = FleetOverview(store, service, clock=clock, desired=desired)
    sessions = ConsoleSessions(store, clock, random_bytes, max_age=max_age, idle_timeout=idle_timeout)
    pages: list[Any] = [FleetPages(overview), JobPages(service, overview), PolicyPages(service, desired=desired)]
    if desired is not None:
        pages.append(CompliancePages(desired))
    return ConsoleResource(sessions=sessions, role_for=role_for, pages=pages, clock=clock,
                           is_secure=secure_check(trusted), refusal_log=refusal_log, metrics=metrics)
