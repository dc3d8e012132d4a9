"""Files served to one phone each, and configuration backups (a mixin of :class:`Store`).

A *file* row is what a Download points at (a rendered cfg.xml) or where an Upload puts the
phone's configuration: its device, its kind, the transfer's CommandKey, how the phone
proves itself (HTTP digest with its own credential, or a signed single-use URL), the
content (encoded with the store's SecretCodec: it may hold passwords) and its life:
offered -> fetched -> completed | failed, or expired. The URL's token is derived from the
row and a server key (acs_security/files/tokens.py), so nothing that opens a file is stored.

A *backup* is a numbered version of a phone's uploaded configuration. Contents are kept
once per distinct SHA-256 (``config_blobs``) however many versions and phones share them;
an upload equal to the phone's latest version only confirms it (``confirmed_at``,
``uploads``); versions beyond the retention are dropped with the contents nobody uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument, StoreError
from acs_security.store.records import check_aware, check_text

__all__ = ["BackupRecord", "FileRecord", "FilesMixin", "FILE_KINDS", "FILE_AUTH", "LIVE_FILE_STATES"]

FILE_KINDS = ("download", "upload")
FILE_AUTH = ("digest", "signed")
#: A file in these states may still be fetched (or uploaded to).
LIVE_FILE_STATES = ("offered", "fetched")
_FINAL_FILE_STATES = ("completed", "failed", "expired")
MAX_BACKUP_PAGE = 1000


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: int
    device_id: str
    kind: str
    job_id: int | None
    command_key: str
    auth: str
    sha256: str | None
    size: int
    state: str
    fetches: int
    created_at: datetime
    expires_at: datetime
    fetched_at: datetime | None
    completed_at: datetime | None
    fault_code: int | None
    detail: str | None
    backup_id: int | None
    content: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class BackupRecord:
    id: int
    device_id: str
    version: int
    sha256: str
    size: int
    created_at: datetime
    confirmed_at: datetime
    uploads: int
    job_id: int | None
    report: dict[str, Any]
    content: str | None = field(default=None, repr=False)


class FilesMixin:
    """File and backup methods of the Store (uses its ``_read``/``_write``/``_codec``)."""

    _read: Any
    _write: Any
    _now: Any
    _codec: Any
    _require_device: Any

    # -- files ----------------------------------------------------------------------------

    def _file(self, row: Any, *, with_content: bool = True) -> FileRecord:
        content = None
        if with_content and row.content is not None:
            try:
                content = self._codec.decode(row.content)
            except Exception:  # noqa: BLE001 - the codec's error may quote the ciphertext: do not chain it
                raise StoreError(f"cannot decode the content of file {row.id}") from None
        return FileRecord(
            id=row.id, device_id=row.device_id, kind=row.kind, job_id=row.job_id,
            command_key=row.command_key, auth=row.auth, sha256=row.sha256, size=row.size,
            state=row.state, fetches=row.fetches, created_at=row.created_at,
            expires_at=row.expires_at, fetched_at=row.fetched_at, completed_at=row.completed_at,
            fault_code=row.fault_code, detail=row.detail, backup_id=row.backup_id, content=content)

    def create_file(self, *, device_id: str, kind: str, command_key: str, auth: str,
                    expires_at: datetime, job_id: int | None = None,
                    content: str | None = None, now: datetime | None = None) -> FileRecord:
        """Offer a file to one device (a download's content, or an upload's place), created
        ``now`` (default: the store's clock; the job engine gives its own).

        Raises UnknownDevice, InvalidArgument, StoreError."""
        if kind not in FILE_KINDS:
            raise InvalidArgument(f"file kind {kind!r} is not one of {', '.join(FILE_KINDS)}")
        if auth not in FILE_AUTH:
            raise InvalidArgument(f"file auth {auth!r} is not one of {', '.join(FILE_AUTH)}")
        check_text("command_key", command_key)
        check_aware("expires_at", expires_at)
        if kind == "download" and content is None:
            raise InvalidArgument("a download needs its content")
        if content is not None:
            check_text("content", content)
        data = content.encode("utf-8") if content is not None else b""
        now = check_aware("now", now) if now is not None else self._now()
        row = {
            "device_id": device_id, "kind": kind, "job_id": job_id, "command_key": command_key,
            "auth": auth, "content": self._codec.encode(content) if content is not None else None,
            "sha256": hashlib.sha256(data).hexdigest() if content is not None else None,
            "size": len(data), "state": "offered", "fetches": 0, "created_at": now,
            "expires_at": expires_at,
        }
        with self._write("offer a file") as conn:
            self._require_device(conn, device_id)
            file_id = conn.execute(sa.insert(t.device_files).values(**row)).inserted_primary_key[0]
            stored = conn.execute(sa.select(t.device_files).where(t.device_files.c.id == file_id)).one()
        return self._file(stored)

    def get_file(self, file_id: int) -> FileRecord | None:
        """The file with its content (decoded), or None."""
        with self._read("read a file") as conn:
            row = conn.execute(sa.select(t.device_files).where(t.device_files.c.id == int(file_id))).first()
        return self._file(row) if row is not None else None

    def device_file(self, device_id: str, *, kind: str | None, job_id: int | None = None,
                    command_key: str | None = None, live: bool = False) -> FileRecord | None:
        """The device's newest file of ``kind`` (None: either; for a job, or a CommandKey),
        without its content; only one still offered or fetched with ``live``."""
        c = t.device_files.c
        query = sa.select(t.device_files).where(c.device_id == device_id)
        if kind is not None:
            query = query.where(c.kind == kind)
        if job_id is not None:
            query = query.where(c.job_id == job_id)
        if command_key is not None:
            query = query.where(c.command_key == command_key)
        if live:
            query = query.where(c.state.in_(LIVE_FILE_STATES))
        with self._read("find a device's file") as conn:
            row = conn.execute(query.order_by(c.id.desc()).limit(1)).first()
        return self._file(row, with_content=False) if row is not None else None

    def live_files(self, device_id: str, *, kind: str, key_prefix: str) -> list[FileRecord]:
        """The device's files of ``kind`` still offered or fetched whose CommandKey starts
        with ``key_prefix`` (an assignment's transfers), oldest first, without content."""
        check_text("key_prefix", key_prefix, empty=False)
        c = t.device_files.c
        query = (sa.select(t.device_files)
                 .where(c.device_id == device_id, c.kind == kind, c.state.in_(LIVE_FILE_STATES),
                        c.command_key.startswith(key_prefix, autoescape=True))
                 .order_by(c.id))
        with self._read("find a device's live files") as conn:
            return [self._file(row, with_content=False) for row in conn.execute(query)]

    def prune_files(self, device_id: str, *, key_prefix: str, keep: int) -> int:
        """Delete the device's finished files whose CommandKey starts with ``key_prefix``
        beyond the newest ``keep`` (an assignment's transfers have no job to go with);
        returns how many were deleted."""
        check_text("key_prefix", key_prefix, empty=False)
        if keep < 0:
            raise InvalidArgument("keep must not be negative")
        c = t.device_files.c
        mine = sa.and_(c.device_id == device_id, c.state.in_(_FINAL_FILE_STATES),
                       c.command_key.startswith(key_prefix, autoescape=True))
        with self._write("prune a device's files") as conn:
            kept = [row.id for row in conn.execute(
                sa.select(c.id).where(mine).order_by(c.id.desc()).limit(keep))]
            query = sa.delete(t.device_files).where(mine)
            if kept:
                query = query.where(c.id.not_in(kept))
            return int(conn.execute(query).rowcount or 0)

    def count_files(self, device_id: str, *, job_id: int, kind: str) -> int:
        """How many transfers of ``kind`` a job has offered the device."""
        c = t.device_files.c
        query = sa.select(sa.func.count()).select_from(t.device_files).where(
            c.job_id == job_id, c.device_id == device_id, c.kind == kind)
        with self._read("count a device's files") as conn:
            return int(conn.execute(query).scalar_one())

    def note_fetch(self, file_id: int, *, now: datetime, single_use: bool) -> str:
        """Record that the phone fetched its file (or began its upload): "ok", "used" when
        a single-use file was fetched before, "gone" when it is over or expired."""
        check_aware("now", now)
        c = t.device_files.c
        cond = [c.id == int(file_id), c.state.in_(LIVE_FILE_STATES), c.expires_at > now]
        if single_use:
            cond.append(c.fetches == 0)
        with self._write("record a file fetch") as conn:
            changed = conn.execute(
                sa.update(t.device_files).where(*cond).values(
                    fetches=c.fetches + 1, state="fetched",
                    fetched_at=sa.func.coalesce(c.fetched_at, now))).rowcount
            if changed:
                return "ok"
            row = conn.execute(sa.select(c.state, c.fetches, c.expires_at).where(c.id == int(file_id))).first()
        if row is not None and single_use and row.state in LIVE_FILE_STATES and row.fetches and row.expires_at > now:
            return "used"
        return "gone"

    def finish_file(self, file_id: int, *, state: str, fault_code: int | None = None,
                    detail: str | None = None) -> bool:
        """End a file's life (completed, failed or expired): its content is dropped (a file
        is kept until its transfer is over); False when it had ended."""
        if state not in _FINAL_FILE_STATES:
            raise InvalidArgument(f"file state {state!r} is not one of {', '.join(_FINAL_FILE_STATES)}")
        c = t.device_files.c
        with self._write("end a file") as conn:
            return conn.execute(
                sa.update(t.device_files).where(c.id == int(file_id), c.state.in_(LIVE_FILE_STATES))
                .values(state=state, completed_at=self._now(), fault_code=fault_code, detail=detail,
                        content=None)).rowcount == 1

    def overdue_transfers(self, *, now: datetime, transfer_timeout: float,
                          fetch_wait: float | None = None) -> list[tuple[int, str, str, str]]:
        """Transfers that went quiet, ended in one transaction with their tasks:

        - a file never fetched before it expired, or within ``fetch_wait`` seconds of its
          offer: nothing reached the phone, so the file is withdrawn (its URL answers 410
          from now on) and its task (if it waits for the transfer) is pending again: the
          transfer is offered anew;
        - a file fetched (or uploaded to) ``transfer_timeout`` seconds ago without a
          TransferComplete: the task is faulted.

        Returns (job id, device id, "transfer_lost" | "transfer_failed", detail) for each
        task changed."""
        check_aware("now", now)
        c, tc = t.device_files.c, t.tasks.c
        stale = now - timedelta(seconds=transfer_timeout)
        out: list[tuple[int, str, str, str]] = []
        with self._write("end overdue transfers") as conn:
            late = c.expires_at <= now
            if fetch_wait is not None:
                late = sa.or_(late, c.created_at <= now - timedelta(seconds=fetch_wait))
            lost = conn.execute(sa.select(c.id, c.job_id, c.device_id, c.kind).where(
                c.state == "offered", late)).all()
            quiet = conn.execute(sa.select(c.id, c.job_id, c.device_id, c.kind, c.fetched_at).where(
                c.state == "fetched", c.created_at <= stale)).all()
            for row in lost:
                what = "file" if row.kind == "download" else "upload place"
                detail = f"the phone did not fetch its {what} in time; offered again"
                # Conditional: a fetch committed since the select (PostgreSQL reads committed
                # data) wins, and the file stays the phone's.
                if not conn.execute(sa.update(t.device_files).where(c.id == row.id, c.state == "offered").values(
                        state="expired", completed_at=now, detail="never fetched", content=None)).rowcount:
                    continue
                if row.job_id is not None and conn.execute(
                        sa.update(t.tasks).where(tc.job_id == row.job_id, tc.device_id == row.device_id,
                                                 tc.state == "transferring")
                        .values(state="pending", detail=detail, updated_at=now, next_attempt=None)).rowcount:
                    out.append((row.job_id, row.device_id, "transfer_lost", detail))
            for row in quiet:
                detail = (f"no TransferComplete within {transfer_timeout:.0f} s of the "
                          f"{'Download' if row.kind == 'download' else 'Upload'}")
                if not conn.execute(sa.update(t.device_files).where(c.id == row.id, c.state == "fetched").values(
                        state="failed", completed_at=now, detail=detail, content=None)).rowcount:
                    continue
                if row.job_id is not None and conn.execute(
                        sa.update(t.tasks).where(tc.job_id == row.job_id, tc.device_id == row.device_id,
                                                 tc.state == "transferring")
                        .values(state="faulted", detail=detail, updated_at=now, finished_at=now,
                                claimed_by=None, claim_until=None)).rowcount:
                    out.append((row.job_id, row.device_id, "transfer_failed", detail))
        return out

    # -- backups --------------------------------------------------------------------------

    def _backup(self, row: Any, content: str | None = None) -> BackupRecord:
        return BackupRecord(
            id=row.id, device_id=row.device_id, version=row.version, sha256=row.sha256,
            size=row.size, created_at=row.created_at, confirmed_at=row.confirmed_at,
            uploads=row.uploads, job_id=row.job_id, report=json.loads(row.report), content=content)

    @staticmethod
    def _backup_query() -> Any:
        b, blob = t.config_backups.c, t.config_blobs.c
        return (sa.select(t.config_backups, blob.size)
                .join(t.config_blobs, blob.sha256 == b.sha256))

    def store_backup(self, *, device_id: str, content: str, report: dict[str, Any], keep: int,
                     job_id: int | None = None, file_id: int | None = None,
                     now: datetime | None = None) -> tuple[BackupRecord, bool]:
        """Keep an uploaded configuration: (its version, True when it is a new version).

        The same content as the device's latest version confirms that version; a new one
        is numbered after it; versions beyond the newest ``keep`` are dropped, and contents
        no version uses any more. With ``file_id`` the upload's file row is marked fetched.
        Raises UnknownDevice, InvalidArgument, StoreError."""
        check_text("content", content)
        if not 1 <= keep <= 10_000:
            raise InvalidArgument(f"keep must be 1-10000, got {keep}")
        report_text = json.dumps(report, sort_keys=True)
        check_text("report", report_text)
        data = content.encode("utf-8")
        sha = hashlib.sha256(data).hexdigest()
        now = check_aware("now", now) if now is not None else self._now()
        b, blob = t.config_backups.c, t.config_blobs.c
        with self._write("store a backup") as conn:
            self._require_device(conn, device_id)
            if conn.execute(sa.select(blob.sha256).where(blob.sha256 == sha)).first() is None:
                conn.execute(sa.insert(t.config_blobs).values(
                    sha256=sha, content=self._codec.encode(content), size=len(data), created_at=now))
            latest = conn.execute(sa.select(t.config_backups).where(b.device_id == device_id)
                                  .order_by(b.version.desc()).limit(1)).first()
            new = latest is None or latest.sha256 != sha
            if new:
                version = (latest.version if latest is not None else 0) + 1
                backup_id = conn.execute(sa.insert(t.config_backups).values(
                    device_id=device_id, version=version, sha256=sha, created_at=now, confirmed_at=now,
                    uploads=1, job_id=job_id, report=report_text)).inserted_primary_key[0]
            else:
                assert latest is not None
                backup_id = latest.id
                conn.execute(sa.update(t.config_backups).where(b.id == backup_id).values(
                    confirmed_at=now, uploads=b.uploads + 1, report=report_text))
            old = conn.execute(sa.select(b.id, b.sha256).where(b.device_id == device_id)
                               .order_by(b.version.desc()).offset(keep)).all()
            if old:
                conn.execute(sa.delete(t.config_backups).where(b.id.in_([r.id for r in old])))
                for digest in {r.sha256 for r in old}:
                    if conn.execute(sa.select(b.id).where(b.sha256 == digest).limit(1)).first() is None:
                        conn.execute(sa.delete(t.config_blobs).where(blob.sha256 == digest))
            if file_id is not None:
                f = t.device_files.c
                conn.execute(sa.update(t.device_files).where(f.id == int(file_id)).values(
                    backup_id=backup_id, state="fetched", fetches=f.fetches + 1,
                    fetched_at=sa.func.coalesce(f.fetched_at, now), sha256=sha, size=len(data)))
            row = conn.execute(self._backup_query().where(b.id == backup_id)).one()
        return self._backup(row), new

    def list_backups(self, *, device_id: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[BackupRecord]:
        """Backup versions (no content), newest first: of one device, or of every device."""
        if not 1 <= limit <= MAX_BACKUP_PAGE:
            raise InvalidArgument(f"limit must be 1-{MAX_BACKUP_PAGE}, got {limit}")
        b = t.config_backups.c
        query = self._backup_query().order_by(b.created_at.desc(), b.id.desc()).limit(limit).offset(offset)
        if device_id is not None:
            query = query.where(b.device_id == device_id)
        with self._read("list backups") as conn:
            return [self._backup(r) for r in conn.execute(query)]

    def count_backups(self, *, device_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(t.config_backups)
        if device_id is not None:
            query = query.where(t.config_backups.c.device_id == device_id)
        with self._read("count backups") as conn:
            return int(conn.execute(query).scalar_one())

    def get_backup(self, device_id: str, version: int | None = None) -> BackupRecord | None:
        """One version of a device's backup with its content (the latest when ``version``
        is None), or None."""
        b, blob = t.config_backups.c, t.config_blobs.c
        query = (sa.select(t.config_backups, blob.size, blob.content.label("blob"))
                 .join(t.config_blobs, blob.sha256 == b.sha256).where(b.device_id == device_id))
        query = query.where(b.version == int(version)) if version is not None else query.order_by(b.version.desc())
        with self._read("read a backup") as conn:
            row = conn.execute(query.limit(1)).first()
        if row is None:
            return None
        try:
            content = self._codec.decode(row.blob)
        except Exception:  # noqa: BLE001 - the codec's error may quote the ciphertext: do not chain it
            raise StoreError(f"cannot decode backup version {row.version} of {device_id!r}") from None
        return self._backup(row, content)

    def backup_versions(self, device_ids: Sequence[str]) -> dict[str, int]:
        """Device id -> its latest backup version, for the devices that have one."""
        b = t.config_backups.c
        query = (sa.select(b.device_id, sa.func.max(b.version)).where(b.device_id.in_(list(device_ids)))
                 .group_by(b.device_id))
        with self._read("read backup versions") as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}
