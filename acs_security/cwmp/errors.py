"""Errors of the CWMP layer, each saying what to answer.

The codec and the session raise these for what a peer sent or what a caller asked for; none
of them carries a parameter value of a secret parameter or a password (DESIGN.md, "Bad input
and faults").
"""

from __future__ import annotations

__all__ = [
    "CwmpError",
    "CwmpProtocolError",
    "MessageValidationError",
    "SessionStateError",
]


class CwmpError(Exception):
    """Base class of every error raised by :mod:`acs_security.cwmp`."""


class CwmpProtocolError(CwmpError):
    """What the peer sent cannot be accepted; the attributes say how to answer.

    * ``fault_code``: the CWMP fault to answer with (8003 "Invalid arguments" for a well-formed
      SOAP envelope whose CWMP content is wrong or out of order), or ``None`` when the answer is
      a bare HTTP error.
    * ``http_status``: the HTTP status of the answer: 200 when a CWMP fault is answered
      (TR-069 3.4.1: every HTTP response carrying CWMP content, a SOAP fault included, uses
      200 OK), 400 for a body that is not a usable SOAP envelope, 413 for a body over the size
      limit.
    * ``cwmp_id`` / ``namespace``: the envelope's ``cwmp:ID`` and CWMP namespace when they were
      read before the error, so that a fault answer can echo them.

    ``str(error)`` says what is wrong, for a log line or the 400 body.
    """

    __slots__ = ("cwmp_id", "fault_code", "http_status", "namespace")

    def __init__(
        self,
        message: str,
        *,
        fault_code: int | None = None,
        http_status: int | None = None,
        cwmp_id: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.fault_code = fault_code
        if http_status is None:
            http_status = 200 if fault_code is not None else 400
        self.http_status = http_status
        self.cwmp_id = cwmp_id
        self.namespace = namespace

    def __repr__(self) -> str:
        return (
            f"CwmpProtocolError({str(self)!r}, fault_code={self.fault_code!r}, "
            f"http_status={self.http_status!r})"
        )


class MessageValidationError(CwmpError, ValueError):
    """A message or value violates a limit of the CWMP schema (length, range, pattern, type).

    Raised by the message constructors; the codec turns it into a :class:`CwmpProtocolError`
    with fault 8003 when it comes from parsed input.
    """


class SessionStateError(CwmpError):
    """The ACS side asked the session for something its current state does not allow.

    This is a programming error on our side (for example sending a request before the CPE's
    empty POST), never something a peer caused; the session is left unchanged.
    """
