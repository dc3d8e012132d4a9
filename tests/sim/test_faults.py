"""Fault specs: parsing, precise errors, deterministic assignment."""

from __future__ import annotations

import pytest

from acs_security.sim.build import index_of, phone_draws, plan_phone, serial_for
from acs_security.sim.faults import FaultKind, FaultSpec, FaultSpecError, parse_faults


def test_the_issue_example_parses_to_each_fraction():
    spec = parse_faults("offline=0.05,slow=0.02,cr503=0.02,drop=0.01,old_firmware=0.05,reject=0.02")
    assert spec.fraction(FaultKind.OFFLINE) == 0.05
    assert spec.fraction(FaultKind.OLD_FIRMWARE) == 0.05
    assert spec.fraction(FaultKind.DROP) == 0.01
    assert str(spec) == "offline=0.05,slow=0.02,cr503=0.02,drop=0.01,old_firmware=0.05,reject=0.02"


def test_percent_spaces_dashes_and_empty_spec():
    spec = parse_faults(" offline = 5% , old-firmware=0.1 ")
    assert spec.fraction(FaultKind.OFFLINE) == pytest.approx(0.05)
    assert spec.fraction(FaultKind.OLD_FIRMWARE) == 0.1
    assert parse_faults("").fractions == {}


@pytest.mark.parametrize("text, message", [
    ("offline", "'offline' is not kind=fraction"),
    ("ofline=0.1", "unknown fault kind 'ofline'; did you mean 'offline'?"),
    ("offline=0.1,offline=0.2", "offline is given twice"),
    ("slow=abc", "slow: 'abc' is not a number"),
    ("slow=1.5", "slow: fraction 1.5 is outside 0..1"),
    ("slow=-0.1", "outside 0..1"),
    ("slow=nan", "outside 0..1"),
    ("slow=0.1,,drop=0.1", "element 2 is empty"),
])
def test_bad_specs_are_refused_with_the_reason(text, message):
    with pytest.raises(FaultSpecError) as err:
        parse_faults(text)
    assert message in str(err.value)


def test_a_spec_built_in_code_is_checked_too():
    with pytest.raises(FaultSpecError, match="outside 0..1"):
        FaultSpec({FaultKind.SLOW: 2})


def test_assignment_is_deterministic_and_close_to_the_fraction():
    spec = parse_faults("offline=0.1,reject=0.5")
    plans = [plan_phone(7, i, serial_prefix="SIM", models=("CP-8851-3PCC",),
                        firmware=("12.0(1)",), faults=spec) for i in range(4000)]
    again = [plan_phone(7, i, serial_prefix="SIM", models=("CP-8851-3PCC",),
                        firmware=("12.0(1)",), faults=spec) for i in range(4000)]
    assert plans == again
    offline = sum(1 for p in plans if p.faults & FaultKind.OFFLINE) / len(plans)
    reject = sum(1 for p in plans if p.faults & FaultKind.REJECT) / len(plans)
    assert 0.08 < offline < 0.12 and 0.46 < reject < 0.54
    other_seed = [plan_phone(8, i, serial_prefix="SIM", models=("CP-8851-3PCC",),
                             firmware=("12.0(1)",), faults=spec) for i in range(200)]
    assert [p.faults for p in other_seed] != [p.faults for p in plans[:200]]


def test_a_phone_depends_only_on_seed_and_index_so_processes_can_split_a_fleet():
    spec = parse_faults("old_firmware=0.3")
    models = ("CP-8851-3PCC", "CP-7841-3PCC", "CP-6821-3PCC", "CP-7832-3PCC")
    kwargs = dict(serial_prefix="SIM", models=models, firmware=("11.3(7)", "12.0(1)"), faults=spec)
    whole = [plan_phone(3, i, **kwargs) for i in range(100)]
    second_half = [plan_phone(3, i, **kwargs) for i in range(50, 100)]
    assert whole[50:] == second_half
    assert {p.product_class for p in whole} == set(models)
    old = [p for p in whole if p.faults & FaultKind.OLD_FIRMWARE]
    assert old and all(p.firmware == "11.2(3)" and p.assigned_firmware != "11.2(3)" for p in old)


def test_serials_round_trip_and_draws_are_uniform_numbers():
    assert serial_for("SIM", 42) == "SIM00000042"
    assert index_of("SIM", "SIM00000042") == 42
    assert index_of("SIM", "XYZ00000042") is None
    assert index_of("SIM", "SIM42") is None
    draws = phone_draws(0, 1, 8)
    assert len(draws) == 8 and all(0 <= d < 1 for d in draws)
