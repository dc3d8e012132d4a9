"""Sub-commands of ``acs-security``: one module each, with ``register(subparsers)``.

A command's ``func(args) -> int`` returns the exit code. Errors meant for the user are
raised as :class:`UsageError` and printed to stderr without a traceback.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """An error the user can fix: printed to stderr, exit code ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
