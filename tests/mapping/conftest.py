"""Fixtures of the data-model tests: the real catalogue, and a scratch copy to change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acs_security.mapping import Catalogue, load_catalogue
from acs_security.mapping.paths import datamodel_dir

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture()
def datamodel_copy(tmp_path: Path) -> Path:
    """A copy of datamodel/ (without overrides) that a test may edit and load."""
    target = tmp_path / "datamodel"
    shutil.copytree(datamodel_dir(), target, ignore=shutil.ignore_patterns("overrides", "examples"))
    (target / "overrides").mkdir()
    return target
