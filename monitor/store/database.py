"""Opening the database: engine settings per backend, migrations, sessions."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import monitor

log = logging.getLogger("monitor.store")

# Any constant works: it only has to be the same for every instance sharing a database.
_MIGRATION_LOCK_ID = 0x6D6F6E69


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


def migrations_dir() -> Path:
    """Alembic scripts: inside the package when installed, at the repo root when developing."""
    package = Path(monitor.__file__).parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(f"migration scripts not found next to {package}")


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def _switch_to_wal(cursor: sqlite3.Cursor, patience: float = 30.0) -> None:
    """PRAGMA journal_mode=WAL, waiting for other connections doing the same.

    Switching a new file to WAL needs an exclusive lock and answers "database is
    locked" at once, without the busy timeout, while another process switches it:
    what happens when several instances start together on a new file.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Database:
    """An engine plus the two kinds of session the program uses.

    `session()` is for writers. On SQLite it starts with BEGIN IMMEDIATE so two
    processes never deadlock upgrading read locks to write locks; readers use
    `reader()` and a plain deferred BEGIN, which WAL lets run beside a writer.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._create_engine(echo)
        writer = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.is_sqlite
            else self.engine
        )
        self._writer = sessionmaker(writer, expire_on_commit=False)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)

    def _create_engine(self, echo: bool) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, echo=echo, pool_pre_ping=True)
        database = self.url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # Take transaction control away from the sqlite3 module (SQLAlchemy's recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def session(self, *, commit: bool = True) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception.

        `commit=False` rolls back even on success: how `check --dry-run` runs the
        real code path without leaving a trace.
        """
        with self._writer() as session:
            session.begin()
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if commit:
                session.commit()
            else:
                session.rollback()

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations, one process at a time when several share the database.

        PostgreSQL: an advisory lock held until the transaction ends. SQLite: the
        upgrade starts with BEGIN IMMEDIATE, so it reads the schema's revision already
        holding the write lock; whoever comes second finds the schema at head.
        """
        cfg = alembic_config()
        engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.is_sqlite
            else self.engine
        )
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def downgrade(self, revision: str) -> None:
        cfg = alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def ensure_schema(self) -> None:
        """Migrate to head if needed; cheap when already there."""
        try:
            if self.current_revision() != self.head_revision():
                log.info("migrating database schema to %s", self.head_revision())
                self.upgrade()
        except DatabaseError:
            raise
        except Exception as exc:
            raise DatabaseError(f"cannot open database {self.display_url}: {exc}") from exc

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True) -> Database:
    db = Database(url)
    if migrate:
        db.ensure_schema()
    return db
