"""Runs one phone's CWMP session or Download over Twisted, and records the outcome.

Each session gets its own ``Agent`` and persistent ``HTTPConnectionPool`` (one TCP connection,
as a phone uses), closed when the session ends: connections are never shared between phones,
so the ACS can never take one phone's request for another's session. With
``connection_per_request`` every request of a session goes on a new connection
(``Connection: close``), as a CPE that does not keep connections alive does; the session then
rests on its cookies alone (TR-069 section 3.4.1). The pure session logic
is :class:`~acs_security.sim.cpe_session.CpeSession`; this module moves its bytes, applies
the slow and drop faults, classifies network failures (a TLS handshake failure is a lockout),
counts everything in :class:`~acs_security.sim.stats.FleetStats` and sets the retry time
(TR-069 3.2.1.1 backoff, or the ACS's Retry-After).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionRefusedError, DNSLookupError
from twisted.internet.task import deferLater
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent

from acs_security.connreq.pool import QuietConnectionPool
from acs_security.cwmp import messages as m
from acs_security.mapping import Catalogue
from acs_security.sim.cpe_session import CpeSession, SessionEnd, retry_wait_range
from acs_security.sim.faults import FaultKind
from acs_security.sim.http import PhoneEndpointFactory, fetch, post
from acs_security.sim.lockout import AcsTlsFacts, tls_lockout_reason, tls_settings
from acs_security.sim.phone import Phone
from acs_security.sim.rpc import FIRMWARE_IMAGE, apply_downloaded_file
from acs_security.sim.stats import FleetStats

__all__ = ["SessionRunner", "failure_text"]


def failure_text(exc: BaseException) -> tuple[str, bool]:
    """(short reason, is a TLS failure) for an exception of the HTTP client. The reason
    names the kind of failure only: exception messages may quote URLs or headers."""
    causes: list[BaseException] = [exc]
    for failure in getattr(exc, "reasons", None) or ():
        causes.append(getattr(failure, "value", failure))
    for cause in causes:
        if isinstance(cause, SSL.Error):
            parts = [str(a[2]) for a in (cause.args[0] if cause.args else ())
                     if isinstance(a, tuple) and len(a) == 3]
            return f"TLS handshake failed ({', '.join(parts) or 'alert'})", True
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", False
        if isinstance(cause, DNSLookupError):
            return "ACS host name not resolved", False
        if isinstance(cause, ConnectError):
            return f"cannot connect ({type(cause).__name__})", False
        if type(cause).__name__ in ("TimeoutError", "CancelledError"):
            return "timeout", False
    return f"HTTP failure ({type(causes[-1]).__name__})", False


class SessionRunner:
    """Sessions and downloads of one fleet's phones. Collaborators come in; nothing global."""

    def __init__(self, reactor: Any, stats: FleetStats, rng: random.Random, catalogue: Catalogue,
                 *, agent: IAgent | None, resolve: Mapping[str, str], trust_root: Any,
                 timeout: float, retry_scale: float, slow_delay: float,
                 acs_tls: AcsTlsFacts | None, client_certs: Callable[[str], Any] | None = None,
                 connection_per_request: bool = False) -> None:
        self._reactor = reactor
        self._stats = stats
        self._rng = rng
        self._catalogue = catalogue
        self._agent = agent
        self._resolve = resolve
        self._trust_root = trust_root
        self._timeout = timeout
        self._retry_scale = retry_scale
        self._slow_delay = slow_delay
        self._acs_tls = acs_tls
        self._client_certs = client_certs
        self._persistent = not connection_per_request
        self._pools: set[HTTPConnectionPool] = set()
        self._closing: set[Deferred[Any]] = set()
        self._tls_cache: dict[Any, Any] = {}
        self.stopped = False

    def cnonce(self) -> str:
        return self._rng.randbytes(8).hex()

    def _agent_for(self, phone: Phone, url: str) -> tuple[IAgent, HTTPConnectionPool | None]:
        if self._agent is not None:
            return self._agent, None
        pool = QuietConnectionPool(self._reactor, persistent=self._persistent)
        pool.maxPersistentPerHost = 1
        pool.retryAutomatically = False
        self._pools.add(pool)
        https = url.startswith("https:")
        tls = tls_settings(phone.lookup) if https else None
        cert = self._client_certs(phone.serial) if https and self._client_certs is not None else None
        factory = PhoneEndpointFactory(self._reactor, self._resolve, tls=tls,
                                       trust_root=self._trust_root, tls_cache=self._tls_cache,
                                       connect_timeout=self._timeout, client_cert=cert,
                                       client_id=phone.serial)
        return Agent.usingEndpointFactory(self._reactor, factory, pool=pool), pool

    def _close(self, pool: HTTPConnectionPool | None) -> None:
        """Close a session's connection. Not awaited (a phone does not wait for the FIN);
        :meth:`stop` returns the closes still under way."""
        if pool is not None and pool in self._pools:
            self._pools.discard(pool)
            d = pool.closeCachedConnections()
            self._closing.add(d)
            d.addBoth(lambda _: self._closing.discard(d))

    def stop(self) -> list[Deferred[Any]]:
        """Close every connection; the Deferreds of the closes still under way."""
        self.stopped = True
        for pool in list(self._pools):
            self._close(pool)
        return list(self._closing)

    async def session(self, phone: Phone) -> None:
        """One session of ``phone`` with its ACS, recorded. Never raises for the network."""
        self._stats.sessions_started += 1
        url = phone.acs_url
        session = CpeSession(phone, now=self._reactor.seconds(), url=url, cnonce=self.cnonce)
        agent, pool = self._agent_for(phone, url)
        end: SessionEnd
        tls_failed = False
        try:
            request = session.start()
            while True:
                if request.answers_acs:
                    if phone.faults & FaultKind.SLOW:
                        await deferLater(self._reactor, self._slow_delay, lambda: None)
                    if phone.faults & FaultKind.DROP:
                        end = SessionEnd(False, "connection dropped mid-session (fault)",
                                         informed=session.informed)
                        break
                reply = await post(agent, url, request, reactor=self._reactor,
                                   timeout=self._timeout)
                step = session.receive(reply, self._reactor.seconds())
                if isinstance(step, SessionEnd):
                    end = step
                    break
                request = step
        except Exception as exc:  # noqa: BLE001 - every failure ends the session, counted
            if self.stopped:
                return
            text, tls_failed = failure_text(exc)
            end = SessionEnd(False, text, informed=session.informed)
        finally:
            self._close(pool)
        self.record(phone, session, end, tls_failed)

    def record(self, phone: Phone, session: CpeSession, end: SessionEnd, tls_failed: bool) -> None:
        """Count the session and, when it failed before the Inform was answered, set the
        phone's retry time."""
        stats = self._stats
        if end.informed:
            for event in session.events:
                stats.informs[event.event_code] += 1
        for name in session.rpcs:
            stats.rpcs[name] += 1
        for code in session.faults:
            stats.cpe_faults[code] += 1
        if end.ok:
            stats.sessions_ok += 1
            phone.sessions_completed += 1
            if phone.locked_out is not None and phone.locked_out.startswith("TLS"):
                phone.locked_out = None  # the handshake works again
            return
        stats.sessions_failed += 1
        phone.sessions_failed += 1
        stats.failures[end.reason.split(" (")[0]] += 1
        if tls_failed:
            explained = None
            if self._acs_tls is not None:
                explained = tls_lockout_reason(phone.lookup, self._acs_tls, self._catalogue)
            phone.locked_out = explained or end.reason
            stats.lockouts["tls"] += 1
        if not end.informed:
            phone.session_failed()
            if phone.has_events() or phone.transfers:
                minimum, multiplier = phone.retry_parameters()
                lo, hi = retry_wait_range(phone.retry_count, minimum, multiplier)
                wait = end.retry_after if end.retry_after is not None \
                    else self._rng.uniform(lo, hi) * self._retry_scale
                phone.retry_at = self._reactor.seconds() + wait

    async def download(self, phone: Phone, request: m.Download) -> bool:
        """Fetch and install a Download's file, queue its TransferComplete; True when the
        phone reboots to install it (a firmware image)."""
        if request.delay_seconds:
            await deferLater(self._reactor, request.delay_seconds, lambda: None)
        start = datetime.fromtimestamp(self._reactor.seconds(), UTC)
        agent, pool = self._agent_for(phone, request.url)
        try:
            code, body, text = await fetch(agent, request.url, username=request.username,
                                           password=request.password, reactor=self._reactor,
                                           timeout=self._timeout, cnonce=self.cnonce())
        finally:
            self._close(pool)
        if code == 0:
            code, text = apply_downloaded_file(phone, request.file_type, body)
        complete = datetime.fromtimestamp(self._reactor.seconds(), UTC)
        rebooted = code == 0 and request.file_type == FIRMWARE_IMAGE
        phone.transfer_done(request.command_key, code, text, start, complete, rebooted=rebooted)
        self._stats.downloads += 1
        return rebooted
