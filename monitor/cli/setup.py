"""Setting up and trying out: `init`, `config check`, `demo` and `sim`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.config import Config, SourceConfig
from monitor.config.discovery import (
    default_config_path,
    write_starter_config,
)
from monitor.core.printable import printable
from monitor.events.budget import duration_text
from monitor.store.urls import shown_url, sqlite_path

if TYPE_CHECKING:
    pass

from monitor.cli.app import (
    EXIT_CONFIG,
    App,
    fail,
)


@click.command()
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


@click.group("config")
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
    expiry = ", ".join(duration_text(s) for s in m.expiry_warning) or "never"
    click.echo(
        f"budgets: read every {m.budget_interval:g}s, warn {expiry} before expiry and below "
        f"{m.quota_warning.text()} of quota; prices: read every {m.prices_interval:g}s"
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
        if source.probe:
            click.echo(printable(f"    {_probe_plan(source)}"))
        for token in config.tokens_of(source.name):
            channels = ", ".join(c.name for c in config.channels_for(token)) or "none"
            group = f", group {token.group}" if token.group else ""
            group += ", not probed" if source.probe and not token.probe else ""
            click.echo(
                printable(
                    f"    token {token.name} (sha256:{token.fingerprint}{group}) -> {channels}"
                )
            )
    click.echo(f"channels ({len(config.channels)}):")
    for channel in config.channels:
        filters = f" models={','.join(channel.models)}" if channel.models else ""
        filters += f" exclude={','.join(channel.exclude_models)}" if channel.exclude_models else ""
        filters += f" changes={','.join(channel.changes)}" if channel.changes else ""
        events = ",".join(channel.events)
        click.echo(printable(f"  {channel.name}: {channel.type} events={events}{filters}"))
    quiet = _active_silences(app, config, url)
    if quiet:
        click.echo(
            f"silences: {len(quiet)} active ({', '.join(quiet)}; `model-monitor silence list`)"
        )
    click.echo("ok")


def _probe_plan(source: SourceConfig) -> str:
    """ "probes: every 1d, ..." for a source with probe = true (docs/probes.md)."""
    text = (
        f"probes: every listed model every {duration_text(source.probe_interval)}, "
        f"new or changed ones after {duration_text(source.probe_delay)}, "
        f"unavailable ones every {duration_text(source.probe_recheck)}; "
        f"at most {source.probe_budget} per token a day and {source.probe_per_cycle} per check"
    )
    if source.probe_models:
        text += f"; also {', '.join(source.probe_models)}"
    return text


def _active_silences(app: App, config: Config, url: str) -> list[str]:
    """The ids of the silences in force, if the database already exists; never fails.
    A SQLite file that is not there yet is not opened (nor SQLAlchemy loaded)."""
    path = sqlite_path(url)
    if path is not None and not Path(path).expanduser().exists():
        return []
    from monitor.core.clock import utcnow
    from monitor.store.silences import silences

    try:  # read-only, as _detected_flavors
        with app.read_db(config).reader() as session:
            return [s.id for s in silences(session, active_at=utcnow())]
    except Exception:
        return []


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


@click.command()
@click.option("--fast", is_flag=True, help="No pauses between steps.")
@click.pass_obj
def demo(app: App, fast: bool) -> None:
    """A self-contained tour: a simulated gateway on loopback, a few cycles, changes shown."""
    from monitor.cli.demo import run_demo

    if app.verbosity < 1:  # the tour prints what matters; -v shows the logs too
        logging.getLogger("monitor").setLevel(logging.WARNING)
    run_demo(pause=0.0 if fast else 0.6)


@click.command()
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
