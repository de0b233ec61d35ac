"""The Alembic migrations build exactly the schema the code declares, and go both ways."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from monitor.store.database import Database, open_database
from monitor.store.schema import Base

TABLES = {
    "snapshots",
    "checks",
    "token_state",
    "events",
    "deliveries",
    "delivery_attempts",
    "channel_state",
    "source_state",
}


def test_the_head_revision_the_code_knows_is_the_newest_migration(db_url: str) -> None:
    from alembic.script import ScriptDirectory

    from monitor.store.database import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
    db = open_database(db_url)
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == db.current_revision()
    db.close()


def test_upgrade_builds_the_declared_schema(db_url: str) -> None:
    db = open_database(db_url)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert db.current_revision() == db.head_revision()
    db.close()


def test_round_trip_upgrade_downgrade_upgrade(db_url: str) -> None:
    db = Database(db_url)
    assert db.current_revision() is None
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.downgrade("base")
    assert db.current_revision() is None
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    db.close()


def test_ensure_schema_is_idempotent(db_url: str) -> None:
    first = open_database(db_url)
    revision = first.current_revision()
    first.close()
    second = open_database(db_url)
    assert second.current_revision() == revision
    second.close()


def test_sqlite_pragmas_are_set(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.close()


def test_instances_starting_together_migrate_once(tmp_path: Path) -> None:
    """Several processes upgrading a new SQLite file at once: one migrates, the others
    find the schema at head (before BEGIN IMMEDIATE, about a third of them failed with
    "database is locked" or "table already exists"). PostgreSQL takes an advisory lock,
    covered by tests/e2e/test_scale_out.py's two daemons."""
    for trial in range(4):
        url = f"sqlite:///{tmp_path / f'race-{trial}.db'}"
        instances = [Database(url) for _ in range(6)]
        start = threading.Barrier(len(instances))

        def upgrade(db: Database, start: threading.Barrier = start) -> None:
            start.wait()
            db.upgrade()

        with ThreadPoolExecutor(len(instances)) as pool:
            for outcome in [pool.submit(upgrade, db) for db in instances]:
                outcome.result()  # re-raises what failed
        assert {db.current_revision() for db in instances} == {instances[0].head_revision()}
        for db in instances:
            db.close()
