"""The command line: a thin edge over the pipeline, store and delivery.

Exit codes (also in `--help`):

- 0 success.
- 1 changes found, only with `check --exit-code` (like `git diff --exit-code`); no
  error ever exits 1.
- 2 the database could not be opened or read: missing (read commands never create
  one), an old schema (`db upgrade`), a newer one, damaged, full, unreachable.
- 3 at least one check (or `notify-test` delivery) failed.
- 70 an internal error (EX_SOFTWARE): a bug. One line on stderr; `-v` adds the traceback.
- 74 standard output is closed or cannot be written (EX_IOERR).
- 78 bad config or command-line usage (EX_CONFIG, so systemd's
  RestartPreventExitStatus=78 stops a restart loop).
- 141 the reader of standard output went away (`| head`): quietly, with the status a
  shell gives a command killed by SIGPIPE (128 + 13), as `cat` or `git log` would.

Every error is one line naming what is wrong and how to fix it; no traceback reaches the
user without `-v`.
"""

from __future__ import annotations

import errno
import io
import os
import re
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor.config import ConfigError
from monitor.config.discovery import (
    WriteRefused,
)
from monitor.core.printable import printable
from monitor.runtime import logs
from monitor.store.errors import DatabaseError, DatabaseUrlError

if TYPE_CHECKING:
    pass

from monitor.cli.app import (
    COMPLETE_VAR,
    EXIT_BROKEN_PIPE,
    EXIT_CONFIG,
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_OUTPUT,
    App,
    cli,
    fail,
    log,
)
from monitor.cli.checks import check, run
from monitor.cli.database import db_group
from monitor.cli.deliveries import deliveries, notify_test
from monitor.cli.probes import probes
from monitor.cli.setup import config_group, demo, init, sim
from monitor.cli.silences import silence_group
from monitor.cli.views import diff, history, models, prices, report, status

# Every command, in one place (`model-monitor --help` lists them by name).
COMMANDS = (
    init,
    config_group,
    check,
    run,
    models,
    history,
    diff,
    status,
    prices,
    probes,
    silence_group,
    deliveries,
    report,
    db_group,
    notify_test,
    demo,
    sim,
)
for command in COMMANDS:
    cli.add_command(command)


class _StdoutClosed(OSError):
    """Written to a standard output that was closed before we started (`>&-`)."""


class _ClosedStdout(io.TextIOBase):
    """Stands in for the missing sys.stdout: Python sets it to None when file descriptor 1
    is closed, and click would then drop every line without a word."""

    encoding = "utf-8"
    errors = "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise _StdoutClosed(errno.EBADF, "standard output is closed")


def _guard_closed_stdout() -> Any:
    """When fd 1 is closed: park /dev/null on it (so no file opened later, a database
    included, becomes fd 1) and make printing fail loudly. Returns what to restore."""
    saved = sys.stdout
    if saved is not None:
        return saved
    fd = os.open(os.devnull, os.O_WRONLY)
    if fd != 1:
        os.dup2(fd, 1)
        os.close(fd)
    sys.stdout = _ClosedStdout()
    return saved


def _silence_stdout() -> None:
    """After a broken pipe: later flushes (at exit too) go to /dev/null, not to a
    "BrokenPipeError ignored" message."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        os.close(devnull)


def _stdout_failed(exc: OSError) -> bool:
    """Whether `exc` came from printing to standard output (`| head`, `> /dev/full`),
    rather than from some other file or socket: every line goes out through click.echo."""
    if isinstance(exc, _StdoutClosed):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is click.utils.echo.__code__:
            target = tb.tb_frame.f_locals.get("file")
            try:
                return target is not None and target.fileno() == 1
            except (OSError, ValueError, AttributeError):
                return False
        tb = tb.tb_next
    return False


_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^/\s:@]*:)[^@\s/]+@")


def _sanitised(exc: BaseException, app: App | None) -> str:
    """An exception's message fit for one line on a terminal: its first line, shortened,
    configured secrets, URL passwords and anything that looks like a credential masked."""
    from monitor.config.load import looks_secret

    try:
        lines = str(exc).strip().splitlines()
    except Exception:  # a broken __str__ must not hide the error it describes
        lines = []
    text = lines[0] if lines else ""
    secrets = logs.config_secrets(app._config) if app is not None else []
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    words = text.split(" ")
    text = " ".join("***" if looks_secret(w.strip("'\"(),;:")) else w for w in words)
    if len(text) > 200:
        text = text[:197] + "..."
    return printable(text)


def _internal_error(exc: Exception, app: App | None, argv: list[str]) -> NoReturn:
    """A bug: one line saying so; the traceback (through the logs' secret scrubbing) only
    with -v."""
    verbose = (
        app.verbosity > 0
        if app is not None
        else any(re.fullmatch(r"-v+|--verbose", arg) for arg in argv)
    )
    summary = f"{type(exc).__name__}: {_sanitised(exc, app)}".rstrip(": ")
    if verbose:
        log.error("internal error", exc_info=exc)
    more = "" if verbose else "; run again with -v for the traceback"
    click.echo(f"internal error: {summary}; this is a bug in model-monitor{more}", err=True)
    sys.exit(EXIT_INTERNAL)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    saved_stdout = _guard_closed_stdout()
    apps: list[App] = []
    try:
        _run(args, apps)
    finally:
        if saved_stdout is None:
            sys.stdout = saved_stdout


def _run(args: list[str], apps: list[App]) -> NoReturn:
    def remember(ctx: click.Context) -> None:
        if isinstance(ctx.obj, App):
            apps.append(ctx.obj)

    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:  # the shell asks for its completion script, or for completions
        from click.shell_completion import shell_complete

        sys.exit(shell_complete(cli, {}, "model-monitor", COMPLETE_VAR, instruction))
    # Not cli.main(): click's own handling turns a broken pipe into exit 1.
    try:
        with cli.make_context("model-monitor", list(args)) as ctx:
            try:
                cli.invoke(ctx)
            finally:
                remember(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("\naborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_CONFIG)
    except WriteRefused as exc:
        fail(str(exc), EXIT_CONFIG)
    except ConfigError as exc:
        click.echo("error: the configuration is not valid:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(EXIT_CONFIG)
    except DatabaseUrlError as exc:
        fail(str(exc), EXIT_CONFIG)
    except DatabaseError as exc:
        fail(_naming_database(str(exc), apps), EXIT_DATABASE)
    except Exception as exc:
        if _is_driver_error(exc):  # anywhere: full, damaged, locked, gone away
            from monitor.store.database import explain

            fail(_naming_database(explain(exc), apps), EXIT_DATABASE)
        if not (isinstance(exc, OSError) and _stdout_failed(exc)):
            _internal_error(exc, apps[0] if apps else None, args)
        _silence_stdout()
        if isinstance(exc, BrokenPipeError):  # the reader had enough, as `head` does
            sys.exit(EXIT_BROKEN_PIPE)
        reason = exc.strerror or str(exc)
        fail(
            f"cannot write to standard output: {reason}; redirect it to a file or to "
            "/dev/null instead",
            EXIT_OUTPUT,
        )
    sys.exit(EXIT_OK)


def _is_driver_error(exc: BaseException) -> bool:
    """A database driver's error (SQLAlchemy's DBAPIError), without importing SQLAlchemy
    for commands that never loaded it."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.DBAPIError)


def _naming_database(message: str, apps: list[App]) -> str:
    """`message`, prefixed with the database it is about unless it names it already."""
    if not apps or apps[0].database_shown is None:
        return message
    names = (apps[0].database_shown, apps[0].database_path)
    if any(name and name in message for name in names):
        return message
    return f"database {apps[0].database_shown}: {message}"
