"""The outbox: `deliveries` (inspect, replay) and `notify-test`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from monitor.core.clock import rfc3339, utcnow
from monitor.core.printable import printable
from monitor.core.records import DeliveryState

if TYPE_CHECKING:
    pass

from monitor.cli.app import (
    DELIVERY_STATES,
    EXIT_CHECK_FAILED,
    EXIT_CONFIG,
    App,
    fail,
    format_option,
    open_runtime,
)

# Every state of an outbox row: `deliveries --state`, and `status`, which counts each.


@click.command()
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
        with open_runtime(app, create=False, machine_output=machine) as (_, dispatcher):
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


@click.command("notify-test")
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
