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


def _tolerate_zope_class_provides() -> None:
    """Importing ``twisted.internet.testing`` (treq.testing does) makes zope.interface put a
    ``__provides__`` descriptor on ``collections.abc`` classes; xmlschema 4 lists a schema
    class's cached properties with ``getattr`` over ``dir(cls)``, which then raises
    AttributeError for that name. Skip names that cannot be read, as the lookup intends."""
    from functools import cached_property

    try:
        from xmlschema.validators import xsdbase
    except ImportError:  # pragma: no cover - xmlschema is a test dependency
        return
    owner = next((c for c in vars(xsdbase).values()
                  if isinstance(c, type) and "_cached_properties" in vars(c)), None)
    if owner is None:  # a later xmlschema may not have the helper any more
        return

    def _cached_properties(cls):  # type: ignore[no-untyped-def]
        for name in dir(cls):
            try:
                value = getattr(cls, name)
            except AttributeError:
                continue
            if isinstance(value, cached_property):
                yield name

    owner._cached_properties = classmethod(_cached_properties)  # type: ignore[attr-defined]


_tolerate_zope_class_provides()
