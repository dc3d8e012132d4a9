"""In-memory harness for the CWMP endpoint: a real resource, a real store (SQLite in
memory), a fake clock, StubTreq as the HTTP client. No sockets, no threads, no real time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock

from acs_security.cwmp import messages as m
from acs_security.cwmp.soap import CWMP_1_0, build_envelope, parse_envelope
from acs_security.httpauth.digest import DigestVerifier
from acs_security.server.cpe_auth import CpeAuthenticator
from acs_security.server.cwmp_resource import CwmpResource
from acs_security.store import open_store
from acs_security.store.deferred import DeferredStore

URL = "http://acs.example.net:7547/cwmp"
CISCO_OUI = "00000C"


class InlineThreadPool:
    """Runs a 'thread' call at once on the calling thread (the store code is the real one)."""

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):  # noqa: N802
        try:
            result = f(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller like a thread would
            from twisted.python.failure import Failure

            on_result(False, Failure(exc))
        else:
            on_result(True, result)


def inform(serial: str = "FCH2231A0B1", events: tuple[str, ...] = ("2 PERIODIC",), *,
           product_class: str = "CP-8851-3PCC", params: tuple[m.ParameterValue, ...] | None = None,
           namespace: str = CWMP_1_0, cwmp_id: str = "1") -> bytes:
    if params is None:
        params = (
            m.ParameterValue("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP-1", "string"),
            m.ParameterValue("Device.ManagementServer.ConnectionRequestURL",
                             f"http://10.0.0.23:8734/{serial}", "string"),
            m.ParameterValue("Device.ManagementServer.ParameterKey", "", "string"),
        )
    msg = m.Inform(m.DeviceId("Cisco Systems, Inc.", CISCO_OUI, product_class, serial),
                   tuple(m.EventStruct(e) for e in events), 1,
                   datetime(2026, 11, 22, 9, 0, tzinfo=UTC), 0, params)
    return build_envelope(msg, namespace=namespace, cwmp_id=cwmp_id)


@dataclass
class Harness:
    clock: Clock
    store: Any
    dstore: DeferredStore
    resource: CwmpResource
    client: StubTreq
    log: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, body: bytes, headers: dict[str, str] | None = None, *,
                   cookies: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        hdrs = {"Content-Type": ["text/xml"]}
        for k, v in (headers or {}).items():
            hdrs[k] = [v]
        # StubTreq sets its request methods (treq's) as attributes in __init__.
        resp = await self.client.post(URL, data=body, headers=hdrs, cookies=cookies)  # type: ignore[attr-defined]
        content = await resp.content()
        return resp.code, resp, content

    def close(self) -> None:
        self.store.close()


def make_harness(*, cpe_auth: bool = False, max_sessions: int = 100, timeout: float = 30.0,
                 provisioner: Any = None, store_url: str = "sqlite://",
                 allow_insecure_basic: bool = False, refusal_log: Any = None) -> Harness:
    """``refusal_log(clock)``, when given, makes the endpoint's RefusalLog on the harness clock."""
    clock = Clock()
    clock.advance(1_800_000_000)
    store = open_store(store_url)
    dstore = DeferredStore(store, clock, InlineThreadPool(), call_from_thread=lambda f, *a: f(*a))
    log: list[dict[str, Any]] = []
    auth = None
    if cpe_auth:
        nonces = iter(range(10_000))
        auth = CpeAuthenticator(
            find_credential=lambda **kw: dstore.call("find_cpe_credential", **kw),
            verifier=DigestVerifier("acs-security", b"k" * 32),
            clock=clock,
            random_bytes=lambda n: next(nonces).to_bytes(n, "big"),
            allow_insecure_basic=allow_insecure_basic,
        )
    tokens = iter(f"tok{i}" for i in range(10_000))
    resource = CwmpResource(clock=clock, store=dstore, authenticator=auth, provisioner=provisioner,
                            max_sessions=max_sessions, session_timeout=timeout,
                            token_source=lambda: next(tokens), session_observer=log.append,
                            refusal_log=refusal_log(clock) if refusal_log is not None else None)
    return Harness(clock, store, dstore, resource, StubTreq(resource), log)


def body_message(content: bytes) -> m.Message | None:
    env = parse_envelope(content)
    return env.message if env is not None else None


def run(h: Harness, coro: Any) -> Any:
    """Drive a coroutine to completion: StubTreq and the inline store fire synchronously."""
    from twisted.internet.defer import ensureDeferred
    from twisted.python.failure import Failure

    d = ensureDeferred(coro)
    h.client.flush()
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the coroutine did not finish (something waits on the clock?)"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]
