"""The job engine's plan memo returns exactly what planning afresh returns."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from acs_security.fleet.plancache import PlanCache
from acs_security.mapping import load_catalogue
from acs_security.policy.document import parse_policy
from acs_security.policy.plan import plan_device

HARDENING = Path(__file__).resolve().parents[2] / "datamodel" / "examples" / "hardening.toml"
CATALOGUE = load_catalogue()
POLICY = parse_policy(HARDENING.read_bytes(), catalogue=CATALOGUE)
DEVICES = [("CP-8851-3PCC", "sip88xx.12-0-1MPP0001-276"), ("CP-8851-3PCC", "sip88xx.11-3-7MPP0001-276"),
           ("CP-6821-3PCC", "sip68xx.12-0-1MPP0001-276"), ("CP-7841-3PCC", None),
           ("NO-SUCH-MODEL", "1.0")]


def fresh(product_class, software_version, known, force_all):
    return plan_device(POLICY, product_class=product_class, software_version=software_version,
                       known=known, force_all=force_all, catalogue=CATALOGUE)


def known_variants(product_class, software_version):
    """Known values: none, unrelated ones, each policy path at its target, and wrong."""
    every = fresh(product_class, software_version, None, True)
    unrelated = {"Device.DeviceInfo.HardwareVersion": "V03", "Device.ManagementServer.URL": "x"}
    variants = [None, {}, unrelated]
    for i, p in enumerate(every.params):
        at_target = {**unrelated, **{q.path: q.value for q in every.params[: i + 1]}}
        variants.append(at_target)
        variants.append({**at_target, p.path: p.value + "-old"})
    return variants


@pytest.mark.parametrize("product_class,software_version", DEVICES)
@pytest.mark.parametrize("force_all", [False, True])
def test_memoised_plans_equal_fresh_plans(product_class, software_version, force_all):
    cache = PlanCache(fresh)
    for _ in range(2):  # the second round comes from the memo
        for known in known_variants(product_class, software_version):
            got = cache.plan(product_class, software_version, known, force_all=force_all)
            assert got == fresh(product_class, software_version, known, force_all)
    assert cache.hits >= cache.misses


def test_devices_with_the_same_values_at_the_policy_paths_share_one_plan():
    cache = PlanCache(fresh)
    pc, sw = DEVICES[0]
    a = cache.plan(pc, sw, {"Device.ManagementServer.ConnectionRequestURL": "http://a/"})
    b = cache.plan(pc, sw, {"Device.ManagementServer.ConnectionRequestURL": "http://b/"})
    assert a is b and a.params  # values outside the policy's paths do not matter
    assert (cache.hits, cache.misses) == (1, 1)


def test_past_its_size_the_memo_keeps_nothing_more_and_stays_right():
    cache = PlanCache(fresh, max_entries=1)
    pc, sw = DEVICES[0]
    path = fresh(pc, sw, None, True).params[0].path
    first = cache.plan(pc, sw, {path: "one"})
    second = cache.plan(pc, sw, {path: "two"})
    assert len(cache) == 1
    assert cache.plan(pc, sw, {path: "two"}) == second == fresh(pc, sw, {path: "two"}, False)
    assert cache.plan(pc, sw, {path: "one"}) is first
    with pytest.raises(ValueError):
        PlanCache(fresh, max_entries=0)


def test_rpc_is_built_once_per_batch_and_key() -> None:
    from acs_security.mapping.records import Tr069Param

    cache = PlanCache(lambda *a: None)
    built: list[tuple[object, str]] = []

    def build(batch: tuple[object, ...], key: str) -> object:
        built.append((batch, key))
        return ("rpc", batch, key)

    one = (Tr069Param("Device.X", "1", "xsd:boolean"),)
    # Equal batches (a fresh slice per session) give the very same RPC.
    first = cache.rpc(one, "k-1", lambda: build(one, "k-1"))
    again = cache.rpc(tuple(list(one)), "k-1", lambda: build(one, "k-1"))
    assert first is again and len(built) == 1
    # Another key (an earlier batch's) or another batch is another RPC.
    assert cache.rpc(one, "k-1.1", lambda: build(one, "k-1.1")) == ("rpc", one, "k-1.1")
    two = (Tr069Param("Device.X", "0", "xsd:boolean"),)
    assert cache.rpc(two, "k-1", lambda: build(two, "k-1")) == ("rpc", two, "k-1")
    assert len(built) == 3


def test_rpcs_past_the_limit_are_built_every_time() -> None:
    cache = PlanCache(lambda *a: None, max_entries=1)
    calls: list[tuple[int, ...]] = []

    def build(b: tuple[int, ...]) -> tuple[int, ...]:
        calls.append(b)
        return b

    for batch in ((1,), (2,), (2,)):
        cache.rpc(batch, "k", partial(build, batch))
    assert calls == [(1,), (2,), (2,)]
