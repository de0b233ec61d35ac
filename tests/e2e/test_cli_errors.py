"""Bad input of every kind, as a user meets it: the installed command line in a subprocess,
asserting the documented exit code, one message naming the problem (and how to fix it), and
no traceback. The exit codes are in `model-monitor --help` and in monitor/cli/commands.py."""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from monitor.cli.commands import main
from monitor.sim import GatewaySimulator, make_model
from monitor.store.database import Database, open_database
from tests.support.canary import CANARY

SOURCE = '[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\n'


@dataclass
class Run:
    """One invocation: arguments, extra environment, and how the process starts."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None
    broken_pipe: bool = False  # stdout is a pipe nobody reads any more
    after: Callable[[], None] | None = None  # more assertions once it ran


def cli(run: Run, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODEL_MONITOR_")},
        "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
        "XDG_STATE_HOME": str(tmp / "xdg-state"),
        **run.env,
    }
    for name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "monitor", *run.args]
    if not run.broken_pipe:
        return subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=run.preexec,  # only sets a limit or closes a descriptor
        )
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            argv, env=env, stdout=write, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write)


# -- the table ---------------------------------------------------------------------------

CASES: list[Any] = []


def case(code: int, *words: str) -> Callable[[Callable[..., Run]], Callable[..., Run]]:
    """Register a bad input: `code` is the exit status, `words` must all be in stderr."""

    def register(build: Callable[..., Run]) -> Callable[..., Run]:
        CASES.append(pytest.param(build, code, words, id=build.__name__.replace("_", "-")))
        return build

    return register


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


# Item 1: tracebacks and exit 1 where a message and a documented code belong.


@case(78, "--database", "not a database URL", "sqlite:////")
def not_a_url(tmp: Path, db: Path) -> Run:
    return Run(["--database", "notaurl", "status"])


@case(78, "--database", "foo://", "not a database this program knows")
def unknown_backend(tmp: Path, db: Path) -> Run:
    return Run(["--database", "foo://x/y", "status"])


def _without_psycopg(tmp: Path) -> dict[str, str]:
    shadow = tmp / "no-psycopg" / "psycopg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('psycopg is not installed here')\n")
    return {"PYTHONPATH": str(shadow.parent)}


@case(78, "[monitor]: database", "pip install 'llm-model-monitor[postgres]'")
def postgres_without_psycopg_in_config_check(tmp: Path, db: Path) -> Run:
    config = tmp / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "postgresql+psycopg://mm@127.0.0.1/x"\n\n{SOURCE}')
    return Run(["--config", str(config), "config", "check"], env=_without_psycopg(tmp))


@case(2, "file.txt is a file, not a directory")
def sqlite_path_under_a_file(tmp: Path, db: Path) -> Run:
    (tmp / "file.txt").write_text("")
    return Run(["--database", sqlite(tmp / "file.txt" / "db.sqlite"), "db", "upgrade"])


@case(2, "/proc/mm-test-missing", "No such file or directory")
def sqlite_path_under_proc(tmp: Path, db: Path) -> Run:
    return Run(["--database", "sqlite:////proc/mm-test-missing/db.sqlite", "db", "upgrade"])


@case(2, "sqlite:///", "new.db", "free some disk space")
def disk_full_when_creating(tmp: Path, db: Path) -> Run:
    def small_files() -> None:  # what a full disk looks like to SQLite (EFBIG, not a signal)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    return Run(["--database", sqlite(tmp / "new.db"), "db", "upgrade"], preexec=small_files)


@case(78, "/proc/mm-test-missing/config.toml", "cannot create it", "No such file")
def init_where_nothing_can_be_written(tmp: Path, db: Path) -> Run:
    return Run(["init", "/proc/mm-test-missing/config.toml"])


@case(78, "--since", "at most 36500d")
def history_since_overflows(tmp: Path, db: Path) -> Run:
    return Run(["--database", sqlite(db), "history", "--since", "99999999999d"])


@case(78, "--older-than", "at most 36500d")
def prune_older_than_overflows(tmp: Path, db: Path) -> Run:
    return Run(["--database", sqlite(db), "db", "prune", "--older-than", "99999999d"])


@case(74, "standard output is closed", "redirect it")
def stdout_closed(tmp: Path, db: Path) -> Run:
    return Run(["--database", sqlite(db), "status"], preexec=lambda: os.close(1))


@case(141)
def stdout_reader_gone(tmp: Path, db: Path) -> Run:
    return Run(["--database", sqlite(db), "status"], broken_pipe=True)


@case(2, "database sqlite:///", "snapshot", "is damaged", "restore the database from a backup")
def models_with_a_damaged_snapshot(tmp: Path, db: Path) -> Run:
    path = tmp / "damaged.db"
    shutil.copy(db, path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO snapshots (id, digest, model_count, body, created_at) "
            "VALUES (1, 'd1', 0, ?, '2026-01-01 00:00:00.000000')",
            (zlib.compress(b"[]"),),
        )
        conn.execute(
            "INSERT INTO token_state (token, source, fingerprint, last_snapshot_id, pending, "
            "consecutive_failures, failing) VALUES ('t', 'gw', 'abc', 1, '{}', 0, 0)"
        )
        conn.execute("UPDATE snapshots SET body = ? WHERE id = 1", (b"\x78\x9cnot zlib",))
    return Run(["--database", sqlite(path), "models"])


@case(2, "file is not a database")
def status_on_a_file_that_is_not_a_database(tmp: Path, db: Path) -> Run:
    (tmp / "notes.txt").write_text("not a database, " * 500)
    return Run(["--database", sqlite(tmp / "notes.txt"), "status"])


@case(2, "postgresql+psycopg://mm:***@127.0.0.1:1/x", "refused")
def postgres_unreachable(tmp: Path, db: Path) -> Run:
    # Every case also checks that "hunter2" is never printed.
    return Run(["--database", "postgresql+psycopg://mm:hunter2@127.0.0.1:1/x", "status"])


# Item 2: config check fails on everything that would fail at start.


@case(78, "config.toml: [monitor]: interval", "at most 36500d")
def interval_overflows(tmp: Path, db: Path) -> Run:
    config = tmp / "config.toml"
    config.write_text(f'[monitor]\ninterval = "99999999999d"\n\n{SOURCE}')
    return Run(["--config", str(config), "config", "check"])


@case(78, "config.toml: [monitor]: cron", '"0 0 31 2 *" never fires')
def cron_never_fires(tmp: Path, db: Path) -> Run:
    config = tmp / "config.toml"
    config.write_text(f'[monitor]\ncron = "0 0 31 2 *"\n\n{SOURCE}')
    return Run(["--config", str(config), "config", "check"])


# Item 3: read commands never create a database, nor migrate one.


def _mistyped(tmp: Path, command: list[str]) -> Run:
    path = tmp / "typo" / "dir" / "monitor.db"

    def nothing_created() -> None:
        assert not (tmp / "typo").exists()

    return Run(["--database", sqlite(path), *command], after=nothing_created)


@case(2, "no database at", "typo/dir/monitor.db", "model-monitor db upgrade")
def status_on_a_mistyped_path(tmp: Path, db: Path) -> Run:
    return _mistyped(tmp, ["status"])


@case(2, "no database at", "typo/dir/monitor.db")
def models_on_a_mistyped_path(tmp: Path, db: Path) -> Run:
    return _mistyped(tmp, ["models"])


@case(2, "no database at", "typo/dir/monitor.db")
def report_on_a_mistyped_path(tmp: Path, db: Path) -> Run:
    return _mistyped(tmp, ["report", "--html", "-"])


@case(2, "no database at", "typo/dir/monitor.db")
def prune_on_a_mistyped_path(tmp: Path, db: Path) -> Run:
    return _mistyped(tmp, ["db", "prune", "--older-than", "90d"])


@case(2, "no database at", "typo/dir/monitor.db")
def retry_dead_on_a_mistyped_path(tmp: Path, db: Path) -> Run:
    config = tmp / "config.toml"
    config.write_text(SOURCE)
    run = _mistyped(tmp, ["deliveries", "--retry-dead"])
    run.args = ["--config", str(config), *run.args]
    return run


@case(2, "older schema", "revision 0004", "run `model-monitor db upgrade`")
def status_on_an_old_schema(tmp: Path, db: Path) -> Run:
    path = tmp / "old.db"
    old = Database(sqlite(path))
    old.upgrade("0004")
    old.close()

    def not_migrated() -> None:
        assert revision(path) == "0004"

    return Run(["--database", sqlite(path), "status"], after=not_migrated)


# Item 4: a token_file that is a directory.


@case(78, "token_file", "is a directory, not a file")
def token_file_is_a_directory(tmp: Path, db: Path) -> Run:
    (tmp / "secrets").mkdir()
    config = tmp / "config.toml"
    config.write_text(f'{SOURCE}\n[[tokens]]\nname = "t"\nsource = "gw"\ntoken_file = "secrets"\n')
    return Run(["--config", str(config), "config", "check"])


# Item 5: a database from a newer version is recognised before migrating.


def _newer(tmp: Path, db: Path, command: list[str]) -> Run:
    path = tmp / "newer.db"
    shutil.copy(db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")

    def untouched() -> None:
        assert revision(path) == "9999_from_the_future"

    return Run(["--database", sqlite(path), *command], after=untouched)


@case(2, "written by a newer model-monitor", "9999_from_the_future", "upgrade model-monitor")
def status_on_a_newer_schema(tmp: Path, db: Path) -> Run:
    return _newer(tmp, db, ["status"])


@case(2, "written by a newer model-monitor", "9999_from_the_future", "upgrade model-monitor")
def db_upgrade_on_a_newer_schema(tmp: Path, db: Path) -> Run:
    return _newer(tmp, db, ["db", "upgrade"])


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at this version's schema, copied by the cases that change one."""
    path = tmp_path_factory.mktemp("template") / "monitor.db"
    open_database(sqlite(path)).close()
    return path


@pytest.mark.parametrize(("build", "code", "words"), CASES)
def test_bad_input_gets_its_exit_code_and_a_message_without_a_traceback(
    build: Callable[[Path, Path], Run],
    code: int,
    words: tuple[str, ...],
    tmp_path: Path,
    template_db: Path,
) -> None:
    db = tmp_path / "ready.db"
    shutil.copy(template_db, db)
    run = build(tmp_path, db)
    done = cli(run, tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr + (done.stdout or "")
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    problem_lines = [line for line in done.stderr.splitlines() if " INFO " not in line]
    if code == 141:
        assert done.stderr == ""  # the reader left on purpose: nothing to say
    else:
        assert problem_lines, "an error names its problem"
    if run.after is not None:
        run.after()


def test_no_bad_input_exits_1() -> None:
    """1 means "changes found" (check --exit-code) and nothing else."""
    assert all(p.values[1] != 1 for p in CASES)


# -- more than a table row --------------------------------------------------------------


def test_a_full_disk_during_a_check_exits_2_naming_the_database(tmp_path: Path) -> None:
    """Item 1, mid-cycle: the database fills up while a check stores what it fetched."""
    path = tmp_path / "monitor.db"
    open_database(sqlite(path)).close()
    with GatewaySimulator(seed=5) as gateway:
        # Ids that do not compress, so the snapshot outgrows the file size limit.
        models = [make_model(f"m-{i}-{os.urandom(60).hex()}") for i in range(300)]
        gateway.set_group("default", models)
        gateway.add_token(CANARY, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[monitor]\ndatabase = "{sqlite(path)}"\n\n'
            f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n'
            '[[tokens]]\nname = "t"\nsource = "gw"\ntoken_env = "FULL_DISK_TOKEN"\n'
        )

        def small_files() -> None:  # room for the -shm file (32 KiB), not for the snapshot
            resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

        done = cli(
            Run(["--config", str(config), "check"], {"FULL_DISK_TOKEN": CANARY}, small_files),
            tmp_path,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and CANARY not in done.stderr
    assert f"database {sqlite(path)}:" in done.stderr
    assert "free some disk space" in done.stderr


def test_help_lists_the_exit_codes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    listed = re.findall(r"^\s+(\d+)\s+\S", done.stdout.split("Exit codes:")[1], re.MULTILINE)
    assert listed == ["0", "1", "2", "3", "70", "74", "78", "141"]


# -- item 6: read commands open SQLite read-only ------------------------------------------


def test_readers_cannot_write(db_url: str) -> None:
    """SQLite with mode=ro, PostgreSQL with READ ONLY transactions."""
    open_database(db_url).close()
    reader = Database(db_url, read_only=True)
    try:
        reader.check_schema()
        with reader.reader() as session:
            assert session.execute(text("SELECT count(*) FROM checks")).scalar() == 0
        with pytest.raises(DBAPIError, match=r"read-?only"), reader.reader() as session:
            session.execute(text("CREATE TABLE intruder (x INTEGER)"))
    finally:
        reader.close()


def _read_only_mount(source: Path, target: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a mount namespace of its own where `target` is `source`, read-only."""
    script = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_MONITOR_")}
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(source), str(target), *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "XDG_CONFIG_HOME": str(source / "none")},
    )


def test_status_and_models_read_a_database_on_a_read_only_file_system(tmp_path: Path) -> None:
    source, media = tmp_path / "disk", tmp_path / "media"
    source.mkdir()
    media.mkdir()
    probe = _read_only_mount(source, media, "touch", str(media / "probe"))
    if shutil.which("unshare") is None or "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.strip()}")
    url = sqlite(source / "monitor.db")
    open_database(url).close()  # a WAL database, closed cleanly: no -wal or -shm beside it
    assert sorted(p.name for p in source.iterdir()) == ["monitor.db"]
    monitor = [sys.executable, "-m", "monitor", "--database", sqlite(media / "monitor.db")]
    for command in (["status"], ["models"]):
        done = _read_only_mount(source, media, *monitor, *command)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr

    # While a writer holds it open, its -wal and -shm files exist: read through them.
    writer = sqlite3.connect(source / "monitor.db")
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("INSERT INTO source_state VALUES ('gw', '2026-01-01 00:00:00', 'x')")
        writer.commit()
        assert (source / "monitor.db-wal").exists()
        done = _read_only_mount(source, media, *monitor, "status")
        assert done.returncode == 0, done.stderr
    finally:
        writer.close()


# -- item 7: internal errors ------------------------------------------------------------


@pytest.fixture
def process_logging() -> Iterator[None]:
    """main() sets up logging for the whole process; put back what pytest had."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("monitor", "urllib3", "apscheduler")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code or 0), capsys.readouterr().err


def test_an_internal_error_is_one_line_and_the_traceback_needs_v(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    template_db: Path,
    process_logging: None,
) -> None:
    import monitor.store.queries

    def broken(session: Any) -> Any:
        raise KeyError(f"no such thing near {CANARY}")

    monkeypatch.setattr(monitor.store.queries, "status_records", broken)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(template_db.parent / "none"))
    code, err = _in_process(capsys, "--database", sqlite(template_db), "status")
    assert code == 70
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("internal error: KeyError: ")
    assert "bug" in err and "run again with -v for the traceback" in err
    assert CANARY not in err  # a credential in a message is masked

    code, err = _in_process(capsys, "-v", "--database", sqlite(template_db), "status")
    assert code == 70
    assert "Traceback" in err and "in broken" in err
    assert err.rstrip().splitlines()[-1].startswith("internal error: KeyError: ")


def test_a_database_error_anywhere_exits_2_naming_the_database_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], process_logging: None
) -> None:
    import monitor.cli.app

    class Broken:
        def reader(self) -> Any:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    def read_db(self: Any, config: Any = None) -> Any:
        self.checked_database(config)
        return Broken()

    monkeypatch.setattr(monitor.cli.app.App, "read_db", read_db)
    url = "postgresql+psycopg://mm:hunter2@db.example/monitor"
    code, err = _in_process(capsys, "--config", "/nonexistent.toml", "--database", url, "status")
    assert code == 78  # a broken config still wins: it is named, not hidden
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    code, err = _in_process(capsys, "--database", url, "status")
    assert code == 2, err
    assert "database postgresql+psycopg://mm:***@db.example/monitor: server closed" in err
    assert "hunter2" not in err and "Traceback" not in err
