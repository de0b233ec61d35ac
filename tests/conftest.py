"""Shared fixtures: real databases (SQLite files, PostgreSQL schemas), a gateway simulator
and a webhook receiver on loopback, and a writer for config files."""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, make_url, select, text

from monitor.sim import GatewaySimulator, WebhookReceiver
from tests.smtp_sink import smtp_server  # noqa: F401 - a fixture, shared by name

POSTGRES_URL = os.environ.get("MODEL_MONITOR_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("MODEL_MONITOR_REQUIRE_POSTGRES") == "1"

# A token value planted in tests; it must never show up in logs, databases or payloads.
CANARY = "sk-canary-7f3e9b1c5d2a4e6f8a0b9c1d3e5f7a9b"


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


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    with postgres_schema() as url:
        yield url


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


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests about SQLite itself; everything else takes `db_url` and runs on both."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


def database_contents(url: str) -> bytes:
    """Everything a database holds, to grep for secrets: a SQLite database's files
    (free pages, journal and WAL included), or every row of every PostgreSQL table as
    text, compressed columns inflated."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        chunks: list[bytes] = []
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            raw = bytes(value)
                            with suppress(zlib.error):
                                raw = zlib.decompress(raw)
                            chunks.append(raw)
                        else:
                            chunks.append(str(value).encode())
        return b"\n".join(chunks)
    finally:
        engine.dispose()


@pytest.fixture
def gateway() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=1) as sim:
        yield sim


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a TOML config file and return its path."""

    def write(body: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write
