"""`db upgrade` and `db prune`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from monitor.core.clock import utcnow

if TYPE_CHECKING:
    pass

from monitor.cli.app import (
    App,
    option_duration,
)


@click.group("db")
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
    """Delete checks, events and probes older than AGE, and snapshots nothing refers to."""
    from monitor.store.queries import prune

    before = utcnow() - timedelta(seconds=option_duration(older_than, "--older-than"))
    db = app.db(app.optional_config(), create=False)
    with db.session() as session:
        report = prune(session, before)
    click.echo(
        f"pruned {report.checks} checks, {report.events} events, {report.snapshots} snapshots, "
        f"{report.probes} probes"
    )
