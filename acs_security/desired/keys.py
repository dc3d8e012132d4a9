"""ParameterKeys of desired state: which assignment, which revision (pure).

TR-069 A.3.2.1: the CPE sets Device.ManagementServer.ParameterKey to the key of a
SetParameterValues only when it succeeds, and reports it in every later Inform. The key of
an assignment's SetParameterValues names the assignment and its revision, so a phone's
Inform tells which revision it last took; batches before the last carry ``.N`` (as a job's
do), so the bare key means the whole change landed.
"""

from __future__ import annotations

import re

__all__ = ["KEY_PREFIX", "MAX_KEY_LENGTH", "assignment_key", "parse_assignment_key", "job_of_key"]

KEY_PREFIX = "acs-des-"
#: TR-069 A.3.2.1: ParameterKey is a string(32).
MAX_KEY_LENGTH = 32
_KEY = re.compile(r"^acs-des-(?P<id>[0-9]{1,10})-r(?P<rev>[0-9]{1,10})(?:\.(?P<batch>[0-9]{1,4}))?$")
_JOB = re.compile(r"^(?P<prefix>.*?)(?P<id>[0-9]{1,10})(?:\.[0-9]{1,4})?$")


def assignment_key(assignment_id: int, revision: int, batch: int | None = None) -> str:
    """``acs-des-<id>-r<revision>`` (``.<batch>`` for a batch before the last). Raises
    ValueError for negative numbers or a key longer than 32 characters."""
    if assignment_id < 0 or revision < 0 or (batch is not None and batch < 1):
        raise ValueError("assignment id, revision and batch must not be negative")
    key = f"{KEY_PREFIX}{assignment_id}-r{revision}" + (f".{batch}" if batch is not None else "")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"ParameterKey {key!r} is longer than {MAX_KEY_LENGTH} characters (TR-069 A.3.2.1)")
    return key


def parse_assignment_key(key: str | None) -> tuple[int, int] | None:
    """(assignment id, revision) of a key this module made, else None (batches included)."""
    if not key:
        return None
    match = _KEY.match(key)
    if match is None:
        return None
    return int(match["id"]), int(match["rev"])


def job_of_key(key: str | None, prefix: str) -> int | None:
    """The job id in a job's ParameterKey (``<prefix><id>`` or ``<prefix><id>.<batch>``), else None."""
    if not key or not key.startswith(prefix):
        return None
    match = _JOB.match(key[len(prefix):])
    if match is None or match["prefix"]:
        return None
    return int(match["id"])
