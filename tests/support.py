"""Helpers for end-to-end tests: a private, real reactor per test.

Twisted's global reactor cannot be restarted, and the project's rule is that library code
never touches it; so each end-to-end test builds its own reactor instance, runs one
coroutine in it with a time limit, and stops it. Listeners are bound to 127.0.0.1 with
ports the OS picks, and the test's coroutine is responsible for stopping what it started
(use ``try/finally``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.pollreactor import PollReactor
from twisted.internet.selectreactor import SelectReactor
from twisted.python.failure import Failure
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

__all__ = ["run_in_reactor", "sleep", "wait_until", "BytesProducer"]

T = TypeVar("T")


class ReactorTimeout(AssertionError):
    pass


@contextmanager
def _as_global_reactor(reactor: Any) -> Iterator[None]:
    """Make ``from twisted.internet import reactor`` find the private reactor meanwhile.

    The project's code takes its reactor as an argument, but parts of Twisted and treq
    still reach for the global one (TLS client wrapping flushes small writes on it, body
    producers cooperate on it); without this they would wait on a reactor that never runs.
    """
    import twisted.internet

    saved_attr = getattr(twisted.internet, "reactor", None)
    saved_module = sys.modules.get("twisted.internet.reactor")
    twisted.internet.reactor = reactor  # type: ignore[attr-defined]
    sys.modules["twisted.internet.reactor"] = reactor  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved_module is not None:
            sys.modules["twisted.internet.reactor"] = saved_module
        else:
            sys.modules.pop("twisted.internet.reactor", None)
        if saved_attr is not None:
            twisted.internet.reactor = saved_attr  # type: ignore[attr-defined]
        elif hasattr(twisted.internet, "reactor"):
            del twisted.internet.reactor  # type: ignore[attr-defined]


def run_in_reactor(fn: Callable[[Any], Coroutine[Any, Any, T]], *, timeout: float = 60.0,
                   many_sockets: bool = False) -> T:
    """Run ``await fn(reactor)`` in a fresh reactor; return its result or raise its error.

    ``many_sockets``: a poll() reactor, for tests that open more sockets than select() takes
    (file descriptors up to 1023)."""
    reactor = PollReactor() if many_sockets else SelectReactor()
    outcome: dict[str, Any] = {}

    def start() -> None:
        d: Deferred[T] = ensureDeferred(fn(reactor))

        def done(result: Any) -> None:
            outcome.setdefault("result", result)
            if reactor.running:
                reactor.stop()

        d.addBoth(done)

    def expire() -> None:
        outcome.setdefault("result", Failure(ReactorTimeout(f"test did not finish in {timeout}s")))
        reactor.stop()

    reactor.callWhenRunning(start)
    timer = reactor.callLater(timeout, expire)
    with _as_global_reactor(reactor):
        reactor.run(installSignalHandlers=False)
    if timer.active():
        timer.cancel()
    result = outcome.get("result")
    if isinstance(result, Failure):
        result.raiseException()
    return result  # type: ignore[return-value]


def sleep(reactor: Any, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


async def wait_until(reactor: Any, predicate: Callable[[], bool], *, timeout: float,
                     interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``predicate`` on the reactor until it holds; AssertionError after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await sleep(reactor, interval)


@implementer(IBodyProducer)
class BytesProducer:
    """A request body written at once. treq and FileBodyProducer would schedule the write on
    the *global* reactor's cooperator, which never runs in these tests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:  # noqa: N802
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:  # noqa: N802
        pass

    def resumeProducing(self) -> None:  # noqa: N802
        pass

    def stopProducing(self) -> None:  # noqa: N802
        pass
