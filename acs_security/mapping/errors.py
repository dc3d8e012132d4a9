"""Errors of the data-model layer. Each says what to answer, and none shows a secret."""

from __future__ import annotations

from collections.abc import Sequence

from acs_security.mapping.records import Setting

__all__ = [
    "MappingError",
    "CatalogueError",
    "UnknownSettingError",
    "UnknownModelError",
    "ValidationError",
    "InvalidValues",
    "CfgXmlError",
    "SECRET_MASK",
]

SECRET_MASK = "********"


class MappingError(Exception):
    """Base class of every error raised by acs_security.mapping."""


class CatalogueError(MappingError):
    """The data files in datamodel/ are missing or inconsistent (a data bug, not user input)."""


class UnknownSettingError(MappingError, KeyError):
    """A key names no setting of the catalogue (cfg.xml element or TR-069 path)."""

    def __init__(self, key: str, suggestion: str | None = None) -> None:
        self.key = key
        self.suggestion = suggestion
        text = f"unknown setting {key!r}"
        if suggestion:
            text += f" (did you mean {suggestion!r}?)"
        MappingError.__init__(self, text)

    def __str__(self) -> str:  # KeyError would quote the message again
        return str(self.args[0])


class UnknownModelError(MappingError, KeyError):
    """A product class the catalogue does not know."""

    def __init__(self, product_class: str, known: Sequence[str]) -> None:
        self.product_class = product_class
        MappingError.__init__(self, f"unknown phone model {product_class!r}; known: {', '.join(known)}")

    def __str__(self) -> str:
        return str(self.args[0])


class ValidationError(MappingError, ValueError):
    """A value the phone would refuse (or, severity "warning", one that has no effect).

    Names the setting (cfg.xml element and TR-069 path), the value, the rule and the
    allowed values. The value of a secret setting is never shown: not in ``str()``, not
    in ``repr()``, not in ``args``.
    """

    def __init__(
        self,
        setting: Setting | str,
        value: str | None,
        rule: str,
        allowed: str = "",
        *,
        extension: int | None = None,
        severity: str = "error",
        rule_id: str | None = None,
    ) -> None:
        self.setting = setting if isinstance(setting, Setting) else None
        if isinstance(setting, Setting):
            # A per-extension setting without an extension number is named by its template.
            concrete = not setting.per_extension or extension is not None
            element = setting.element_for(extension) if concrete else setting.element
            self.element = element if setting.element else None
            self.path: str | None = setting.path_for(extension) if concrete else setting.path
            self.key = setting.concrete_key(extension) if concrete else setting.key
            self.secret = setting.secret
        else:
            self.element = setting if not setting.startswith("Device.") else None
            self.path = setting if setting.startswith("Device.") else None
            self.key = setting
            self.secret = False
        self.value = value
        self.rule = rule
        self.allowed = allowed
        self.extension = extension
        self.severity = severity
        self.rule_id = rule_id
        MappingError.__init__(self, self._message())

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "(unset)"
        return SECRET_MASK if self.secret and self.value else repr(self.value)

    def _message(self) -> str:
        names = " ".join(n for n in (self.element, f"({self.path})" if self.path else None) if n)
        text = f"{names or self.key} = {self.shown_value}: {self.rule}"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.severity != "error":
            text = f"{self.severity}: {text}"
        return text

    def __repr__(self) -> str:
        return f"ValidationError({self._message()!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Pickling re-creates the error from its public fields, secret masked.
        value = SECRET_MASK if self.secret and self.value else self.value
        return (_rebuild_validation_error, (self.key, value, self.rule, self.allowed, self.severity))


def _rebuild_validation_error(key: str, value: str | None, rule: str, allowed: str, severity: str) -> ValidationError:
    return ValidationError(key, value, rule, allowed, severity=severity)


class InvalidValues(MappingError, ValueError):
    """Several values were refused; ``errors`` lists each with its rule."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        self.errors = tuple(errors)
        lines = [str(e) for e in self.errors]
        MappingError.__init__(self, f"{len(lines)} invalid value(s):\n  " + "\n  ".join(lines))


class CfgXmlError(MappingError):
    """A cfg.xml file the phone could not read: where, what, and how to fix it."""

    def __init__(self, line: int, column: int, message: str, suggestion: str | None = None, *,
                 source: str = "<cfg.xml>") -> None:
        self.line = line
        self.column = column
        self.message = message
        self.suggestion = suggestion
        self.source = source
        text = f"{source}:{line}:{column}: {message}"
        if suggestion:
            text += f" ({suggestion})"
        MappingError.__init__(self, text)
