"""Shared test fixtures.

PostgreSQL tests run when ``ACS_TEST_POSTGRES_URL`` names a server (CI sets it to the
database on 127.0.0.1:5432); without it they are skipped with that reason, never faked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BBF = DATA / "bbf"


@pytest.fixture(scope="session")
def bbf_dir() -> Path:
    return BBF


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("ACS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ACS_TEST_POSTGRES_URL is not set: no PostgreSQL server named for this run")
    return url
