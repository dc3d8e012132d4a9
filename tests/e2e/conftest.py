"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import os
import time

import psycopg
import pytest


@pytest.fixture
def pg_db(postgres_url: str):
    """A fresh PostgreSQL schema for a cluster of nodes (dropped afterwards); its URL."""
    schema = f"cluster_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
