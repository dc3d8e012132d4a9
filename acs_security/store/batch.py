"""Turning a batch of InformRecords into rows (pure: no database, no clock).

record_informs() writes a whole batch with one statement per table. A device
may inform twice in one batch (a retried session), and a multi-row
``INSERT .. ON CONFLICT DO UPDATE`` must not touch a row twice (PostgreSQL
refuses), so the records are first applied in order in memory, giving one
device row and at most one row per (device, parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from acs_security.store.records import InformRecord

__all__ = ["MergedInform", "device_row", "merge_informs"]


@dataclass(slots=True)
class MergedInform:
    """One device's informs within a batch, applied in order: the last record's
    fields, the first record's time as first_seen (used only when the device is
    new), whether any record was a bootstrap, and the parameters that survive
    it as name -> (value, xsi type, inform time)."""

    last: InformRecord
    first_seen: datetime
    bootstrap: bool
    params: dict[str, tuple[str, str, datetime]]


def merge_informs(records: Sequence[InformRecord]) -> list[MergedInform]:
    """Apply the records in order per device; one MergedInform per device, by device id."""
    merged: dict[str, MergedInform] = {}
    for rec in records:
        m = merged.get(rec.device_id)
        if m is None:
            m = merged[rec.device_id] = MergedInform(rec, rec.inform_time, False, {})
        m.last = rec
        if rec.bootstrap:
            # TR-069 Inform event "0 BOOTSTRAP" (shared/reference/cwmp.md,
            # Events): the device is new or was factory reset; what the ACS
            # believed about its values is void.
            m.bootstrap = True
            m.params.clear()
        for name, value, xsi_type in rec.parameters:
            m.params[name] = (value, xsi_type, rec.inform_time)
    # Rows are written in key order so that concurrent batches (several ACS
    # nodes on one PostgreSQL) lock rows in the same order and cannot deadlock.
    return [merged[device_id] for device_id in sorted(merged)]


def device_row(m: MergedInform) -> dict[str, Any]:
    """The ``devices`` row for a merged inform (keys = column names)."""
    last = m.last
    return {
        "id": last.device_id,
        "oui": last.oui,
        "product_class": last.product_class,
        "serial_number": last.serial_number,
        "manufacturer": last.manufacturer,
        "software_version": last.software_version,
        "connection_request_url": last.connection_request_url,
        "udp_connection_request_address": last.udp_connection_request_address,
        "parameter_key": last.parameter_key,
        "last_events": last.events,
        "first_seen": m.first_seen,
        "last_inform": last.inform_time,
        "remote_address": last.remote_address,
        "xmpp_jid": last.xmpp_jid,
    }
