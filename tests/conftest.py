"""Shared test fixtures.

PostgreSQL tests run against the server ``ACS_TEST_POSTGRES_URL`` names, else against
``postgresql://postgres@127.0.0.1:5432/test`` when a server answers there (a developer
machine or CI with PostgreSQL running); ``ACS_TEST_POSTGRES_URL=off`` turns them off. Where
no server answers they are skipped with that reason, never faked. The run's header and its
last line say which store backends ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BBF = DATA / "bbf"


@pytest.fixture(scope="session")
def bbf_dir() -> Path:
    return BBF


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_postgres: dict[str, str | None] = {}


def _find_postgres() -> tuple[str | None, str]:
    """(URL, why) of the PostgreSQL server the tests use, or (None, why not)."""
    if "url" in _postgres:
        return _postgres["url"], _postgres["why"] or ""
    named = os.environ.get("ACS_TEST_POSTGRES_URL", "").strip()
    if named.lower() in ("off", "none", "0", "no"):
        url, why = None, "turned off by ACS_TEST_POSTGRES_URL"
    else:
        candidate = named or DEFAULT_POSTGRES_URL
        try:
            import psycopg

            psycopg.connect(candidate, connect_timeout=3).close()
            url, why = candidate, "named by ACS_TEST_POSTGRES_URL" if named else "answering at the default address"
        except Exception as exc:  # noqa: BLE001 - any failure means: no server for this run
            url = None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            why = f"no PostgreSQL server answered at {_safe(candidate)} ({first})"
    _postgres.update(url=url, why=why)
    return url, why


def _safe(url: str) -> str:
    import sqlalchemy as sa

    from acs_security.store.engine import safe_url

    try:
        return safe_url(sa.make_url(url))
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its user part
        return url.rsplit("@", 1)[-1]


def pytest_report_header(config: pytest.Config) -> str:
    return _backends_line()


def _backends_line() -> str:
    url, why = _find_postgres()
    if url is not None:
        return f"store backends: SQLite and PostgreSQL ({_safe(url)}, {why})"
    return f"store backends: SQLite only; PostgreSQL tests skipped: {why}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(_backends_line())


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url, why = _find_postgres()
    if url is None:
        pytest.skip(why)
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


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    """The haproxy binary, installed (Debian package) when missing and this run is root with
    apt-get, as in CI (.ci/run installs it too). A test that needs it fails, with how to get
    it, where it cannot be had: HAProxy is the production load balancer, never skipped."""
    from acs_security.sim.haproxy import HaproxyUnavailable, find_haproxy

    try:
        return find_haproxy()
    except HaproxyUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A development PKI made by ``acs-security certs dev-ca``: the CA the phones trust, the
    server certificate of acs.example.net (and the loopback names) and HAProxy's PEM (chain
    and key in one file), and client certificates for the simulated phones SIM00000000-SIM00000039."""
    from acs_security.cli import main
    from acs_security.sim.build import serial_for

    root = tmp_path_factory.mktemp("pki")
    serials = ",".join(serial_for("SIM", i) for i in range(40))
    code = main(["certs", "dev-ca", "--out", str(root / "pki"), "--server-cn", "acs.example.net",
                 "--serial", serials])
    assert code == 0, "acs-security certs dev-ca failed"
    pki = root / "pki"
    crt = root / "acs.pem"
    crt.write_bytes((pki / "server.pem").read_bytes() + (pki / "server.key").read_bytes())
    crt.chmod(0o600)
    return {"ca": pki / "ca.pem", "crt": crt, "server_cert": pki / "server.pem",
            "server_key": pki / "server.key", "devices": pki / "devices"}


@pytest.fixture(autouse=True)
def _stun_on_an_os_chosen_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers that tests start keep the STUN server (server/stun.py) but on loopback and a
    port the OS picks, not the well-known 0.0.0.0:3478 (tests run side by side)."""
    import dataclasses

    import acs_security.server.requesters as requesters
    from acs_security.server.config import Endpoint

    real = requesters.start_stun

    def start(config: Any, *args: Any, **kwargs: Any) -> Any:
        if config.stun_listen == Endpoint("0.0.0.0", 3478):
            config = dataclasses.replace(config, stun_listen=Endpoint("127.0.0.1", 0))
        return real(config, *args, **kwargs)

    monkeypatch.setattr(requesters, "start_stun", start)
