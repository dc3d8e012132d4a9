"""Benchmarks of acs-security (``make bench``, ``make bench-quick``): figures next to their
baselines, printed as a table and written to ``bench/results/``. Never part of the test run.

Run from the repository root: ``.venv/bin/python -m bench.run [--quick]``. See
``docs/performance.md`` for what each figure means.
"""

__all__: list[str] = []
