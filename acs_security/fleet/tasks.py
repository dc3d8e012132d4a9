"""The per-device task of a fleet job: its states and every allowed transition, in one table.

A task is one device's share of a job: "make this phone's settings match the policy".
Pure: no clock, no store; the runner feeds events and persists what comes out.

    pending --cr_sent--> requested --session--> in_session --applied--> applied
       ^  |                  |                      |      --reboot--> applied_pending_reboot
       |  |                  |                      |      --fault---> faulted
       |  +------session-----|----------------------+
       +--cr_failed / cr_lost+      session_lost ---> pending (retried)
    pending|requested --key_seen--> applied   (a later Inform carries the job's ParameterKey)
    pending|requested --deadline--> unreachable
    pending|requested --cancel----> cancelled
    pending --nothing_to_do--> skipped

``key_seen`` is how a job survives a restart without applying anything twice: the
ParameterKey of a successful SetParameterValues is reported in every later Inform
(TR-069 section 3.7.2.4 / A.3.2.1, Device.ManagementServer.ParameterKey), so a device
that already carries the job's key is done, whatever the store last recorded.
"""

from __future__ import annotations

import enum

__all__ = [
    "TaskState",
    "TaskEvent",
    "TRANSITIONS",
    "TERMINAL",
    "ACTIVE",
    "SUCCESS",
    "InvalidTransition",
    "next_state",
]


class TaskState(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and format() of members
    PENDING = "pending"
    REQUESTED = "requested"
    IN_SESSION = "in_session"
    APPLIED = "applied"
    APPLIED_PENDING_REBOOT = "applied_pending_reboot"
    FAULTED = "faulted"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class TaskEvent(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and format() of members
    CR_SENT = "cr_sent"  # a connection request was accepted by the device
    CR_FAILED = "cr_failed"  # the connection request failed (refused, busy, timeout)
    CR_LOST = "cr_lost"  # accepted, but the device did not call in within the wait
    SESSION = "session"  # the device is in a session and its wave is open: send the change
    SESSION_LOST = "session_lost"  # the session ended before the device answered
    APPLIED = "applied"  # SetParameterValuesResponse Status 0
    APPLIED_REBOOT = "applied_reboot"  # Status 1: committed, applied after a reboot
    FAULT = "fault"  # a CWMP fault answered the SetParameterValues
    KEY_SEEN = "key_seen"  # an Inform carries the job's ParameterKey
    DEADLINE = "deadline"  # the job's deadline passed
    CANCEL = "cancel"
    NOTHING_TO_DO = "nothing_to_do"  # every setting already has the desired value / absent


S, E = TaskState, TaskEvent

TRANSITIONS: dict[TaskState, dict[TaskEvent, TaskState]] = {
    S.PENDING: {
        E.CR_SENT: S.REQUESTED,
        E.CR_FAILED: S.PENDING,
        E.SESSION: S.IN_SESSION,
        E.KEY_SEEN: S.APPLIED,
        E.DEADLINE: S.UNREACHABLE,
        E.CANCEL: S.CANCELLED,
        E.NOTHING_TO_DO: S.SKIPPED,
    },
    S.REQUESTED: {
        E.CR_LOST: S.PENDING,
        E.SESSION: S.IN_SESSION,
        E.KEY_SEEN: S.APPLIED,
        E.DEADLINE: S.UNREACHABLE,
        E.CANCEL: S.CANCELLED,
        E.NOTHING_TO_DO: S.SKIPPED,
    },
    S.IN_SESSION: {
        E.APPLIED: S.APPLIED,
        E.APPLIED_REBOOT: S.APPLIED_PENDING_REBOOT,
        E.FAULT: S.FAULTED,
        E.SESSION_LOST: S.PENDING,
        E.KEY_SEEN: S.APPLIED,
        E.NOTHING_TO_DO: S.SKIPPED,
    },
    S.APPLIED: {},
    S.APPLIED_PENDING_REBOOT: {},
    S.FAULTED: {},
    S.UNREACHABLE: {},
    S.SKIPPED: {},
    S.CANCELLED: {},
}

TERMINAL: frozenset[TaskState] = frozenset(s for s, t in TRANSITIONS.items() if not t)
ACTIVE: frozenset[TaskState] = frozenset(TRANSITIONS) - TERMINAL
SUCCESS: frozenset[TaskState] = frozenset({S.APPLIED, S.APPLIED_PENDING_REBOOT})


class InvalidTransition(Exception):
    """An event that the task's state does not allow (a bug or a stale event)."""


def next_state(state: TaskState, event: TaskEvent) -> TaskState:
    """The state after ``event``. Raises InvalidTransition when the table forbids it."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise InvalidTransition(f"task in state {state.value} cannot take event {event.value}") from None

