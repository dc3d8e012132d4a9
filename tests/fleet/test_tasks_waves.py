import pytest

from acs_security.fleet.tasks import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    TaskEvent,
    TaskState,
    next_state,
)
from acs_security.fleet.waves import WaveOptions, assign_waves, parse_canary, wave_verdict

ALL = [(s, e) for s in TaskState for e in TaskEvent]


@pytest.mark.parametrize("state, event", ALL)
def test_every_transition_follows_the_table(state, event):
    allowed = TRANSITIONS[state]
    if event in allowed:
        assert next_state(state, event) is allowed[event]
    else:
        with pytest.raises(InvalidTransition, match=f"{state.value} cannot take event {event.value}"):
            next_state(state, event)


def test_terminal_states_take_no_event_and_key_seen_always_finishes_active_tasks():
    assert {TaskState.APPLIED, TaskState.APPLIED_PENDING_REBOOT, TaskState.FAULTED,
            TaskState.UNREACHABLE, TaskState.SKIPPED, TaskState.CANCELLED} == TERMINAL
    for s in ACTIVE:
        assert next_state(s, TaskEvent.KEY_SEEN) is TaskState.APPLIED


def test_a_session_in_progress_cannot_be_cancelled_or_expire_midway():
    # Cancel and deadline stop what has not started; an exchange in progress completes.
    assert TaskEvent.CANCEL not in TRANSITIONS[TaskState.IN_SESSION]
    assert TaskEvent.DEADLINE not in TRANSITIONS[TaskState.IN_SESSION]


def test_assign_waves_canary_count_then_fixed_waves():
    assert assign_waves(10, WaveOptions(canary=2, wave_size=3)) == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    assert assign_waves(5, WaveOptions()) == [0] * 5
    assert assign_waves(0, WaveOptions(canary=3)) == []


def test_assign_waves_canary_fraction_rounds_up():
    waves = assign_waves(1000, WaveOptions(canary=0.05, wave_size=500))
    assert waves.count(0) == 50 and waves.count(1) == 500 and waves.count(2) == 450


@pytest.mark.parametrize("text, value", [("10", 10.0), ("5%", 0.05), ("0", 0.0)])
def test_parse_canary(text, value):
    assert parse_canary(text) == value


@pytest.mark.parametrize("text", ["-1", "150%", "abc", "0%"])
def test_parse_canary_rejects(text):
    with pytest.raises(ValueError):
        parse_canary(text)


def test_bad_wave_options():
    with pytest.raises(ValueError):
        WaveOptions(max_fault_rate=1.5)
    with pytest.raises(ValueError):
        WaveOptions(wave_size=0)
    with pytest.raises(ValueError):
        WaveOptions(canary=2.5)


S = TaskState


def test_wave_open_while_devices_in_flight():
    v = wave_verdict({S.APPLIED: 5, S.REQUESTED: 1}, contactable=0, max_fault_rate=0.2)
    assert v.state == "open"
    v = wave_verdict({S.APPLIED: 5, S.PENDING: 1}, contactable=1, max_fault_rate=0.2)
    assert v.state == "open"


def test_wave_settles_with_offline_phones_waiting_for_periodic_inform():
    v = wave_verdict({S.APPLIED: 9, S.PENDING: 1}, contactable=0, max_fault_rate=0.2)
    assert v.state == "settled" and v.decided == 9


def test_wave_halts_over_threshold_when_settled():
    v = wave_verdict({S.APPLIED: 7, S.FAULTED: 3}, contactable=0, max_fault_rate=0.2)
    assert v.state == "halt" and v.fault_rate == pytest.approx(0.3)
    v = wave_verdict({S.APPLIED: 8, S.FAULTED: 2}, contactable=0, max_fault_rate=0.2)
    assert v.state == "settled"


def test_wave_halts_early_when_faults_exceed_threshold_of_whole_wave():
    v = wave_verdict({S.FAULTED: 3, S.PENDING: 7}, contactable=7, max_fault_rate=0.2)
    assert v.state == "halt"
