"""Store fixtures: every store test runs on SQLite (a file in tmp_path) and on
PostgreSQL (a fresh schema per test, selected with search_path through the
URL's libpq ``options``; skipped only when ACS_TEST_POSTGRES_URL is unset)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from acs_security.store import InformRecord, Store, make_device_id, open_store

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CISCO_OUI = "00562B"
CISCO_CLASS = "CP-8841-3PCC"


class FakeClock:
    """The store's clock, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def inform(
    serial: str,
    *,
    at: datetime = T0,
    product_class: str = CISCO_CLASS,
    software_version: str | None = "12.0.1",
    params: tuple[tuple[str, str, str], ...] = (),
    events: tuple[str, ...] = ("2 PERIODIC",),
    bootstrap: bool = False,
    connection_request_url: str | None = "http://192.0.2.10:7547/cr",
    remote_address: str | None = "192.0.2.10",
    parameter_key: str | None = "",
) -> InformRecord:
    return InformRecord(
        device_id=make_device_id(CISCO_OUI, product_class, serial),
        oui=CISCO_OUI,
        product_class=product_class,
        serial_number=serial,
        manufacturer="Cisco Systems, Inc.",
        software_version=software_version,
        connection_request_url=connection_request_url,
        udp_connection_request_address=None,
        parameter_key=parameter_key,
        events=events,
        inform_time=at,
        remote_address=remote_address,
        parameters=params,
        bootstrap=bootstrap,
    )


def _postgres_schema_url(base: str) -> Iterator[str]:
    schema = f"acs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'acs.db'}"
    else:
        yield from _postgres_schema_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(store_url, clock=clock)
    try:
        yield s
    finally:
        s.close()
