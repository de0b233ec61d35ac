"""PostgreSQL for the `db_url` fixture: a schema of its own per test, on the server named by
MODEL_MONITOR_TEST_POSTGRES_URL; without one the PostgreSQL runs are skipped, or fail
when MODEL_MONITOR_REQUIRE_POSTGRES=1 (CI)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("MODEL_MONITOR_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("MODEL_MONITOR_REQUIRE_POSTGRES") == "1"


def _postgres_available() -> bool:
    if not POSTGRES_URL:
        return False
    try:
        with create_engine(POSTGRES_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        if REQUIRE_POSTGRES:
            raise
        return False


@contextmanager
def postgres_schema(prefix: str = "mm_test") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards;
    skips the test when no server is configured."""
    if not _postgres_available():
        pytest.skip("set MODEL_MONITOR_TEST_POSTGRES_URL to run against PostgreSQL")
    assert POSTGRES_URL is not None
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
