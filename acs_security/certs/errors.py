"""Errors and lint records shared by the certificate modules."""

from __future__ import annotations

import enum
from dataclasses import dataclass


# --------------------------------------------------------------------------- errors
class CertificateError(ValueError):
    """Bad certificate input; the CLI answers it with exit code 2 and writes nothing."""

    exit_code = 2


class NotACertificateError(CertificateError):
    """The input is not an X.509 certificate (PEM or DER)."""


class NotAPrivateKeyError(CertificateError):
    """The input is not a private key (PEM or DER)."""


class KeyPasswordError(CertificateError):
    """The private key is encrypted and the password is missing or wrong (never shown)."""


class KeyMismatchError(CertificateError):
    """The private key does not belong to the certificate."""


class WeakKeyError(CertificateError):
    """A key the phones refuse (RSA < 2048 bits, other curves or algorithms)."""


class UnknownKeyTypeError(CertificateError):
    """A key type name outside :data:`KEY_TYPES`."""


class InvalidNameError(CertificateError):
    """A CN, SAN, host or device serial that is not well formed."""


class OutputExistsError(CertificateError):
    """The output file exists and overwriting was not asked for."""


# --------------------------------------------------------------------------- records
class Severity(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and format() of members
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: rule id, severity, what is wrong, and where the rule comes from."""

    rule: str
    severity: Severity
    message: str
    reference: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity.value, "message": self.message,
                "reference": self.reference}
