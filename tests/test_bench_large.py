"""bench/large.py's arguments and report (pure: no fleet is run here; `make bench-large` does)."""

from __future__ import annotations

import pytest

from bench.large import STORES, parse_args, render


def test_defaults_are_100k_phones_on_both_stores() -> None:
    args = parse_args([], env={"ACS_TEST_POSTGRES_URL": "postgresql://pg/test"})
    assert args.phones == 100_000
    assert args.stores == STORES
    assert args.postgres == "postgresql://pg/test"
    assert args.boot_ramp == 400.0  # 250 boots a second


def test_bench_postgres_url_wins_and_phones_take_underscores() -> None:
    args = parse_args(["--phones", "20_000", "--boot-ramp", "30"],
                      env={"ACS_BENCH_POSTGRES_URL": "postgresql://a/b", "ACS_TEST_POSTGRES_URL": "postgresql://c/d"})
    assert (args.phones, args.postgres, args.boot_ramp) == (20_000, "postgresql://a/b", 30.0)


def test_sqlite_alone_needs_no_postgres() -> None:
    args = parse_args(["--stores", "sqlite", "--phones", "500"], env={})
    assert args.stores == ("sqlite",) and args.postgres is None
    assert args.boot_ramp == 10.0  # never below 10 s


@pytest.mark.parametrize(("argv", "message"), [
    (["--phones", "ten"], "phones must be a whole number, got 'ten'"),
    (["--phones", "99"], "phones must be 100-1000000, got 99"),
    (["--stores", "sqlite,oracle"], "stores must be among sqlite,postgres, got 'sqlite,oracle'"),
    (["--stores", "sqlite", "--boot-ramp", "0"], "--boot-ramp must be > 0, got 0.0"),
    ([], "PostgreSQL: give --postgres URL"),
])
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv, env={})
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def _run(pps: float, rss: float) -> dict[str, float]:
    return {"phones_per_s": pps, "p50_s": 300.0, "p99_s": 700.5, "server_cpu_ms_per_phone": 6.0,
            "server_peak_rss_mb": rss, "sim_peak_rss_mb": 427.0, "store_mb": 491.2, "boot_s": 410.0}


def test_report_has_both_stores_the_ratio_and_the_rss_verdicts() -> None:
    text = render({"phones": 100_000, "runs": {"sqlite": _run(140.0, 373.0), "postgres": _run(105.0, 510.0)}})
    lines = text.splitlines()
    assert lines[0] == "100,000 phones, one node"
    assert "| figure | sqlite | postgres | unit |" in lines
    assert "| push: phones per second | 140.0 | 105.0 | /s |" in lines
    assert "| time per phone, submit to outcome p99 | 700.5 | 700.5 | s |" in lines
    assert "| store size on disk | 491.2 | 491.2 | MB |" in lines
    assert "| server peak RSS <= 500 MB (sqlite) | ok |" in lines
    assert "| server peak RSS <= 500 MB (postgres) | **missed** |" in lines
    assert "| PostgreSQL / SQLite phones per second | 0.750 | x |" in lines


def test_report_names_a_failed_store_and_gives_no_ratio() -> None:
    text = render({"phones": 2_000, "runs": {"sqlite": _run(140.0, 100.0),
                                             "postgres": {"error": "RuntimeError: job 1 ended halted"}}})
    assert "| push: phones per second | 140.0 | failed | /s |" in text
    assert "postgres: RuntimeError: job 1 ended halted" in text
    assert "PostgreSQL / SQLite" not in text
