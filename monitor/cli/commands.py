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
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config import Config, ConfigError
from monitor.config.discovery import (
    WriteRefused,
    default_config_path,
    default_database_url,
    find_config,
    write_starter_config,
)
from monitor.config.durations import parse_duration
from monitor.core.clock import rfc3339, utcnow
from monitor.core.printable import printable, printable_data
from monitor.core.records import DeliveryState, ModelRecord
from monitor.events.grouping import describe_error, summarize
from monitor.runtime import catalogue, logs
from monitor.store.errors import DatabaseError, DatabaseUrlError
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

# Every state of an outbox row: `deliveries --state`, and `status`, which counts each.
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


# -- init / config ---------------------------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--systemd",
    "units_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Instead: write the systemd units into DIR (e.g. /etc/systemd/system).",
)
@click.option(
    "--executable",
    metavar="PATH",
    default="/usr/local/bin/model-monitor",
    show_default=True,
    help="With --systemd: the binary ExecStart= runs.",
)
@click.option(
    "--example",
    metavar="PATH|-",
    help="Instead: write the full commented example config to PATH (- for stdout).",
)
@click.pass_obj
def init(
    app: App, path: Path | None, units_dir: Path | None, executable: str, example: str | None
) -> None:
    """Write a commented starter config (never overwrites).

    With --systemd DIR, write the service, check service and timer units instead; with
    --example PATH, the example config that documents every key. Neither overwrites.
    """
    if units_dir is not None or example is not None:
        _init_shipped(path, units_dir, executable, example)
        return
    if path is None:
        path = Path(app.config_path) if app.config_path else default_config_path(os.environ)
    write_starter_config(path)
    click.echo(
        f"wrote {path}\nnext: set the token variables it names, then "
        f"`model-monitor --config {path} config check`"
    )


def _init_shipped(
    path: Path | None, units_dir: Path | None, executable: str, example: str | None
) -> None:
    """`init --systemd DIR` and `init --example PATH|-`: the files shipped in the package."""
    from monitor.cli.shipped import InstallError, example_config, write_example, write_units

    if path is not None or (units_dir is not None and example is not None):
        fail("init: give one of PATH, --systemd DIR or --example PATH", EXIT_CONFIG)
    try:
        if example == "-":
            click.echo(example_config(), nl=False)
        elif example is not None:
            written = write_example(example)
            click.echo(
                f"wrote {written}\nnext: keep what you need, then "
                f"`model-monitor --config {written} config check`"
            )
        elif units_dir is not None:
            units = write_units(units_dir, executable)
            click.echo("\n".join(f"wrote {unit}" for unit in units))
            click.echo(
                "next: put each token in /etc/model-monitor/credentials/NAME (the directory "
                "must exist), then `systemctl daemon-reload` and enable "
                "model-monitor.service or model-monitor-check.timer, not both"
            )
    except InstallError as exc:
        fail(str(exc), EXIT_CONFIG)


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.pass_obj
def config_check(app: App) -> None:
    """Validate the config and print the resolved plan, secrets redacted."""
    config = app.config()
    m = config.monitor
    schedule = f"cron {m.cron!r}" if m.cron else f"every {m.interval:g}s"
    url = app.checked_database(config)  # what `check` and `run` would fail on, fails here
    click.echo(f"config: {config.path}")
    click.echo(f"database: {shown_url(url)}")
    click.echo(
        f"schedule: {schedule}, jitter {m.jitter:g}s, timeout {m.timeout:g}s, "
        f"concurrency {m.concurrency}"
    )
    click.echo(
        f"detection: confirm_checks={m.confirm_checks}, failure_threshold={m.failure_threshold}, "
        f"mass_change_share={m.mass_change_share:g}"
    )
    if m.listen:
        from monitor.runtime.listener import is_loopback, parse_address

        guard = f"basic auth as {m.listen_username}" if m.listen_username else "no auth"
        if not m.listen_username and not is_loopback(parse_address(m.listen)[0]):
            guard += ", reachable beyond this machine"
        click.echo(f"listen: http://{m.listen}/ (status pages, /metrics; {guard})")
    detected = _detected_flavors(app, config)
    click.echo(f"sources ({len(config.sources)}):")
    for source in config.sources:
        flavor = source.flavor
        if flavor == "auto":
            seen = detected.get(source.name)
            flavor = f"auto (detected: {seen})" if seen else "auto (not checked yet)"
        click.echo(f"  {source.name}: {flavor} {source.base_url}")
        for token in config.tokens_of(source.name):
            channels = ", ".join(c.name for c in config.channels_for(token)) or "none"
            click.echo(f"    token {token.name} (sha256:{token.fingerprint}) -> {channels}")
    click.echo(f"channels ({len(config.channels)}):")
    for channel in config.channels:
        filters = f" models={','.join(channel.models)}" if channel.models else ""
        filters += f" exclude={','.join(channel.exclude_models)}" if channel.exclude_models else ""
        events = ",".join(channel.events)
        click.echo(printable(f"  {channel.name}: {channel.type} events={events}{filters}"))
    click.echo("ok")


def _detected_flavors(app: App, config: Config) -> dict[str, str]:
    """What `auto` sources were detected as, if the database already exists; never fails."""
    if not any(s.flavor == "auto" for s in config.sources):
        return {}
    from monitor.store.queries import detected_flavors

    try:  # read-only: never creates or migrates a database just to look
        with app.read_db(config).reader() as session:
            return detected_flavors(session)
    except Exception:  # config check must work without a database
        return {}


# -- check / run -----------------------------------------------------------------------


@contextmanager
def _runtime(
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


@cli.command()
@token_option("Only this token (repeatable).")
@click.option("--dry-run", is_flag=True, help="Poll and diff, but store and send nothing.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when changes were found.")
@format_option("text", "json")
@click.pass_obj
def check(app: App, tokens: tuple[str, ...], dry_run: bool, exit_code: bool, fmt: str) -> None:
    """Run one cycle: poll, store, diff, deliver, print a summary (cron mode).

    With -q, only tokens that changed or failed are listed, and deliveries only when some
    are retrying or dead: an unchanged, successful run prints nothing, so cron mails only
    when there is news. With --format json, stdout channels print to standard error.
    """
    config = _config_with_tokens(app)
    _require_known(config, None, tokens=tokens)
    machine = fmt == "json"
    with _runtime(app, dispatch=not dry_run, machine_output=machine) as (checker, dispatcher):
        count = len(tokens) if tokens else len(config.tokens)
        with _progress(count) as advance:
            checker.on_fetched = advance
            reports = checker.check(tokens, dry_run=dry_run)
        delivered = dispatcher.run_once() if not dry_run else None
    token_reports = [t for r in reports for t in r.tokens]
    if machine:
        from monitor.cli.output import to_json

        click.echo(
            to_json(
                {
                    "dry_run": dry_run,
                    "tokens": [_token_json(t) for t in token_reports],
                    "events": [e.to_payload() for r in reports for e in r.events],
                    "deliveries": None
                    if delivered is None
                    else {
                        "sent": delivered.sent,
                        "retrying": delivered.retried,
                        "dead": delivered.dead,
                    },
                }
            )
        )
    else:
        quiet = app.verbosity < 0
        lines = [
            printable(_token_line(t))
            for t in token_reports
            if not quiet or t.error is not None or t.changes
        ]
        if delivered is not None and (
            delivered.retried or delivered.dead or (delivered.sent and not quiet)
        ):
            lines.append(
                f"deliveries: {delivered.sent} sent, {delivered.retried} retrying, "
                f"{delivered.dead} dead"
            )
        if dry_run and (lines or not quiet):
            lines.append("dry run: nothing was stored or sent")
        for line in lines:
            click.echo(line)
    if any(t.error for t in token_reports):
        sys.exit(EXIT_CHECK_FAILED)
    if exit_code and any(t.changes for t in token_reports):
        sys.exit(EXIT_CHANGES)


PROGRESS_FROM = 10  # tokens: fewer finish before a bar would be worth drawing


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None] | None]:
    """A progress bar on stderr while polling many tokens, only on a terminal."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    lock = threading.Lock()
    with click.progressbar(length=total, label="checking", file=sys.stderr) as bar:

        def advance() -> None:
            with lock:  # fetch threads report concurrently
                bar.update(1)

        yield advance


def _config_with_tokens(app: App) -> Config:
    config = app.config()
    if not config.tokens:
        fail(f"{config.path}: no [[tokens]] configured, nothing to check", EXIT_CONFIG)
    return config


def _require_known(
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
        from monitor.store.queries import token_statuses

        recorded = token_statuses(session)
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


def _token_line(t: Any) -> str:
    head = f"{t.source}/{t.token}"
    if t.error is not None:
        return f"{head}: FAILED {describe_error(t.error)}"
    if t.outcome == "skipped":
        return f"{head}: skipped (the source asked us to wait after an HTTP 429)"
    if t.baseline:
        return f"{head}: ok, {t.model_count} models (baseline recorded)"
    if not t.changes:
        return f"{head}: ok, {t.model_count} models, no changes"
    return f"{head}: ok, {t.model_count} models, {summarize(t.changes, '').removesuffix(' on ')}"


def _token_json(t: Any) -> dict[str, Any]:
    return {
        "source": t.source,
        "token": t.token,
        "outcome": t.outcome,
        "models": t.model_count,
        "baseline": t.baseline,
        "changes": [c.to_json() for c in t.changes],
        "error": t.error.to_json() if t.error else None,
        "duration_ms": round(t.duration * 1000),
    }


@cli.command()
@click.pass_obj
def run(app: App) -> None:
    """Run the daemon: scheduled checks and deliveries until SIGTERM/SIGINT."""
    from monitor.runtime.daemon import Daemon

    _config_with_tokens(app)
    with _runtime(app) as (checker, dispatcher):
        daemon = Daemon(app.config(), checker, dispatcher)
        daemon.install_signal_handlers()
        daemon.run()


# -- read-only views -------------------------------------------------------------------


@cli.command()
@token_option("Only this token (repeatable).")
@format_option("table", "json", "csv")
@click.pass_obj
def models(app: App, tokens: tuple[str, ...], fmt: str) -> None:
    """The models each token sees now (its last successful check)."""
    from monitor.cli.output import emit, model_table
    from monitor.store.queries import last_models, token_statuses
    from monitor.store.snapshots import SnapshotStore

    config = app.optional_config()
    db = app.read_db(config)
    store = SnapshotStore()
    seen: list[tuple[str, ModelRecord]] = []
    with db.reader() as session:
        _require_known(config, session, tokens=tokens)
        names = [s.token for s in token_statuses(session) if not tokens or s.token in tokens]
        if tokens and not names:
            fail(f"no checks recorded for token {', '.join(tokens)}", EXIT_CONFIG)
        for name in names:
            found = last_models(session, store, name)
            if found is not None:
                seen += [(name, r) for r in sorted(found[1].values(), key=lambda r: r.id)]
    headers, rows = model_table(seen)
    emit(fmt, headers, rows, [{"token": name, **r.to_json()} for name, r in seen])


@cli.command()
@token_option("Only events involving this token (repeatable).")
@source_option("Only this source (repeatable).")
@click.option("--since", default="7d", show_default=True, help="How far back (30m, 12h, 7d).")
@format_option("text", "json")
@click.pass_obj
def history(
    app: App, tokens: tuple[str, ...], sources: tuple[str, ...], since: str, fmt: str
) -> None:
    """Past events and their changes, and baselines recorded, oldest first."""
    from monitor.cli.output import to_json
    from monitor.delivery.templates import render
    from monitor.store.queries import baselines_since, events_since

    start = utcnow() - timedelta(seconds=_duration(since, "--since"))
    config = app.optional_config()
    db = app.read_db(config)
    with db.reader() as session:
        _require_known(config, session, tokens=tokens, sources=sources)
        one_source = sources[0] if len(set(sources)) == 1 else None
        events = [
            e
            for e in events_since(session, start, source=one_source)
            if (not sources or e.get("source", {}).get("name") in sources)
            and (not tokens or set(tokens) & set(e.get("tokens", ())))
        ]
        baselines = [
            b
            for b in baselines_since(session, start)
            if (not sources or b.source in sources) and (not tokens or b.token in tokens)
        ]
    if fmt == "json":
        entries = [(e["occurred_at"], e) for e in events]
        entries += [(rfc3339(b.started_at), _baseline_json(b, config)) for b in baselines]
        click.echo(to_json([entry for _, entry in sorted(entries, key=lambda item: item[0])]))
        return
    lines = [
        (
            rfc3339(b.started_at),
            printable(f"[baseline] {b.source}/{b.token}: {b.model_count} models"),
        )
        for b in baselines
    ]
    lines += [(e["occurred_at"], render("event.txt.j2", printable_data(e))) for e in events]
    for _, text in sorted(lines, key=lambda item: item[0]):
        click.echo(text)
    if not lines:
        click.echo(f"no events since {rfc3339(start)}")


def _baseline_json(check: Any, config: Config | None) -> dict[str, Any]:
    """A baseline in `history --format json`: shaped like the events around it, with
    the type "baseline" (and the source's base_url when the config still has it)."""
    source = {"name": check.source}
    for configured in config.sources if config else ():
        if configured.name == check.source:
            source["base_url"] = configured.base_url
    return {
        "type": "baseline",
        "occurred_at": rfc3339(check.started_at),
        "source": source,
        "tokens": [check.token],
        "summary": f"baseline of {check.token}: {check.model_count} models",
        "models": check.model_count,
    }


@cli.command()
@token_option("The token whose snapshots to compare.", multiple=False)
@click.option(
    "--from", "from_id", type=int, metavar="ID", help="Older snapshot id (default: previous)."
)
@click.option("--to", "to_id", type=int, metavar="ID", help="Newer snapshot id (default: latest).")
@format_option("text", "json")
@click.pass_obj
def diff(app: App, token: str, from_id: int | None, to_id: int | None, fmt: str) -> None:
    """The difference between two stored snapshots of a token.

    \b
    Text, one line per change:
      + MODEL [endpoint types]     added
      - MODEL                      removed
      ~ MODEL endpoint types: +gained -lost
      ~ MODEL FIELD: before -> after (+percent%)
    """
    from monitor.cli.output import change_line, to_json
    from monitor.core.diff import diff_models
    from monitor.events.grouping import summarize
    from monitor.store.queries import snapshot_history
    from monitor.store.snapshots import SnapshotStore

    config = app.optional_config()
    db = app.read_db(config)
    store = SnapshotStore()
    with db.reader() as session:
        _require_known(config, session, tokens=(token,))
        seen = snapshot_history(session, token)
        if fmt == "text":
            click.echo(
                "snapshots (newest first): "
                + (", ".join(f"{sid} ({rfc3339(when)})" for sid, when in seen[:10]) or "none")
            )
        if to_id is None:
            to_id = seen[0][0] if seen else None
        if from_id is None:
            from_id = next((sid for sid, _ in seen if sid != to_id), None)
        if from_id is None or to_id is None:
            fail(f"token {token!r} has fewer than two distinct snapshots to compare", EXIT_CONFIG)
        try:
            before, after = store.load(session, from_id), store.load(session, to_id)
        except LookupError as exc:
            fail(str(exc), EXIT_CONFIG)
    changes = diff_models(before, after)
    summary = summarize(changes, "").removesuffix(" on ")
    if fmt == "json":
        taken = dict(seen)

        def side(sid: int, models: dict[str, ModelRecord]) -> dict[str, Any]:
            at = taken.get(sid)
            return {"snapshot": sid, "taken_at": rfc3339(at) if at else None, "models": len(models)}

        document = {
            "token": token,
            "from": side(from_id, before),
            "to": side(to_id, after),
            "summary": summary,
            "changes": [{k: v for k, v in c.to_json().items() if k != "tokens"} for c in changes],
        }
        click.echo(to_json(document))
        return
    click.echo(
        f"snapshot {from_id} ({len(before)} models) -> {to_id} ({len(after)} models): {summary}"
    )
    for change in changes:
        click.echo(printable(f"  {change_line(change)}"))


@cli.command()
@format_option("table", "json", "csv")
@click.pass_obj
def status(app: App, fmt: str) -> None:
    """Per token: last check, result, model count, health; deliveries pending and dead."""
    from dataclasses import asdict

    from monitor.cli.output import emit
    from monitor.store.queries import delivery_counts, disabled_channels, token_statuses

    db = app.read_db(app.optional_config())
    with db.reader() as session:
        statuses = token_statuses(session)
        counts = delivery_counts(session)
        disabled = disabled_channels(session)
    rows = []
    for s in statuses:
        since = f" since {rfc3339(s.failing_since)}" if s.failing_since else ""
        health = f"failing{since}" if s.failing else "ok"
        rows.append(
            [
                s.source,
                s.flavor,
                s.token,
                s.fingerprint,
                s.last_check_at,
                s.last_outcome,
                s.model_count,
                health,
            ]
        )
    counts = {state: counts.get(state, 0) for state in DELIVERY_STATES} | counts
    records = {
        "tokens": [asdict(s) for s in statuses],
        "deliveries": counts,
        "disabled_channels": [
            {"channel": c.channel, "disabled_at": c.disabled_at, "reason": c.reason}
            for c in disabled
        ],
    }
    emit(
        fmt,
        ["source", "flavor", "token", "fingerprint", "last check", "outcome", "models", "health"],
        rows,
        records,
    )
    if fmt == "table":
        held = counts.get(DeliveryState.HELD)
        held_text = f", {held} held for digests" if held else ""
        click.echo(
            f"deliveries: {counts.get(DeliveryState.PENDING, 0)} pending, "
            f"{counts.get(DeliveryState.SENT, 0)} sent, "
            f"{counts.get(DeliveryState.DEAD, 0)} dead{held_text}"
        )
        for channel in disabled:
            click.echo(
                printable(
                    f"WARNING: channel {channel.channel} disabled since "
                    f"{rfc3339(channel.disabled_at)}: {channel.reason} "
                    "(fix it, then `model-monitor deliveries --retry-dead`)"
                )
            )


@cli.command()
@click.option(
    "--state",
    type=click.Choice(DELIVERY_STATES),
    help="Only this state.",
)
@click.option("--id", "show_id", metavar="ID", help="One delivery with all its attempts.")
@click.option("--retry", "retry_id", metavar="ID", help="Send this delivery again.")
@click.option("--retry-dead", is_flag=True, help="Send every dead delivery again.")
@format_option("table", "json", "csv")
@click.pass_obj
def deliveries(
    app: App,
    state: str | None,
    show_id: str | None,
    retry_id: str | None,
    retry_dead: bool,
    fmt: str,
) -> None:
    """Inspect deliveries and their attempts; replay one, or all dead ones."""
    from monitor.cli.output import emit
    from monitor.delivery import outbox
    from monitor.store import queries

    if retry_id or retry_dead:
        machine = fmt == "json"
        # Replays need an outbox; stdout channels print to stderr under a JSON document.
        with _runtime(app, create=False, machine_output=machine) as (_, dispatcher):
            count = outbox.retry(dispatcher.db, delivery_id=retry_id, dead=retry_dead)
            if retry_id and not count:
                fail(f"no delivery {retry_id!r}", EXIT_CONFIG)
            report = dispatcher.run_once()
        if machine:
            from monitor.cli.output import to_json

            done = {"sent": report.sent, "retrying": report.retried, "dead": report.dead}
            click.echo(to_json({"requeued": count, **done}))
        else:
            click.echo(
                f"requeued {count}; {report.sent} sent, {report.retried} retrying, "
                f"{report.dead} dead"
            )
        return
    db = app.read_db(app.optional_config())
    if show_id:
        with db.reader() as session:
            tries = queries.attempts(session, show_id)
        rows = [
            [a.attempt, a.at, a.duration_ms, "ok" if a.ok else "failed", a.status, a.error]
            for a in tries
        ]
        records = [
            {
                "attempt": a.attempt,
                "at": a.at,
                "duration_ms": a.duration_ms,
                "ok": a.ok,
                "status": a.status,
                "error": a.error,
            }
            for a in tries
        ]
        emit(fmt, ["attempt", "at", "ms", "result", "status", "error"], rows, records)
        return
    with db.reader() as session:
        found = queries.deliveries(session, state)
    rows = [
        [
            d.id,
            d.channel,
            d.state,
            d.attempts,
            d.created_at,
            d.next_attempt_at if d.state == DeliveryState.PENDING else d.sent_at,
            d.last_error,
            summary,
        ]
        for d, _, summary in found
    ]
    records = [
        {
            "id": d.id,
            "event_id": d.event_id,
            "event_type": kind,
            "channel": d.channel,
            "state": d.state,
            "attempts": d.attempts,
            "created_at": d.created_at,
            "next_attempt_at": d.next_attempt_at,
            "sent_at": d.sent_at,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "summary": summary,
        }
        for d, kind, summary in found
    ]
    emit(
        fmt,
        ["id", "channel", "state", "attempts", "created", "next/sent", "last error", "event"],
        rows,
        records,
    )


@cli.command()
@click.option(
    "--html",
    "html_path",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=str),
    help="Write the report to FILE ('-' for stdout).",
)
@click.option("--source", metavar="NAME", help="Only this source.")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="Marks models added or removed, and lists events, from this many days back.",
)
@click.pass_obj
def report(app: App, html_path: str, source: str | None, days: int) -> None:
    """One static HTML file to mail or attach: each source's models x tokens matrix and
    the timeline of changes (the status pages' content, no server needed)."""
    from monitor.store.snapshots import SnapshotStore
    from monitor.web.render import render
    from monitor.web.report import build_report

    config = app.optional_config()
    db = app.read_db(config)
    now = utcnow()
    try:
        with db.reader() as session:
            view = build_report(session, SnapshotStore(), config, now=now, days=days, source=source)
    finally:
        db.close()
    if view is None:
        fail(f"no source {source!r} in the config or the database", EXIT_CONFIG)
    html = render("report.html.j2", view=view, now=now, filter_script=True)
    if html_path == "-":
        click.echo(html, nl=False)
        return
    try:
        Path(html_path).write_text(html, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {html_path}: {exc.strerror}", EXIT_CONFIG)
    events = len(view.timeline.entries)
    click.echo(
        f"wrote {html_path}: {len(view.matrices)} source(s), {events} event(s) "
        f"in the last {days} days"
    )


# -- database --------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Schema migrations and retention."""


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Create the database or migrate it to this version (`check` and `run` do it too;
    read commands never do)."""
    db = app.db(app.optional_config())
    click.echo(f"{db.display_url}: schema at {db.current_revision()}")


@db_group.command("prune")
@click.option("--older-than", required=True, metavar="AGE", help="e.g. 90d")
@click.pass_obj
def db_prune(app: App, older_than: str) -> None:
    """Delete checks and events older than AGE, and snapshots nothing refers to."""
    from monitor.store.queries import prune

    before = utcnow() - timedelta(seconds=_duration(older_than, "--older-than"))
    db = app.db(app.optional_config(), create=False)
    with db.session() as session:
        report = prune(session, before)
    click.echo(
        f"pruned {report.checks} checks, {report.events} events, {report.snapshots} snapshots"
    )


# -- delivery test and demo ------------------------------------------------------------


@cli.command("notify-test")
@click.option("--channel", "channel_name", metavar="NAME", help="Only this channel.")
@click.pass_obj
def notify_test(app: App, channel_name: str | None) -> None:
    """Send a sample event through each channel (or one) and report the outcome."""
    from dataclasses import replace

    from monitor.core.ids import new_id
    from monitor.delivery import samples
    from monitor.delivery.base import Message
    from monitor.delivery.registry import build_channels

    config = app.config()
    channels = build_channels(config)
    if channel_name and channel_name not in channels:
        fail(
            f"no channel {channel_name!r}; configured: {', '.join(channels) or 'none'}", EXIT_CONFIG
        )
    failed = False
    for name, channel in channels.items():
        if channel_name and name != channel_name:
            continue
        event = replace(samples.sample_test(name), id=new_id("evt"), occurred_at=rfc3339(utcnow()))
        result = channel.send(Message(new_id("msg"), event.id, event.to_payload()))
        failed |= not result.ok
        outcome = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(printable(f"{name} ({channel.config.type}): {outcome}"))
        channel.close()
    if failed:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.option("--fast", is_flag=True, help="No pauses between steps.")
@click.pass_obj
def demo(app: App, fast: bool) -> None:
    """A self-contained tour: a simulated gateway on loopback, a few cycles, changes shown."""
    from monitor.cli.demo import run_demo

    if app.verbosity < 1:  # the tour prints what matters; -v shows the logs too
        logging.getLogger("monitor").setLevel(logging.WARNING)
    run_demo(pause=0.0 if fast else 0.6)


@cli.command()
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="sim.toml",
    show_default=True,
    help="The simulator's state (models, tokens, faults); written if missing, re-read on save.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8300, show_default=True)
@click.option(
    "--tokens",
    type=click.IntRange(1, 1000),
    default=2,
    show_default=True,
    help="Tokens in a new state file.",
)
@click.option(
    "--flavor",
    default="new-api",
    show_default=True,
    help="The API a new state file speaks (new-api, openai, anthropic, gemini, ...).",
)
@click.option(
    "--write-config",
    "config_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a model-monitor config that polls the simulator to this path.",
)
def sim(
    state_path: Path, host: str, port: int, tokens: int, flavor: str, config_out: Path | None
) -> None:
    """Run the gateway simulator on its own, to try a config, `run` and the pages.

    Edit the state file while it runs: add or remove models, expire a token, inject a
    fault; the next check sees it. Stop with Ctrl-C.
    """
    from monitor.sim.serve import StateError, serve

    try:
        serve(state_path, host=host, port=port, tokens=tokens, flavor=flavor, config_out=config_out)
    except StateError as exc:
        fail(str(exc), EXIT_CONFIG)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", EXIT_CONFIG)


def _duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


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
