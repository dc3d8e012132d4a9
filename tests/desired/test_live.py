"""The node's live assignments and the composite provisioner, with fakes (no store, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import ensureDeferred, succeed
from twisted.internet.task import Clock

from acs_security.desired.composite import CompositeProvisioner
from acs_security.desired.live import LiveAssignments
from acs_security.store.desiredrecords import AssignmentRecord

T = datetime(2026, 1, 1, tzinfo=UTC)


def record(aid: int, selector: str = "all", enabled: bool = True) -> AssignmentRecord:
    policy = {"name": "p", "settings": {"Firewall": "Enabled"}, "extension_settings": {}, "extensions": "all"}
    return AssignmentRecord(aid, f"a{aid}", policy, "p.toml", selector, 0, "enforce", enabled, 1, T, T)


class FakeStore:
    def __init__(self) -> None:
        self.generation: Any = (0, 0, "")
        self.records: list[AssignmentRecord] = []
        self.calls: list[str] = []

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(method)
        return succeed({"assignment_generation": self.generation, "list_assignments": self.records,
                        "all_device_tags": {"D1": ("lab",)}}[method])


def run(coro: Any) -> Any:
    out: list[Any] = []
    ensureDeferred(coro).addBoth(out.append)
    return out[0]


def test_the_set_is_reloaded_only_when_the_generation_moves_and_tags_only_when_used():
    store, clock = FakeStore(), Clock()
    live = LiveAssignments(store, clock, sync_interval=5)
    store.records = [record(1), record(2, enabled=False)]
    assert run(live.refresh()) is True and [a.id for a in live.current.assignments] == [1]
    assert "all_device_tags" not in store.calls and live.tags == {}
    store.calls.clear()
    assert run(live.refresh()) is False and store.calls == ["assignment_generation"]
    store.generation = (2, 3, "x")
    store.records = [record(1), record(3, selector="tag=lab")]
    assert run(live.refresh()) is True and live.current.uses_tags and live.tags == {"D1": ("lab",)}
    run(live.start())
    store.calls.clear()
    clock.advance(5)
    assert store.calls[0] == "assignment_generation"
    live.stop()


def test_an_unreadable_assignment_is_left_out_and_named():
    store, clock = FakeStore(), Clock()
    live = LiveAssignments(store, clock)
    store.records = [record(1), AssignmentRecord(2, "broken", {"settings": {}}, "x", "all", 0, "enforce", True, 1,
                                                 T, T)]
    run(live.refresh(force=True))
    assert [a.id for a in live.current.assignments] == [1] and "broken" in live.unreadable


def test_the_memory_is_bounded_oldest_first():
    live = LiveAssignments(FakeStore(), Clock(), cache_size=2)
    live.remember("a", 1, "k")
    live.remember("b", 1, "k")
    live.remember("c", 1, "k")
    assert live.recall("a") is None and live.recall("c") == (1, "k", float("inf")) and live.remembered == 2
    live.forget("c")
    assert live.recall("c") is None
    off = LiveAssignments(FakeStore(), Clock(), cache_size=0)
    off.remember("a", 1, "k")
    assert off.recall("a") is None


class Part:
    def __init__(self, name: str, requests: list[str]) -> None:
        self.name, self.requests = name, list(requests)
        self.seen: list[tuple[Any, Any]] = []
        self.observed: list[Any] = []
        self.ended: tuple[Any, str] | None = None

    async def session_started(self, ctx: Any) -> None:
        ctx.provisioner_state = f"{self.name}-state"

    async def next_request(self, ctx: Any) -> Any:
        assert ctx.provisioner_state == f"{self.name}-state"
        return self.requests.pop(0) if self.requests else None

    async def handle_response(self, ctx: Any, request: Any, response: Any) -> None:
        assert ctx.provisioner_state == f"{self.name}-state"
        self.seen.append((request, response))

    def observe(self, ctx: Any, request: Any, response: Any) -> None:
        assert ctx.provisioner_state == f"{self.name}-state"
        self.observed.append(request)

    async def session_ended(self, ctx: Any, outcome: str) -> None:
        self.ended = (ctx.provisioner_state, outcome)


class Ctx:
    provisioner_state: Any = None


def test_the_composite_asks_parts_in_order_routes_answers_and_shows_the_others():
    first, second = Part("job", ["spv-job"]), Part("desired", ["spv-a", "spa"])
    composite, ctx = CompositeProvisioner([first, second]), Ctx()
    run(composite.session_started(ctx))
    sent = []
    while (req := run(composite.next_request(ctx))) is not None:
        sent.append(req)
        run(composite.handle_response(ctx, req, f"ok-{req}"))
    assert sent == ["spv-job", "spv-a", "spa"]
    assert first.seen == [("spv-job", "ok-spv-job")] and second.seen == [("spv-a", "ok-spv-a"), ("spa", "ok-spa")]
    assert second.observed == ["spv-job"] and first.observed == ["spv-a", "spa"]
    run(composite.session_ended(ctx, "done"))
    assert first.ended == ("job-state", "done") and second.ended == ("desired-state", "done")
    assert ctx.provisioner_state is None
