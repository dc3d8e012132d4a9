"""Fixtures of the CWMP tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cwmp.xsd import CwmpSchemas

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def schemas(bbf_dir: Path) -> CwmpSchemas:
    return CwmpSchemas(bbf_dir)


@pytest.fixture(scope="session")
def cwmp_data() -> Path:
    return DATA
