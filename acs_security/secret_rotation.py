"""Scanning and rotating the secrets at rest (``acs-security secrets scan|rotate``).

The stored form and the key file are acs_security/secrets.py's; this module walks the
tables that hold ciphertexts (credentials, sealed policies, device parameters, files and
configuration backups), counts them by key id, and re-encrypts them under a new key.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from acs_security.mapping import Catalogue, load_catalogue
from acs_security.secrets import (
    KEY_BYTES,
    PREFIX,
    SECRET_SUFFIXES,
    EncryptingCodec,
    KeyRing,
    is_secret_parameter,
    key_id_of,
    read_key_file,
    seal_policy,
    unseal_policy,
    write_key_file,
)

__all__ = ["RotationReport", "rotate_secrets", "scan_secrets", "unknown_key_ids"]



def _tables() -> Any:
    from acs_security.store import schema

    return schema


def _secret_param_filter(t: Any, catalogue: Catalogue) -> Any:
    c = t.device_parameters.c
    paths = [s.path for s in catalogue.settings if s.secret and "{n}" not in s.path]
    return sa.or_(c.value.like(PREFIX + "%"), c.name.in_(paths),
                  *(c.name.like("%" + suffix) for suffix in SECRET_SUFFIXES))


def _stored_values(engine: Any, catalogue: Catalogue) -> Iterable[tuple[str, Any, str]]:
    """(table, row key, stored value) of every stored secret (sealed job values included)."""
    t = _tables()
    with engine.connect() as conn:
        for row in conn.execute(sa.select(t.cpe_credentials.c.key, t.cpe_credentials.c.password)):
            yield "cpe_credentials", row[0], row[1]
        cr = t.connection_request_credentials.c
        for row in conn.execute(sa.select(cr.device_id, cr.password)):
            yield "connection_request_credentials", row[0], row[1]
        for table in (t.jobs, t.assignments):
            for row_id, text in conn.execute(sa.select(table.c.id, table.c.policy)):
                policy = json.loads(text)
                for section, values in (policy.get("sealed") or {}).items():
                    for key, value in values.items():
                        yield table.name, (row_id, section, key), value
                for section in ("settings", "extension_settings"):
                    for key, value in (policy.get(section) or {}).items():
                        if value and is_secret_parameter(key, catalogue):
                            yield table.name, (row_id, section, key), value
        f = t.device_files.c
        for file_id, content in conn.execute(sa.select(f.id, f.content).where(f.content.is_not(None))):
            yield "device_files", file_id, content
        b = t.config_blobs.c
        for sha, content in conn.execute(sa.select(b.sha256, b.content)):
            yield "config_blobs", sha, content
        p = t.device_parameters.c
        query = sa.select(p.device_id, p.name, p.value).where(_secret_param_filter(t, catalogue))
        for device_id, name, value in conn.execute(query):
            if value and (value.startswith(PREFIX) or is_secret_parameter(name, catalogue)):
                yield "device_parameters", (device_id, name), value


def scan_secrets(engine: Any, *, catalogue: Catalogue | None = None) -> dict[str, Counter[str]]:
    """{table: Counter(key id or "plaintext")} of the stored secrets (empty values left out)."""
    cat = catalogue if catalogue is not None else load_catalogue()
    out: dict[str, Counter[str]] = {}
    for table, _, value in _stored_values(engine, cat):
        if value:
            out.setdefault(table, Counter())[key_id_of(value) or "plaintext"] += 1
    return out


def unknown_key_ids(engine: Any, ring: KeyRing) -> set[str]:
    """Key ids that stored credentials name but ``ring`` lacks: a start with a lost or wrong
    key file must stop rather than fail on every later connection request. Cheap: one
    DISTINCT over a prefix per credential table."""
    t = _tables()
    found: set[str] = set()
    with engine.connect() as conn:
        for column in (t.cpe_credentials.c.password, t.connection_request_credentials.c.password):
            head = sa.func.substr(column, 1, len(PREFIX) + 9)
            for (value,) in conn.execute(sa.select(head).where(column.like(PREFIX + "%")).distinct()):
                key_id = key_id_of(value)
                if key_id is not None and ring.get(key_id) is None:
                    found.add(key_id)
    return found


@dataclass(frozen=True, slots=True)
class RotationReport:
    new_key_id: str
    old_key_ids: tuple[str, ...]
    reencrypted: Mapping[str, int]
    remaining: int  # values still under an old key or in plain text after the pass
    dropped_old: bool

    def to_json(self) -> dict[str, Any]:
        return {"new_key_id": self.new_key_id, "old_key_ids": list(self.old_key_ids),
                "reencrypted": dict(self.reencrypted), "remaining": self.remaining,
                "dropped_old_keys": self.dropped_old}


def _recode(codec: EncryptingCodec, value: str) -> str | None:
    if not value or key_id_of(value) == codec.ring.primary_id:
        return None
    return codec.encode(codec.decode(value))


def _reencrypt(engine: Any, codec: EncryptingCodec, catalogue: Catalogue) -> Counter[str]:
    """One pass: every stored secret not under the primary key is re-encrypted with it.
    Each row is updated only if it still holds the value read (a concurrent write wins)."""
    t = _tables()
    done: Counter[str] = Counter()
    rows = list(_stored_values(engine, catalogue))
    sealed_tables = {"jobs": t.jobs, "assignments": t.assignments}
    touched = {(table, key[0]) for table, key, value in rows
               if table in sealed_tables and _recode(codec, value) is not None}
    with engine.begin() as conn:
        for table, key, value in rows:
            new = _recode(codec, value)
            if new is None or table in sealed_tables:
                continue
            if table == "cpe_credentials":
                c = t.cpe_credentials.c
                stmt = sa.update(t.cpe_credentials).where(c.key == key, c.password == value).values(password=new)
            elif table == "connection_request_credentials":
                c = t.connection_request_credentials.c
                stmt = (sa.update(t.connection_request_credentials)
                        .where(c.device_id == key, c.password == value).values(password=new))
            elif table == "device_files":
                c = t.device_files.c
                stmt = sa.update(t.device_files).where(c.id == key, c.content == value).values(content=new)
            elif table == "config_blobs":
                c = t.config_blobs.c
                stmt = sa.update(t.config_blobs).where(c.sha256 == key, c.content == value).values(content=new)
            else:
                c = t.device_parameters.c
                stmt = (sa.update(t.device_parameters)
                        .where(c.device_id == key[0], c.name == key[1], c.value == value).values(value=new))
            done[table] += conn.execute(stmt).rowcount
        for table_name, row_id in sorted(touched):
            table = sealed_tables[table_name]
            text = conn.execute(sa.select(table.c.policy).where(table.c.id == row_id)).scalar_one()
            policy = seal_policy(unseal_policy(json.loads(text), codec), codec, catalogue)
            conn.execute(sa.update(table).where(table.c.id == row_id, table.c.policy == text)
                         .values(policy=json.dumps(policy)))
            done[table_name] += sum(len(v) for v in policy.get("sealed", {}).values())
    return done


def rotate_secrets(engine: Any, key_file: Path, *, keep_old: bool = False,
                   random_bytes: Callable[[int], bytes] = os.urandom,
                   catalogue: Catalogue | None = None) -> RotationReport:
    """Rotate: a new primary key goes first in the key file (the old ones stay, so every
    process can still read everything), every stored secret is re-encrypted with it, and,
    once a scan finds nothing left under an old key, the old keys are dropped from the file
    (unless ``keep_old``). Raises KeyFileError; ValueError when a stored value does not
    decrypt with any key (nothing is changed then)."""
    cat = catalogue if catalogue is not None else load_catalogue()
    old = read_key_file(key_file)
    codec = EncryptingCodec(old, random_bytes=random_bytes)
    for _, _, value in _stored_values(engine, cat):  # refuse before touching anything
        codec.decode(value)
    ring = old.with_primary(random_bytes(KEY_BYTES))
    write_key_file(key_file, ring)
    codec = EncryptingCodec(ring, random_bytes=random_bytes)
    done = _reencrypt(engine, codec, cat)
    left = sum(n for counts in scan_secrets(engine, catalogue=cat).values()
               for key_id, n in counts.items() if key_id != ring.primary_id)
    dropped = False
    if not keep_old and left == 0:
        write_key_file(key_file, KeyRing(ring.keys[:1]))
        dropped = True
    return RotationReport(ring.primary_id, old.ids, dict(done), left, dropped)
