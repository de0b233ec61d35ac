"""Running the pipeline: `check` (one cycle) and `run` (the daemon)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from monitor.core.printable import printable
from monitor.events.grouping import describe_error, summarize

if TYPE_CHECKING:
    pass

from monitor.cli.app import (
    EXIT_CHANGES,
    EXIT_CHECK_FAILED,
    App,
    config_with_tokens,
    format_option,
    open_runtime,
    require_known,
    token_option,
)


@click.command()
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
    config = config_with_tokens(app)
    require_known(config, None, tokens=tokens)
    machine = fmt == "json"
    with open_runtime(app, dispatch=not dry_run, machine_output=machine) as (checker, dispatcher):
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


@click.command()
@click.pass_obj
def run(app: App) -> None:
    """Run the daemon: scheduled checks and deliveries until SIGTERM/SIGINT."""
    from monitor.runtime.daemon import Daemon

    config_with_tokens(app)
    with open_runtime(app) as (checker, dispatcher):
        daemon = Daemon(app.config(), checker, dispatcher)
        daemon.install_signal_handlers()
        daemon.run()
