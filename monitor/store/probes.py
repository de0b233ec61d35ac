"""Every statement about probes: what is known of each (token, model) pair, and the log of
probes sent (the per-token budget counts it; `model-monitor probes` lists it)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from monitor.core.records import CallError
from monitor.events.probes import ProbeMemory, ProbeResult, Verdict
from monitor.store.dml import affected_rows
from monitor.store.schema import ProbeRow, ProbeStateRow, ProbeSweep

# The budget is per 24 hours: the log is kept at least that long.
BUDGET_WINDOW = timedelta(days=1)
_CODE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SentProbe:
    """One row of the probe log, as `model-monitor probes` shows it."""

    source: str
    token: str
    model: str
    sent_at: datetime
    kind: str
    result: str
    status: int | None
    code: str | None
    duration: float


def due_memories(
    session: Session, source: str, tokens: Collection[str], stale_before: datetime, limit: int
) -> dict[tuple[str, str], ProbeMemory]:
    """The pairs of `source`'s `tokens` that may be due: every awaiting one (few: fresh,
    pending or unavailable), and the `limit` probed longest ago, if by `stale_before`."""
    names = list(tokens)
    awaiting = select(ProbeStateRow).where(
        ProbeStateRow.source == source,
        ProbeStateRow.awaiting.is_(True),
        ProbeStateRow.token.in_(names),
    )
    stale = (
        select(ProbeStateRow)
        .where(
            ProbeStateRow.source == source,
            ProbeStateRow.awaiting.is_(False),
            ProbeStateRow.probed_at <= stale_before,
            ProbeStateRow.token.in_(names),
        )
        .order_by(ProbeStateRow.probed_at)
        .limit(limit)
    )
    found = {}
    for query in (awaiting, stale):
        for row in session.scalars(query):
            found[row.token, row.model] = _memory(row)
    return found


def memories_of(
    session: Session, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], ProbeMemory]:
    """What is known of these (token, model) pairs, where anything is."""
    return {pair: _memory(row) for pair, row in _rows(session, pairs).items()}


def save_memories(
    session: Session, source: str, memories: Mapping[tuple[str, str], ProbeMemory]
) -> None:
    """Store many pairs' memories with one read of the rows there are; the new rows go in
    one statement (a model added for 1,000 tokens is 1,000 of them)."""
    rows = _rows(session, memories.keys())
    new = []
    for (token, model), memory in memories.items():
        row = rows.get((token, model))
        if row is None:
            row = ProbeStateRow(token=token, model=model)
            _fill(row, source, memory)
            new.append({c.key: getattr(row, c.key) for c in _COLUMNS})
        else:
            _fill(row, source, memory)
    if new:
        session.execute(insert(ProbeStateRow), new)


_COLUMNS = tuple(ProbeStateRow.__mapper__.column_attrs)


def _rows(
    session: Session, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], ProbeStateRow]:
    """The rows of these pairs, a few queries for any number of them (a model added for
    1,000 tokens is 1,000 pairs)."""
    wanted = set(pairs)
    found: dict[tuple[str, str], ProbeStateRow] = {}
    models = sorted({model for _, model in wanted})
    tokens = sorted({token for token, _ in wanted})
    for start in range(0, len(models), 500):
        for first in range(0, len(tokens), 500):
            query = select(ProbeStateRow).where(
                ProbeStateRow.model.in_(models[start : start + 500]),
                ProbeStateRow.token.in_(tokens[first : first + 500]),
            )
            for row in session.scalars(query):
                if (row.token, row.model) in wanted:
                    found[row.token, row.model] = row
    return found


def known_models(session: Session, token: str) -> set[str]:
    """The models of the token that have a row."""
    return set(session.scalars(select(ProbeStateRow.model).where(ProbeStateRow.token == token)))


def swept(session: Session, source: str) -> dict[str, int]:
    """Per token, the snapshot whose every model probes are for has a row."""
    query = select(ProbeSweep.token, ProbeSweep.snapshot_id).where(ProbeSweep.source == source)
    return {token: snapshot for token, snapshot in session.execute(query)}


def mark_swept(session: Session, source: str, token: str, snapshot_id: int) -> None:
    row = session.get(ProbeSweep, token)
    if row is None:
        session.add(ProbeSweep(token=token, source=source, snapshot_id=snapshot_id))
    else:
        row.source, row.snapshot_id = source, snapshot_id


def unavailable_pairs(session: Session) -> dict[tuple[str, str], tuple[str, CallError | None]]:
    """The (token, model) pairs people were told are unavailable: (source, the failure)."""
    query = select(ProbeStateRow).where(ProbeStateRow.verdict == Verdict.UNAVAILABLE.value)
    return {
        (row.token, row.model): (row.source, _error(row.error)) for row in session.scalars(query)
    }


def sent_since(session: Session, tokens: Iterable[str], since: datetime) -> dict[str, int]:
    """How many probes each token sent since `since`."""
    query = (
        select(ProbeRow.token, func.count(ProbeRow.id))
        .where(ProbeRow.token.in_(list(tokens)), ProbeRow.sent_at >= since)
        .group_by(ProbeRow.token)
    )
    return {token: count for token, count in session.execute(query)}


def save_memory(session: Session, source: str, token: str, model: str, memory: ProbeMemory) -> None:
    row = session.get(ProbeStateRow, (token, model))
    if row is None:
        row = ProbeStateRow(token=token, model=model)
        session.add(row)
    _fill(row, source, memory)


def _fill(row: ProbeStateRow, source: str, memory: ProbeMemory) -> None:
    row.source, row.seen_at, row.probed_at = source, memory.seen_at, memory.probed_at
    row.verdict = None if memory.verdict is None else memory.verdict.value
    row.pending = None if memory.pending is None else memory.pending.value
    row.pending_count = memory.pending_count
    row.error = None if memory.error is None else json.dumps(memory.error.to_json())
    row.awaiting = memory.awaiting


def forget(session: Session, pairs: Iterable[tuple[str, str]]) -> None:
    """Drop what is known of models their tokens no longer list (or no longer probe): if
    one comes back, it is new again."""
    by_token: dict[str, list[str]] = {}
    for token, model in pairs:
        by_token.setdefault(token, []).append(model)
    for token, models in by_token.items():
        for start in range(0, len(models), 500):
            session.execute(
                delete(ProbeStateRow).where(
                    ProbeStateRow.token == token,
                    ProbeStateRow.model.in_(models[start : start + 500]),
                )
            )


def remembers(session: Session, tokens: Collection[str]) -> bool:
    """Whether anything is known of any of `tokens` (a read, before a write is needed)."""
    query = select(ProbeStateRow.token).where(ProbeStateRow.token.in_(list(tokens))).limit(1)
    return bool(tokens) and session.scalar(query) is not None


def forget_tokens(session: Session, tokens: Collection[str]) -> None:
    """Drop what is known of tokens no longer probed, so no page shows an old verdict."""
    session.execute(delete(ProbeStateRow).where(ProbeStateRow.token.in_(list(tokens))))
    session.execute(delete(ProbeSweep).where(ProbeSweep.token.in_(list(tokens))))


def record_probe(
    session: Session, source: str, token: str, model: str, at: datetime, result: ProbeResult
) -> None:
    error = result.error
    code = None if error is None or error.code is None else error.code[:_CODE_LIMIT]
    session.add(
        ProbeRow(
            source=source,
            token=token,
            model=model,
            sent_at=at,
            kind=result.kind,
            result=result.outcome.value,
            http_status=result.status,
            code=code,
            duration=result.duration,
        )
    )


def recent_probes(
    session: Session,
    *,
    tokens: Collection[str] = (),
    since: datetime | None = None,
    limit: int = 50,
) -> list[SentProbe]:
    """The newest probes first (of `tokens`, when given)."""
    query = select(ProbeRow).order_by(ProbeRow.sent_at.desc(), ProbeRow.id.desc()).limit(limit)
    if tokens:
        query = query.where(ProbeRow.token.in_(list(tokens)))
    if since is not None:
        query = query.where(ProbeRow.sent_at >= since)
    return [
        SentProbe(
            row.source,
            row.token,
            row.model,
            row.sent_at,
            row.kind,
            row.result,
            row.http_status,
            row.code,
            row.duration,
        )
        for row in session.scalars(query)
    ]


def prune_probes(session: Session, before: datetime, now: datetime) -> int:
    """Delete probe log rows older than `before`, never within the budget's window."""
    cutoff = min(before, now - BUDGET_WINDOW)
    return affected_rows(session, delete(ProbeRow).where(ProbeRow.sent_at < cutoff))


def _memory(row: ProbeStateRow) -> ProbeMemory:
    return ProbeMemory(
        seen_at=row.seen_at,
        probed_at=row.probed_at,
        verdict=None if row.verdict is None else Verdict(row.verdict),
        pending=None if row.pending is None else Verdict(row.pending),
        pending_count=row.pending_count,
        error=_error(row.error),
    )


def _error(text: str | None) -> CallError | None:
    return None if text is None else CallError.from_json(json.loads(text))
