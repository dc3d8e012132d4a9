"""The one seam for encrypting stored passwords at rest.

CPE credentials and connection-request credentials must stay retrievable
(HTTP digest, RFC 7616, needs the plain password on the verifier side), so the
store keeps them reversibly. Every stored password goes through a SecretCodec:
the default is the identity; a later issue plugs an encrypting codec in here
without touching the store.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["IdentityCodec", "SecretCodec"]


@runtime_checkable
class SecretCodec(Protocol):
    """Turns a password into the text stored in the database and back."""

    def encode(self, plaintext: str) -> str:
        """Return the text to store for ``plaintext``."""
        ...

    def decode(self, stored: str) -> str:
        """Return the password for stored text. Raises ValueError if it cannot."""
        ...


class IdentityCodec:
    """Stores passwords as they are (the default until encryption at rest lands)."""

    __slots__ = ()

    def encode(self, plaintext: str) -> str:
        return plaintext

    def decode(self, stored: str) -> str:
        return stored

    def __repr__(self) -> str:
        return "IdentityCodec()"
