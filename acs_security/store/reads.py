"""Reads for people looking at the fleet (a mixin of the Store): devices by id, a device's
jobs, and a job's outcomes over time.

The web console's device and job pages need these; each is one or two indexed queries, so a
page costs the same on a fleet of 100 or 100,000 phones (the outcomes are counted per time
bucket in the database, not read row by row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from acs_security.store import schema as t
from acs_security.store.errors import InvalidArgument
from acs_security.store.jobrecords import TaskRecord
from acs_security.store.jobrecords import task_from_row as _task
from acs_security.store.records import Device, check_aware, check_text

__all__ = ["DeviceTask", "ReadsMixin", "MAX_IDS"]

#: Ids per devices_by_ids call (both backends cap the bound parameters of a statement).
MAX_IDS = 10_000


@dataclass(frozen=True, slots=True)
class DeviceTask:
    """One job's task for a device, with what names the job."""

    job_id: int
    job_name: str
    job_state: str
    job_created_at: datetime
    task: TaskRecord


def _epoch(column: Any, dialect: str) -> Any:
    """Whole seconds since 1970 of a UTCDateTime column (stored as naive UTC)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", column), sa.Integer)


class ReadsMixin:
    """Read methods of the Store for the console. Each raises StoreError (InvalidArgument for
    bad arguments)."""

    _read: Any
    _device: Any

    def devices_by_ids(self, ids: Sequence[str]) -> list[Device]:
        """The devices of ``ids`` that exist, in id order."""
        if isinstance(ids, str):
            raise InvalidArgument("ids must be a sequence of device ids, not one string")
        wanted = [check_text("device_id", i, empty=False) for i in ids]
        if len(wanted) > MAX_IDS:
            raise InvalidArgument(f"at most {MAX_IDS} device ids per call, got {len(wanted)}")
        if not wanted:
            return []
        d, tg = t.devices.c, t.device_tags.c
        with self._read("read devices") as conn:
            rows = conn.execute(sa.select(t.devices).where(d.id.in_(wanted)).order_by(d.id)).all()
            tags: dict[str, list[str]] = {row.id: [] for row in rows}
            for device_id, tag in conn.execute(sa.select(tg.device_id, tg.tag).where(tg.device_id.in_(wanted))):
                tags[device_id].append(tag)
        return [self._device(row, tags[row.id]) for row in rows]

    def device_models(self) -> dict[tuple[str, str | None], int]:
        """{(product class, firmware): devices} of the whole fleet, counted in the database."""
        d = t.devices.c
        query = sa.select(d.product_class, d.software_version, sa.func.count()).group_by(
            d.product_class, d.software_version)
        with self._read("count devices by model") as conn:
            return {(pc, fw): int(n) for pc, fw, n in conn.execute(query)}

    def device_job_history(self, device_id: str, *, limit: int = 50) -> list[DeviceTask]:
        """The device's tasks in every job, newest job first."""
        check_text("device_id", device_id, empty=False)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidArgument("limit must be 1-1000")
        j, c = t.jobs.c, t.tasks.c
        query = (sa.select(t.tasks, j.name.label("job_name"), j.state.label("job_state"),
                           j.created_at.label("job_created_at"))
                 .join(t.jobs, j.id == c.job_id).where(c.device_id == device_id)
                 .order_by(c.job_id.desc()).limit(limit))
        with self._read("list a device's tasks") as conn:
            rows = conn.execute(query).all()
        return [DeviceTask(r.job_id, r.job_name, r.job_state, r.job_created_at, _task(r)) for r in rows]

    def task_outcomes_over_time(self, job_id: int, *, origin: datetime,
                                bucket_seconds: int) -> dict[tuple[int, str], int]:
        """{(bucket, state): tasks} of the job's finished tasks, bucket ``n`` holding those
        that finished ``n * bucket_seconds`` to ``(n + 1) * bucket_seconds`` seconds after
        ``origin`` (whole seconds)."""
        check_aware("origin", origin)
        if isinstance(bucket_seconds, bool) or not isinstance(bucket_seconds, int) or bucket_seconds < 1:
            raise InvalidArgument("bucket_seconds must be a positive integer")
        c = t.tasks.c
        with self._read("count a job's outcomes over time") as conn:
            since = _epoch(c.finished_at, conn.dialect.name) - int(origin.timestamp())
            bucket = (since // bucket_seconds).label("bucket")
            query = (sa.select(bucket, c.state, sa.func.count())
                     .where(c.job_id == int(job_id), c.finished_at.is_not(None))
                     .group_by(bucket, c.state))
            rows = conn.execute(query).all()
        return {(max(0, int(b)), state): int(n) for b, state, n in rows}
