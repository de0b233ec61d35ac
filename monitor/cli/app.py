"""What every command shares: the `cli` group and its options, the App context, exit codes,
and the helpers that open the config, the database and the pipeline."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config import Config, ConfigError
from monitor.config.discovery import (
    default_database_url,
    find_config,
)
from monitor.config.durations import parse_duration
from monitor.core.printable import printable
from monitor.core.records import DeliveryState
from monitor.runtime import logs
from monitor.store.urls import shown_url, sqlite_path, url_problem

if TYPE_CHECKING:
    from monitor.store.database import Database


EXIT_OK = 0


EXIT_CHANGES = 1


EXIT_DATABASE = 2


EXIT_CHECK_FAILED = 3


EXIT_INTERNAL = 70  # EX_SOFTWARE


EXIT_OUTPUT = 74  # EX_IOERR


EXIT_CONFIG = 78  # EX_CONFIG


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


EPILOG = """\b
Exit codes:
  0   success
  1   changes found (only with `check --exit-code`; never for an error)
  2   the database could not be opened or read (read commands never create one)
  3   at least one check failed
  70  internal error: a bug (run again with -v for the traceback)
  74  standard output is closed or cannot be written
  78  bad config or command-line usage
  141 standard output's reader went away (e.g. `| head`), as for SIGPIPE

\b
Config file: --config PATH, else $MODEL_MONITOR_CONFIG, else the first found of
  $CONFIGURATION_DIRECTORY/config.toml         (systemd)
  $XDG_CONFIG_HOME/model-monitor/config.toml   ($XDG_CONFIG_HOME: ~/.config)
  /etc/model-monitor/config.toml

\b
Shell completion (commands, options, token and source names):
  bash, in ~/.bashrc: eval "$(_MODEL_MONITOR_COMPLETE=bash_source model-monitor)"
  zsh, in ~/.zshrc:   eval "$(_MODEL_MONITOR_COMPLETE=zsh_source model-monitor)"
  fish, once:
    _MODEL_MONITOR_COMPLETE=fish_source model-monitor \\
      > ~/.config/fish/completions/model-monitor.fish
"""


# Click's shell completion: the shell sets this to `bash_source`, `bash_complete`, ...
COMPLETE_VAR = "_MODEL_MONITOR_COMPLETE"
DELIVERY_STATES = tuple(state.value for state in DeliveryState)


log = logging.getLogger("monitor.cli")


F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs, loaded on first use."""

    config_path: str | None
    database_url: str | None
    verbosity: int
    log_format: str
    _config: Config | None = None
    _db: Database | None = None
    database_shown: str | None = None  # the database in use, password masked, for errors
    database_path: str | None = None  # the file, for SQLite

    def config(self) -> Config:
        if self._config is None:
            # Here, not at the top: the catalogue loads every flavor and channel, which
            # `--version` and `--help` do without.
            from monitor.runtime import catalogue

            path = find_config(self.config_path, os.environ)
            config = catalogue.load(path)
            if config.monitor.templates:  # the shipped templates are checked by the tests
                from monitor.delivery.registry import rendering_problems

                problems = rendering_problems(config)
                if problems:
                    raise ConfigError(problems)
            self._config = config
            self.setup_logging()
        return self._config

    def optional_config(self) -> Config | None:
        """The config when there is one; read-only commands work on a bare database too.

        Only a missing config is forgiven: a config that exists but is broken is an error,
        or `status` would quietly read some other (empty) database.
        """
        try:
            find_config(self.config_path, os.environ)
        except ConfigError:
            return None
        return self.config()

    def setup_logging(self) -> None:
        level = {-1: logging.WARNING, 0: logging.INFO}.get(self.verbosity, logging.DEBUG)
        logs.setup(level, self.log_format, logs.config_secrets(self._config))

    def database(self, config: Config | None) -> tuple[str, str]:
        """The database URL to use, and where it came from (for messages)."""
        if self.database_url:
            return self.database_url, "--database"
        if config is not None and config.monitor.database:
            return config.monitor.database, f"{config.path}: [monitor]: database"
        return default_database_url(os.environ), "the default database"

    def checked_database(self, config: Config | None) -> str:
        """The database URL, after making sure it can be used at all (exit 78 if not)."""
        url, where = self.database(config)
        problem = url_problem(url)
        if problem is not None:
            if where == "--database":
                fail(f"--database: {problem}", EXIT_CONFIG)
            raise ConfigError([f"{where}: {problem}"])
        self.database_shown = shown_url(url)
        path = sqlite_path(url)
        if path:
            self.database_path = str(Path(path).expanduser())
        return url

    def db(self, config: Config | None = None, *, create: bool = True) -> Database:
        """The database for writing: created if missing (unless not `create`), migrated."""
        if self._db is None:
            from monitor.store.database import open_database  # SQLAlchemy: only when used

            self._db = open_database(self.checked_database(config), create=create)
        return self._db

    def read_db(self, config: Config | None = None) -> Database:
        """The database for reading: it must exist at this version's schema; nothing is
        created or migrated, and SQLite is opened read-only."""
        if self._db is None:
            from monitor.store.database import open_for_reading

            self._db = open_for_reading(self.checked_database(config))
        return self._db


def _configured_names(table: str) -> Callable[..., list[str]]:
    """Shell completion for --token / --source: the names in the config's `table`, read
    from the file as it is (no secrets resolved, nothing fails)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        import tomllib

        try:
            path = find_config(ctx.find_root().params.get("config_path"), os.environ)
            with path.open("rb") as file:
                entries = tomllib.load(file).get(table, [])
            names = [e.get("name") for e in entries if isinstance(e, dict)]
        except Exception:  # completion must never print an error into the command line
            return []
        return [n for n in names if isinstance(n, str) and n.startswith(incomplete)]

    return complete


def token_option(help_text: str, *, multiple: bool = True) -> Callable[[F], F]:
    """`--token NAME`, repeatable unless not `multiple`; completes configured names."""
    return click.option(
        "--token",
        "tokens" if multiple else "token",
        multiple=multiple,
        required=not multiple,
        metavar="NAME",
        help=help_text,
        shell_complete=_configured_names("tokens"),
    )


def source_option(help_text: str) -> Callable[[F], F]:
    """`--source NAME`, repeatable; completes configured names."""
    return click.option(
        "--source",
        "sources",
        multiple=True,
        metavar="NAME",
        help=help_text,
        shell_complete=_configured_names("sources"),
    )


def format_option(*choices: str) -> Callable[[F], F]:
    """`--format`, defaulting to the first choice."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True
    )


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-monitor")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: the first found, see below).",
)
@click.option(
    "--database", "database_url", metavar="URL", help="Database URL; overrides the config."
)
@click.option("-v", "--verbose", count=True, help="More logging (-v debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    database_url: str | None,
    verbose: int,
    quiet: bool,
    log_format: str,
) -> None:
    """Watch the models lists of LLM gateway tokens and alert on every real change."""
    app = App(config_path, database_url, -1 if quiet else verbose, log_format)
    app.setup_logging()
    ctx.obj = app


@contextmanager
def open_runtime(
    app: App, *, dispatch: bool = True, create: bool = True, machine_output: bool = False
) -> Iterator[tuple[Any, Any]]:
    """Checker and dispatcher over the database, created if missing (unless not `create`)
    and migrated.

    With `machine_output` (the command prints a JSON document), stdout channels print
    their alerts to standard error instead, so standard output holds the document alone.
    """
    from monitor.delivery.outbox import Dispatcher
    from monitor.delivery.registry import build_channels
    from monitor.runtime.cycle import Checker
    from monitor.runtime.heap import freeze_startup_objects

    config = app.config()
    db = app.db(config, create=create)
    console = sys.stderr if machine_output else None
    channels = build_channels(config, console=console) if dispatch else {}
    try:
        checker, dispatcher = Checker(config, db), Dispatcher(config, db, channels)
        freeze_startup_objects()
        yield checker, dispatcher
    finally:
        for channel in channels.values():
            channel.close()
        db.close()


def config_with_tokens(app: App) -> Config:
    config = app.config()
    if not config.tokens:
        fail(f"{config.path}: no [[tokens]] configured, nothing to check", EXIT_CONFIG)
    return config


def require_known(
    config: Config | None,
    session: Any,
    *,
    tokens: tuple[str, ...] = (),
    sources: tuple[str, ...] = (),
) -> None:
    """Exit 78 naming what exists when a --token or --source names nothing known.

    Known means configured, or recorded in the database (when `session` is given): the
    history of a token since removed from the config stays readable. The message lists
    the configured names, or without a config the recorded ones.
    """
    recorded: list[Any] = []
    if session is not None:
        from monitor.store.queries import status_records

        recorded = status_records(session)
    asked_for = (
        ("token", tokens, [t.name for t in config.tokens] if config else None, "token"),
        ("source", sources, [s.name for s in config.sources] if config else None, "source"),
    )
    for kind, asked, configured, attribute in asked_for:
        seen = sorted({getattr(s, attribute) for s in recorded})
        unknown = [n for n in dict.fromkeys(asked) if n not in {*(configured or ()), *seen}]
        if not unknown:
            continue
        named = f"no {kind}{'s' if len(unknown) > 1 else ''} named {', '.join(unknown)}"
        if configured is not None:
            fail(printable(f"{named} (configured: {', '.join(configured) or 'none'})"), EXIT_CONFIG)
        fail(
            printable(f"{named} in the database (recorded: {', '.join(seen) or 'none'})"),
            EXIT_CONFIG,
        )


def option_duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc
