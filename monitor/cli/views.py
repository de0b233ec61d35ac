"""Reading what is stored: `models`, `history`, `diff`, `status` and `report`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.config import Config
from monitor.core.clock import rfc3339, utcnow
from monitor.core.money import decimal_text
from monitor.core.printable import printable, printable_data
from monitor.core.records import DeliveryState, ModelRecord
from monitor.events.grouping import summarize

if TYPE_CHECKING:
    from monitor.store.budgets import BudgetRecord

from monitor.cli.app import (
    DELIVERY_STATES,
    EXIT_CONFIG,
    App,
    fail,
    format_option,
    option_duration,
    require_known,
    source_option,
    token_option,
)


@click.command()
@token_option("Only this token (repeatable).")
@format_option("table", "json", "csv")
@click.pass_obj
def models(app: App, tokens: tuple[str, ...], fmt: str) -> None:
    """The models each token sees now (its last successful check)."""
    from monitor.cli.output import emit, model_table
    from monitor.store.queries import last_models, status_records
    from monitor.store.snapshots import SnapshotStore

    config = app.optional_config()
    db = app.read_db(config)
    store = SnapshotStore()
    seen: list[tuple[str, ModelRecord]] = []
    with db.reader() as session:
        require_known(config, session, tokens=tokens)
        names = [s.token for s in status_records(session) if not tokens or s.token in tokens]
        if tokens and not names:
            fail(f"no checks recorded for token {', '.join(tokens)}", EXIT_CONFIG)
        for name in names:
            found = last_models(session, store, name)
            if found is not None:
                seen += [(name, r) for r in sorted(found[1].values(), key=lambda r: r.id)]
    headers, rows = model_table(seen)
    emit(fmt, headers, rows, [{"token": name, **r.to_json()} for name, r in seen])


@click.command()
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

    start = utcnow() - timedelta(seconds=option_duration(since, "--since"))
    config = app.optional_config()
    db = app.read_db(config)
    with db.reader() as session:
        require_known(config, session, tokens=tokens, sources=sources)
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


@click.command()
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
    from monitor.store.queries import snapshot_history
    from monitor.store.snapshots import SnapshotStore

    config = app.optional_config()
    db = app.read_db(config)
    store = SnapshotStore()
    with db.reader() as session:
        require_known(config, session, tokens=(token,))
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


@click.command()
@format_option("table", "json", "csv")
@click.pass_obj
def status(app: App, fmt: str) -> None:
    """Per token: last check, result, model count, health; deliveries pending and dead."""
    from dataclasses import asdict

    from monitor.cli.output import emit
    from monitor.store.budgets import budget_records
    from monitor.store.prices import price_states
    from monitor.store.probes import unavailable_pairs
    from monitor.store.queries import delivery_counts, disabled_channels, status_records
    from monitor.store.silences import silences

    db = app.read_db(app.optional_config())
    with db.reader() as session:
        statuses = status_records(session)
        counts = delivery_counts(session)
        disabled = disabled_channels(session)
        budgets = budget_records(session)
        prices_read = price_states(session)
        quiet = silences(session, active_at=utcnow())
        uncallable = unavailable_pairs(session)
    rows = []
    for s in statuses:
        budget = budgets.get(s.token)
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
                _remaining(budget),
                _expires(budget),
            ]
        )
    counts = {state: counts.get(state, 0) for state in DELIVERY_STATES} | counts
    records = {
        "tokens": [asdict(s) | {"budget": _budget_json(budgets.get(s.token))} for s in statuses],
        "deliveries": counts,
        "disabled_channels": [
            {"channel": c.channel, "disabled_at": c.disabled_at, "reason": c.reason}
            for c in disabled
        ],
        "prices": [
            {
                "source": p.source,
                "available": p.confirmed_id is not None and p.outcome == "ok",
                "outcome": p.outcome,
                "checked_at": p.checked_at,
                "message": p.message,
            }
            for p in prices_read.values()
        ],
        "silences": [
            {"id": s.id, "ends_at": s.ends_at, "author": s.author, "comment": s.comment}
            for s in quiet
        ],
        "unavailable": [
            {
                "source": source,
                "token": token,
                "model": model,
                "error": None if error is None else error.to_json(),
            }
            for (token, model), (source, error) in sorted(uncallable.items())
        ],
    }
    emit(
        fmt,
        [
            "source",
            "flavor",
            "token",
            "fingerprint",
            "last check",
            "outcome",
            "models",
            "health",
            "remaining",
            "expires",
        ],
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
        if quiet:
            ids = ", ".join(s.id for s in quiet)
            click.echo(f"silences: {len(quiet)} active ({ids}; `model-monitor silence list`)")
        if uncallable:
            pairs = len(uncallable)
            models = len({model for _, model in uncallable})
            click.echo(
                f"probes: {models} listed model{'s' if models != 1 else ''} not callable "
                f"({pairs} token-model pair{'s' if pairs != 1 else ''}; "
                "`model-monitor probes --unavailable`)"
            )
        for p in prices_read.values():
            said = f"{p.availability} (read {rfc3339(p.checked_at)})"
            click.echo(printable(f"prices of {p.source}: {said}"))
        for channel in disabled:
            click.echo(
                printable(
                    f"WARNING: channel {channel.channel} disabled since "
                    f"{rfc3339(channel.disabled_at)}: {channel.reason} "
                    "(fix it, then `model-monitor deliveries --retry-dead`)"
                )
            )


@click.command()
@source_option("Only this source (repeatable).")
@token_option("Prices as this token pays them, at its group's ratio (repeatable).")
@format_option("table", "json", "csv")
@click.pass_obj
def prices(app: App, sources: tuple[str, ...], tokens: tuple[str, ...], fmt: str) -> None:
    """Each source's prices as last reported: USD per 1M tokens, or per request.

    Without --token: the base prices and, for each group a configured token names, that
    group's. Sources whose pricing page is hidden show no rows (`status` says why).
    """
    from monitor.cli.output import emit
    from monitor.store.prices import load_price_list, price_states

    config = app.optional_config()
    db = app.read_db(config)
    configured = config.tokens if config is not None else ()
    strangers = [t for t in tokens if t not in {c.name for c in configured}]
    if strangers:
        fail(f"token {', '.join(strangers)} is not in the config", EXIT_CONFIG)
    rows: list[list[Any]] = []
    records: list[dict[str, Any]] = []
    unknown: list[tuple[str, str]] = []  # (source, group) the price list has no ratio for
    with db.reader() as session:
        states = price_states(session)
        for name, state in states.items():
            if (sources and name not in sources) or state.confirmed_id is None:
                continue
            listed = load_price_list(session, state.confirmed_id)
            chosen = [t for t in configured if t.source == name]
            if tokens:
                chosen = [t for t in chosen if t.name in tokens]
                if not chosen:
                    continue
            named = sorted({t.group for t in chosen if t.group is not None})
            groups = [g for g in named if listed.knows_group(g)]
            unknown += [(name, g) for g in named if g not in groups]
            base = not tokens or any(t.group is None for t in chosen)
            views: list[str | None] = [None] if base else []
            views += groups
            for group in views:
                for model in sorted(listed.prices):
                    price = listed.effective(model, group)
                    if price is None:
                        continue
                    parts = {k: decimal_text(v) for k, v in price.to_map().items()}
                    cells = [parts.get(k) for k in ("input", "output", "cache_input", "request")]
                    rows.append([name, group, model, *cells])
                    records.append(
                        {
                            "source": name,
                            "group": group,
                            "model": model,
                            **{
                                k: parts.get(k)
                                for k in ("input", "output", "cache_input", "request")
                            },
                        }
                    )
    headers = ["source", "group", "model", "input", "output", "cache input", "request"]
    emit(fmt, headers, rows, records)
    if fmt == "table" and not states:
        click.echo("no prices recorded (new-api and LiteLLM publish them; see `status`)")
    for source, group in unknown:
        click.echo(
            printable(
                f"note: {source} publishes no ratio for group {group}: its prices are unknown"
            ),
            err=True,
        )


@click.command()
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


def _remaining(record: BudgetRecord | None) -> str | None:
    """ "$4.20 of $50.00", "unlimited", or None when the budget was never read."""
    budget = record.budget if record is not None else None
    return budget.left_text() if budget is not None else None


def _expires(record: BudgetRecord | None) -> str | None:
    budget = record.budget if record is not None else None
    if budget is None:
        return None
    return "never" if budget.expires_at is None else rfc3339(budget.expires_at)


def _budget_json(record: BudgetRecord | None) -> dict[str, object] | None:
    """A token's last budget read for `status --format json`: None when never read."""
    if record is None:
        return None
    out: dict[str, object] = {
        "checked_at": record.checked_at,
        "ok_at": record.ok_at,
        "error": record.last_error,
    }
    if record.budget is not None:
        out |= record.budget.to_json()
    return out
