"""`silence add | list | expire`: keep matching changes and token events from everyone,
for a while (docs/silences.md)."""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timedelta

import click

from monitor.cli.app import EXIT_CONFIG, App, fail, format_option, option_duration
from monitor.core.clock import rfc3339, utcnow
from monitor.core.ids import new_id
from monitor.core.printable import printable
from monitor.core.records import ChangeType, EventType

KINDS = [str(t) for t in ChangeType] + [str(t) for t in EventType if t is not EventType.TEST]


@click.group("silence")
def silence_group() -> None:
    """Silences: what not to tell anyone about, until when."""


@silence_group.command("add")
@click.option("--source", metavar="NAME", help="Only this source (default: any).")
@click.option("--token", metavar="NAME", help="Only this token (default: any).")
@click.option("--model", metavar="GLOB", help="Only models matching this glob, e.g. 'gpt-3.5*'.")
@click.option("--type", "kind", type=click.Choice(KINDS), help="Only this change or event type.")
@click.option("--for", "duration", metavar="DURATION", help="How long: 30m, 12h, 2d.")
@click.option("--until", metavar="TIME", help="Until this time (RFC 3339, e.g. 2026-12-24T00:00Z).")
@click.option("--comment", required=True, help="Why: shown with the silence everywhere.")
@click.option("--author", metavar="NAME", help="Who asked (default: $USER).")
@click.pass_obj
def add(
    app: App,
    source: str | None,
    token: str | None,
    model: str | None,
    kind: str | None,
    duration: str | None,
    until: str | None,
    comment: str,
    author: str | None,
) -> None:
    """Start a silence now; prints its id."""
    from monitor.events.silences import Silence
    from monitor.store.silences import add_silence

    if (duration is None) == (until is None):
        fail("give exactly one of --for and --until", EXIT_CONFIG)
    now = utcnow()
    if duration is not None:
        ends = now + timedelta(seconds=option_duration(duration, "--for"))
    else:
        ends = _moment(str(until))
        if ends <= now:
            fail(f"--until {until} is not in the future", EXIT_CONFIG)
    if not comment.strip():
        fail("--comment must say why", EXIT_CONFIG)
    who = author or os.environ.get("USER") or _login()
    silence = Silence(new_id("sil"), now, ends, source, token, model, kind, comment, who)
    config = app.optional_config()
    with app.db(config).session() as session:
        add_silence(session, silence, now)
    click.echo(silence.id)


@silence_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Expired ones too.")
@format_option("table", "json", "csv")
@click.pass_obj
def list_(app: App, show_all: bool, fmt: str) -> None:
    """Active silences (with --all, every one), newest first."""
    from monitor.cli.output import emit
    from monitor.store.silences import silences

    now = utcnow()
    with app.read_db(app.optional_config()).reader() as session:
        found = silences(session, active_at=None if show_all else now)
    rows = [
        [
            s.id,
            s.source or "*",
            s.token or "*",
            s.model or "*",
            s.kind or "*",
            rfc3339(s.starts_at),
            rfc3339(s.ends_at),
            "active" if s.active(now) else "expired",
            s.author,
            s.comment,
        ]
        for s in found
    ]
    records = [
        {
            "id": s.id,
            "source": s.source,
            "token": s.token,
            "model": s.model,
            "type": s.kind,
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "active": s.active(now),
            "author": s.author,
            "comment": s.comment,
        }
        for s in found
    ]
    headers = ["id", "source", "token", "model", "type", "starts", "ends", "state", "author"]
    emit(fmt, [*headers, "comment"], rows, records)


@silence_group.command("expire")
@click.argument("silence_id", metavar="ID")
@click.pass_obj
def expire(app: App, silence_id: str) -> None:
    """End a silence now: what it covered is delivered again from the next change on."""
    from monitor.store.silences import expire_silence

    config = app.optional_config()
    with app.db(config).session() as session:
        ended = expire_silence(session, silence_id, utcnow())
    if not ended:
        fail(printable(f"no running silence {silence_id!r}"), EXIT_CONFIG)
    click.echo(f"{silence_id} expired")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(
            printable(f"--until {text!r} is not a time; write e.g. 2026-12-24T00:00Z"), EXIT_CONFIG
        )
    if moment.tzinfo is None:
        fail("--until needs a time zone, e.g. 2026-12-24T00:00Z", EXIT_CONFIG)
    return moment


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
