"""The project's packaging and test set-up, as a new user meets them."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_license_is_an_spdx_expression_not_a_deprecated_table() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    # SPDX strings need setuptools 77 (PEP 639); an older one would reject the string.
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in meta["build-system"]["requires"])


def _run_store_tests(url: str) -> str:
    env = {**os.environ, "ACS_TEST_POSTGRES_URL": url}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/store/test_claims.py"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_run_says_which_store_backends_ran() -> None:
    off = _run_store_tests("off")
    assert "store backends: SQLite only; PostgreSQL tests skipped: turned off by ACS_TEST_POSTGRES_URL" in off
    refused = _run_store_tests("postgresql://acs:s3cret@127.0.0.1:1/none")
    assert "store backends: SQLite only; PostgreSQL tests skipped: no PostgreSQL server answered at " \
           "postgresql://acs:***@127.0.0.1:1/none" in refused
    assert "s3cret" not in refused
