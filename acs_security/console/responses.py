"""What a console page handler returns, and the request it is given.

Handlers are coroutines ``(ConsoleRequest) -> Page | Redirect | Download``; the resource
(resource.py) turns these into HTTP answers with the security headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acs_security.console.sessions import ConsoleUser
from acs_security.service import ServiceError

__all__ = ["Page", "Redirect", "Download", "ConsoleRequest", "FormError"]


@dataclass
class Page:
    """A template rendered with ``context``; ``fragment`` pages have no layout (live
    updates, lint results)."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    """303 See Other to a path of the console (after a form: the browser then GETs it)."""

    location: str


@dataclass(frozen=True)
class Download:
    """A file to save (job reports)."""

    body: bytes
    content_type: str
    filename: str


class FormError(ServiceError):
    """A form field that cannot be used (400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "invalid form", detail)


@dataclass
class ConsoleRequest:
    """One console request: the Twisted request, the signed-in user (None on public pages),
    the path's named groups, the form fields (POST) and query fields (GET), decoded."""

    raw: Any
    user: ConsoleUser | None
    params: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]
    can: dict[str, bool]
    lists: dict[str, list[str]] = field(default_factory=dict)  # every value of repeated form fields

    def field(self, name: str, default: str = "") -> str:
        return self.form.get(name, default)

    def fields(self, name: str) -> list[str]:
        return list(self.lists.get(name, []))

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def int_arg(self, name: str, default: int, *, low: int = 0, high: int = 1_000_000_000) -> int:
        """A query integer within [low, high]. Raises FormError."""
        text = self.query.get(name, "")
        if not text:
            return default
        if len(text) > 12 or not text.isdigit() or not low <= int(text) <= high:
            raise FormError(f"{name} must be a whole number from {low} to {high}")
        return int(text)
