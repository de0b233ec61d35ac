"""Opening the database: engine settings per backend, migrations, sessions.

Two ways in. Writers (`check`, `run`, `db upgrade`) create a missing SQLite file and
migrate the schema to this version's head. Readers (`status`, `models`, ...) change
nothing: a missing database, an old schema or one written by a newer version is a
DatabaseError saying what to do, and SQLite is opened read-only, so they also work on
a database they may not write (read-only media too).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import monitor
from monitor.store.errors import DatabaseError, DatabaseUrlError
from monitor.store.urls import shown_url, url_problem

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry as PoolEntry

log = logging.getLogger("monitor.store")

# The newest migration in migrations/versions: what `ensure_schema` compares with.
HEAD_REVISION = "0010"

# Any constant works: it only has to be the same for every instance sharing a database.
_MIGRATION_LOCK_ID = 0x6D6F6E69


# What to do about the errors people meet, by words in SQLite's and PostgreSQL's messages.
_HINTS = (
    (
        "unable to open database file",
        "check that the path is right and its directory exists and may be written",
    ),
    ("disk is full", "free some disk space"),
    # SQLite's word for a full disk when a write fails outright (or hits a size limit).
    ("disk i/o error", "free some disk space, or check the disk and any file size limit"),
    ("readonly database", "the file or its directory is read-only for this user"),
    ("file is not a database", "it is not a SQLite database; check the path"),
    ("malformed", "the file is damaged; restore it from a backup"),
    ("database is locked", "another process holds it locked; try again"),
    ("password authentication failed", "check the user name and password in the URL"),
    ("connection refused", "is the server running, on that host and port?"),
    ("does not exist", "check the database name in the URL, or create that database"),
)


def explain(exc: BaseException) -> str:
    """A driver's complaint in one line, with what to do when it is a common one.

    SQLAlchemy's own wrapping (the statement, its parameters, a link) is left out: a
    parameter may be anything, and the statement helps nobody who is not debugging.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    message = lines[0].strip() if lines else type(cause).__name__
    if len(message) > 300:
        message = message[:297] + "..."
    lowered = message.lower()
    hint = next((h for words, h in _HINTS if words in lowered), None)
    return f"{message}; {hint}" if hint else message


def migrations_dir() -> Path:
    """Alembic scripts: inside the package when installed, at the repo root when developing."""
    package = Path(monitor.__file__).parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(f"migration scripts not found next to {package}")


def alembic_config() -> AlembicConfig:
    # Alembic is imported when a database is opened, not with the command line: commands
    # that fail on their input (or need no database) start 0.15 s sooner.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


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

    With `read_only` nothing is created: a SQLite file must exist and is opened with
    `mode=ro`, a PostgreSQL session is READ ONLY.
    """

    def __init__(self, url: str, *, echo: bool = False, read_only: bool = False) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise DatabaseUrlError(f"database URL {shown_url(url)}: {problem}")
        self.url = make_url(url)
        self.read_only = read_only
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        database = self.url.database if self.is_sqlite else None
        self.path = (
            Path(database).expanduser()
            if database and database != ":memory:" and not database.startswith("file:")
            else None
        )
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
            engine = create_engine(self.url, echo=echo, pool_pre_ping=True)
            if self.read_only:
                event.listen(engine, "connect", _postgres_read_only)
            return engine
        if self.read_only and self.path is not None:
            self._check_exists()
            engine = create_engine(self.url, echo=echo, creator=self._connect_read_only)
        else:
            self._make_directory()
            engine = create_engine(self.url, echo=echo, connect_args={"timeout": 30})
        read_only = self.read_only

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: PoolEntry) -> None:
            # Take transaction control away from the sqlite3 module (SQLAlchemy's recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            if not read_only:
                _switch_to_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    def _make_directory(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise DatabaseError(
                f"cannot create the database {self.path}: {exc.filename} is a file, not a "
                "directory; fix the path"
            ) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise DatabaseError(
                f"cannot create the directory of the database {self.path}: "
                f"{exc.strerror}{where}; fix the path or choose a writable directory"
            ) from None

    def _check_exists(self) -> None:
        """Readers never create a database: a missing file is reported, not made."""
        if self.path is None:
            return
        try:
            if self.path.is_file():
                return
            there = self.path.exists()
        except OSError as exc:
            raise DatabaseError(f"cannot read the database {self.path}: {exc.strerror}") from None
        if there:
            raise DatabaseError(f"the database {self.path} is not a file; fix the path")
        raise DatabaseError(
            f"no database at {self.path}; check the path (--database or [monitor] database), "
            "or create it with `model-monitor db upgrade` or a first `model-monitor check`"
        )

    def _connect_read_only(self) -> sqlite3.Connection:
        """`mode=ro`: reads only, never creates the file.

        A WAL database (ours always is) needs its -shm file, which SQLite creates beside
        it when missing; a cleanly closed database has none. On a read-only file system
        it cannot be created, and nobody can change the file there either: with no WAL
        content to miss, `immutable=1` reads it without the -shm file. Anywhere else
        immutable could read pages a writer is changing, so the error stands.
        """
        assert self.path is not None
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens it for real
            return conn
        except sqlite3.OperationalError:
            conn.close()
            wal = Path(f"{self.path}-wal")
            if not _on_read_only_fs(self.path) or (wal.exists() and wal.stat().st_size):
                raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30, check_same_thread=False)

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
        """The schema revision the database is at (None: no schema yet).

        Read with one query rather than through Alembic, whose import alone costs more
        than the rest of opening the database: it is loaded only to migrate.
        """
        with self.engine.connect() as conn:
            if not conn.dialect.has_table(conn, "alembic_version"):
                return None
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return next(iter(versions), None)

    def head_revision(self) -> str | None:
        """The revision this version's schema is at (`HEAD_REVISION`, checked against the
        migration scripts by the tests)."""
        return HEAD_REVISION

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations, one process at a time when several share the database.

        PostgreSQL: an advisory lock held until the transaction ends. SQLite: the
        upgrade starts with BEGIN IMMEDIATE, so it reads the schema's revision already
        holding the write lock; whoever comes second finds the schema at head.
        """
        from alembic import command

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
        from alembic import command

        cfg = alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def ensure_schema(self) -> None:
        """Migrate to head if needed; cheap when already there."""
        try:
            current, head = self.current_revision(), self.head_revision()
            if current != head:
                self._refuse_newer(current)
                log.info("migrating database schema to %s", head)
                self.upgrade()
        except DatabaseError:
            raise
        except Exception as exc:
            raise DatabaseError(f"cannot open database {self.display_url}: {explain(exc)}") from exc

    def check_schema(self) -> None:
        """For readers: the schema must be this version's; say what to do when it is not."""
        try:
            current, head = self.current_revision(), self.head_revision()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot open database {self.display_url}: {explain(exc)}") from exc
        if current == head:
            return
        if current is None:
            raise DatabaseError(
                f"the database {self.display_url} holds no model-monitor data yet; create it "
                "with `model-monitor db upgrade` or a first `model-monitor check`"
            )
        self._refuse_newer(current)
        raise DatabaseError(
            f"the database {self.display_url} has an older schema (revision {current}, this "
            f"version uses {head}); run `model-monitor db upgrade`"
        )

    def _refuse_newer(self, current: str | None) -> None:
        """A revision the scripts do not know was written by a newer model-monitor:
        migrating would fail half-way, and downgrading it is not ours to do."""
        if current is None:
            return
        known = {script.revision for script in _scripts().walk_revisions()}
        if current not in known:
            raise DatabaseError(
                f"the database at {self.display_url} was written by a newer model-monitor "
                f"(schema revision {current}); upgrade model-monitor"
            )

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _postgres_read_only(dbapi_connection: DBAPIConnection, _record: PoolEntry) -> None:
    """Every transaction on this connection is READ ONLY (SQLAlchemy's recipe for
    session settings: outside a transaction, so no later rollback undoes it)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.autocommit = autocommit


def open_database(url: str, *, migrate: bool = True, create: bool = True) -> Database:
    """The database for writing, migrated to head; `create=False` wants an existing
    SQLite file (a mistyped path is then an error, not a new empty database)."""
    if not create:
        Database(url, read_only=True).close()  # raises if the file is missing
    db = Database(url)
    if migrate:
        db.ensure_schema()
    return db


def open_for_reading(url: str) -> Database:
    """The database for reading: it must exist with this version's schema; nothing is
    created or migrated."""
    db = Database(url, read_only=True)
    try:
        db.check_schema()
    except BaseException:
        db.close()
        raise
    return db
