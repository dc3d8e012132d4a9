"""The store's exceptions: each class says what the caller should answer.

Messages never carry a password (the engine is created with
``hide_parameters=True`` so SQLAlchemy's wrapped errors do not either) nor the
password part of a database URL.
"""

from __future__ import annotations

__all__ = [
    "InvalidArgument",
    "InvalidStoreURL",
    "SchemaVersionError",
    "StoreClosed",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "UnknownDevice",
    "UnknownStoreMethod",
]


class StoreError(Exception):
    """Base class of every error the store raises."""


class InvalidStoreURL(StoreError, ValueError):
    """The store URL is malformed or names a backend/driver we do not support.

    Answer: fix the configuration (operator error, not retryable)."""


class StoreUnavailable(StoreError):
    """The database could not be reached or opened (server down, port closed,
    file not openable, lock held too long).

    Answer: retryable; a CWMP session answers 503 / fault 8005 (Retry request)."""


class StoreConflict(StoreError):
    """The database aborted the transaction to break a deadlock with another one
    (PostgreSQL SQLSTATE 40P01) or a serialization failure (40001). Nothing was written;
    the database is fine (not an outage).

    Answer: run the same transaction again at once (Store.update_tasks and DeferredStore's
    group commit do so a few times)."""


class SchemaVersionError(StoreError):
    """The database schema is not the one this code expects (newer than the
    code, or not migrated while ``create=False``).

    Answer: upgrade the code, or open with ``create=True`` to migrate."""


class InvalidArgument(StoreError, ValueError):
    """A caller passed a value the store refuses (empty key, naive datetime,
    NUL character, negative limit...). Nothing was written."""


class UnknownDevice(StoreError, LookupError):
    """The operation needs a device that has never informed. Nothing was written."""


class StoreClosed(StoreError):
    """The store (or its DeferredStore wrapper) was closed."""


class UnknownStoreMethod(StoreError, AttributeError):
    """DeferredStore.call() was asked for a name that is not a public Store method."""
