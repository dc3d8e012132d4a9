"""The store: devices, reported parameters, credentials, transfers; SQLite or PostgreSQL.

``open_store(url)`` returns a synchronous Store; ``DeferredStore`` runs it in a
thread pool for Twisted code. See docs/decisions/0003-store.md.
"""

from acs_security.store.codec import IdentityCodec, SecretCodec
from acs_security.store.deferred import DeferredStore, make_threadpool
from acs_security.store.errors import (
    InvalidArgument,
    InvalidStoreURL,
    SchemaVersionError,
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    UnknownDevice,
    UnknownStoreMethod,
)
from acs_security.store.migrations import HEAD as SCHEMA_HEAD
from acs_security.store.records import (
    Credential,
    CredentialInfo,
    Device,
    InformRecord,
    TransferComplete,
    make_device_id,
    parse_device_id,
)
from acs_security.store.sql import MAX_PAGE, SHARED_CREDENTIAL_KEY, Store, open_store

__all__ = [
    "MAX_PAGE",
    "SCHEMA_HEAD",
    "SHARED_CREDENTIAL_KEY",
    "Credential",
    "CredentialInfo",
    "DeferredStore",
    "Device",
    "IdentityCodec",
    "InformRecord",
    "InvalidArgument",
    "InvalidStoreURL",
    "SchemaVersionError",
    "SecretCodec",
    "Store",
    "StoreClosed",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "TransferComplete",
    "UnknownDevice",
    "UnknownStoreMethod",
    "make_device_id",
    "make_threadpool",
    "open_store",
    "parse_device_id",
]
