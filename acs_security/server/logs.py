"""Log set-up for the server process: text or JSON lines, with a level filter.

Only the ``serve`` and ``simulate`` commands call :func:`start_logging`; library code logs
through ``twisted.logger.Logger`` and never configures observers itself.
"""

from __future__ import annotations

import sys
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

__all__ = ["start_logging"]


def start_logging(*, json_lines: bool, level: str = "info", stream: IO[str] | None = None) -> None:
    """Send log events to ``stream`` (stdout) as text or JSON lines at ``level`` and above."""
    out = stream or sys.stdout
    observer = jsonFileLogObserver(out) if json_lines else textFileLogObserver(out)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observer, [predicate])], redirectStandardIO=False
    )
