"""Templates of the web console: Jinja2 with autoescape on for every template, and the
filters that name phones and show times (docs/decisions/0013-web-console.md says why
Jinja2).

What a phone sent (serial numbers, product classes, values) is escaped twice over: for the
terminal's sake by display.printable (control and bidirectional characters shown as
escapes), and for HTML by autoescape. Templates are files of the package
(acs_security/console/templates), loaded once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

from acs_security.display import device_label, device_labels, printable

__all__ = ["make_environment", "device_url", "when", "ago"]


def device_url(device_id: Any) -> str:
    """The console path of a device page: the id percent-encoded whole (ids hold % and -)."""
    return "/devices/" + quote(str(device_id), safe="")


def when(value: Any) -> str:
    """An ISO 8601 time as ``2025-03-01 12:00:05 UTC`` ("" for none)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return printable(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: Any, now: datetime) -> str:
    """How long before ``now`` an ISO 8601 time was: ``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min ago"
    if seconds < 36 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _label(row: Any) -> str:
    return device_label(row.get("serial_number"), row.get("product_class"))


def _query(base: str, **fields: Any) -> str:
    kept = {k: v for k, v in fields.items() if v not in (None, "")}
    return base + ("?" + urlencode(kept) if kept else "")


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def make_environment() -> Environment:
    """The console's Jinja2 environment: autoescape on for every template (not only
    .html), undefined names are errors, and the filters above."""
    env = Environment(
        loader=PackageLoader("acs_security.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(printable=printable, label=_label, device_url=device_url, when=when,
                       duration=_duration)
    env.globals.update(query=_query, device_labels=device_labels, ago=ago)
    return env
