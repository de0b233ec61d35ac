"""The Alembic migrations build exactly the schema the code declares, and go both ways."""

from __future__ import annotations

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
