"""`model-monitor probes`: every probe sent, and the models found listed but not callable
(docs/probes.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from monitor.cli.app import App, format_option, option_duration, require_known, token_option
from monitor.config import Config
from monitor.core.clock import rfc3339, utcnow


@click.command()
@token_option("Only this token's probes (repeatable).")
@click.option("--since", default="1d", show_default=True, help="How far back (30m, 12h, 7d).")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@click.option(
    "--unavailable",
    is_flag=True,
    help="Instead: the models each token lists but cannot call, as last confirmed.",
)
@format_option("table", "json", "csv")
@click.pass_obj
def probes(
    app: App, tokens: tuple[str, ...], since: str, limit: int, unavailable: bool, fmt: str
) -> None:
    """Probes sent to listed models, newest first: what was asked, and what it answered.

    Probes are real calls, billed like any other; they are sent only for sources with
    probe = true.
    """
    from monitor.cli.output import emit
    from monitor.store.probes import recent_probes, unavailable_pairs

    config = app.optional_config()
    db = app.read_db(config)
    start = utcnow() - timedelta(seconds=option_duration(since, "--since"))
    rows: list[list[Any]] = []
    records: list[dict[str, Any]] = []
    with db.reader() as session:
        require_known(config, session, tokens=tokens, sources=())
        if unavailable:
            for (token, model), (source, error) in sorted(unavailable_pairs(session).items()):
                if tokens and token not in tokens:
                    continue
                status, code, message = (
                    (error.status, error.code, error.message) if error else (None, None, "")
                )
                rows.append([source, token, model, status, code, message])
                records.append(
                    {
                        "source": source,
                        "token": token,
                        "model": model,
                        "error": None if error is None else error.to_json(),
                    }
                )
            if fmt == "table" and not rows:
                click.echo("no listed model is known to be unavailable")
                return
            emit(fmt, ["source", "token", "model", "status", "code", "message"], rows, records)
            return
        sent = recent_probes(session, tokens=tokens, since=start, limit=limit)
        spent = _spent_budgets(session, config, tokens)
    for p in sent:
        seconds = round(p.duration, 3)
        rows.append(
            [
                rfc3339(p.sent_at),
                p.source,
                p.token,
                p.model,
                p.kind,
                p.result,
                p.status,
                p.code,
                seconds,
            ]
        )
        records.append(
            {
                "sent_at": rfc3339(p.sent_at),
                "source": p.source,
                "token": p.token,
                "model": p.model,
                "kind": p.kind,
                "result": p.result,
                "status": p.status,
                "code": p.code,
                "seconds": seconds,
            }
        )
    if fmt == "table" and not rows:
        click.echo(f"no probes sent since {rfc3339(start)} (docs/probes.md)")
    elif rows or fmt != "table":
        headers = ["sent", "source", "token", "model", "kind", "result", "status", "code"]
        emit(fmt, [*headers, "seconds"], rows, records)
    if fmt == "table":
        for token, budget in spent:
            click.echo(
                f"{token}: {budget} of {budget} probes in the last 24 hours; "
                "the next wait (probe_budget)"
            )


def _spent_budgets(
    session: Any, config: Config | None, tokens: tuple[str, ...]
) -> list[tuple[str, int]]:
    """The probing tokens whose budget for the last 24 hours is spent, with the budget."""
    from monitor.store.probes import BUDGET_WINDOW, sent_since

    if config is None:
        return []
    probing = {
        t.name: config.source(t.source).probe_budget
        for t in config.tokens
        if t.probe and config.source(t.source).probe and (not tokens or t.name in tokens)
    }
    if not probing:
        return []
    sent = sent_since(session, probing, utcnow() - BUDGET_WINDOW)
    return [
        (name, budget) for name, budget in sorted(probing.items()) if sent.get(name, 0) >= budget
    ]
