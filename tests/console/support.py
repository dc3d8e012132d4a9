"""In-memory harness for the web console: the real API resource with the console mounted, a
real store (SQLite in memory) behind an inline thread pool, a fake clock, StubTreq as the
browser. No sockets, no threads, no real time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from acs_security.console import make_console
from acs_security.desired.service import DesiredService
from acs_security.policy.guardrails import AcsContext
from acs_security.server.addresses import TrustedProxies
from acs_security.server.api import ApiResource
from acs_security.server.api_desired import desired_routes
from acs_security.server.auth import TokenAdmin, TokenAuthenticator, hash_token
from acs_security.service import FleetService
from acs_security.store import open_store
from acs_security.store.deferred import DeferredStore
from tests.server.harness import InlineThreadPool

BASE = "http://console.test"
T0 = 1_800_000_000


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: str

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def csrf(self) -> str:
        match = re.search(r'name="csrf" value="([^"]*)"', self.body)
        assert match is not None, self.body[:500]
        return match.group(1)


@dataclass
class Console:
    clock: Clock
    store: Any
    api: ApiResource
    client: StubTreq
    tokens: dict[str, str] = field(default_factory=dict)
    _counter: int = 0

    def token(self, name: str, role: str) -> str:
        self._counter += 1
        token = f"acs_test-token-{name}-{self._counter:04d}-" + "x" * 20
        from datetime import UTC, datetime

        self.store.create_token(name, role, hash_token(token), datetime.fromtimestamp(self.clock.seconds(), UTC))
        self.tokens[name] = token
        return token

    def run(self, coro: Any, client: StubTreq | None = None) -> Any:
        d = ensureDeferred(coro)
        (client or self.client).flush()
        results: list[Any] = []
        d.addBoth(results.append)
        assert results, "the request did not finish"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    def request(self, method: str, path: str, *, cookies: dict[str, str] | None = None,
                form: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Answer:
        hdrs: dict[str, list[str]] = {k: [v] for k, v in (headers or {}).items()}
        if cookies:
            hdrs["Cookie"] = ["; ".join(f"{k}={v}" for k, v in cookies.items())]
        data = raw
        if form is not None:
            data = urlencode(form, doseq=True).encode()
            hdrs.setdefault("Content-Type", ["application/x-www-form-urlencoded"])

        # A client per request: treq keeps a cookie jar of its own, and the tests decide
        # which cookies a request carries.
        client = StubTreq(self.api)

        async def go() -> Answer:
            # StubTreq sets its request methods (treq's) as attributes in __init__.
            resp = await client.request(method, BASE + path, headers=hdrs, data=data,  # type: ignore[attr-defined]
                                        allow_redirects=False)
            body = await resp.content()
            headers_out = {k.decode().lower(): [v.decode() for v in vs]
                           for k, vs in resp.headers.getAllRawHeaders()}
            return Answer(resp.code, headers_out, body.decode("utf-8", "replace"))

        return self.run(go(), client)


class Browser:
    """A cookie jar and same-origin headers, as a browser sends them."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.cookies: dict[str, str] = {}

    def _take(self, answer: Answer) -> Answer:
        for value in answer.headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return answer

    def get(self, path: str, **kw: Any) -> Answer:
        return self._take(self.console.request("GET", path, cookies=self.cookies, **kw))

    def post(self, path: str, form: dict[str, Any], *, origin: str | None = BASE, **kw: Any) -> Answer:
        headers = dict(kw.pop("headers", {}))
        if origin is not None:
            headers.setdefault("Origin", origin)
        return self._take(self.console.request("POST", path, cookies=self.cookies, form=form,
                                               headers=headers, **kw))

    def sign_in(self, token: str) -> Answer:
        form_page = self.get("/signin")
        return self.post("/signin", {"csrf": form_page.csrf(), "token": token, "next": "/jobs"})


def make_console_harness(**console_kw: Any) -> Console:
    clock = Clock()
    clock.advance(T0)
    store = open_store("sqlite://")
    dstore = DeferredStore(store, clock, InlineThreadPool(), call_from_thread=lambda f, *a: f(*a))
    service = FleetService(dstore, engine=None, clock=clock,
                           acs_context=AcsContext(acs_host="acs.example.net"))
    auth = TokenAuthenticator(lambda digest: dstore.call("token_by_hash", digest), clock)
    admin = TokenAdmin(lambda method, *a: dstore.call(method, *a), clock, lambda n: b"\x07" * n, auth)
    desired = DesiredService(dstore, fleet=service, clock=clock)
    service.desired = desired
    api = ApiResource(service, authenticator=auth, tokens=admin)
    api.add_routes(desired_routes(api))
    counter = iter(range(1, 1_000_000))
    api.console = make_console(
        store=dstore, service=service, clock=clock,
        random_bytes=lambda n: next(counter).to_bytes(n, "big"), role_for=api.role_for,
        max_age=console_kw.pop("max_age", 8 * 3600), idle_timeout=console_kw.pop("idle_timeout", 1800),
        trusted=TrustedProxies(console_kw.pop("trusted", ())), desired=desired)
    return Console(clock, store, api, StubTreq(api))
