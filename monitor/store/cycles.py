"""What a check cycle reads and writes, besides snapshots (`monitor.store.snapshots`).

Every statement of `monitor.runtime.cycle` lives here, so the checker reads as the
pipeline it is (fetch, record, diff, enqueue) and a schema change touches the store only.
The checker owns the transactions: each function takes the session it runs in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from monitor.store.dialects import upsert_insert
from monitor.store.dml import affected_rows
from monitor.store.schema import Check, PollSlot, Snapshot, SourceState, TokenState


@dataclass(frozen=True, slots=True)
class LastCheck:
    """What the last cycle left of a token, as the next fetch needs it."""

    model_count: int | None  # of its confirmed snapshot
    failing: bool
    flavor: str | None  # the flavor auto chose, or the configured one


def last_checks(session: Session, tokens: Sequence[str]) -> dict[str, LastCheck]:
    """The tokens' last outcomes, in one query; a token never checked is absent."""
    rows = session.execute(
        select(TokenState.token, Snapshot.model_count, TokenState.failing, TokenState.flavor)
        .outerjoin(Snapshot, Snapshot.id == TokenState.confirmed_snapshot_id)
        .where(TokenState.token.in_(tokens))
    )
    return {
        token: LastCheck(count, bool(failing), flavor) for token, count, failing, flavor in rows
    }


def token_states(session: Session, tokens: Sequence[str]) -> dict[str, TokenState]:
    """The tokens' state rows, loaded together so the session flushes them together."""
    query = select(TokenState).where(TokenState.token.in_(tokens))
    return {state.token: state for state in session.scalars(query)}


def add_checks(session: Session, rows: Sequence[Mapping[str, object]]) -> None:
    """One `checks` row per poll, in one statement."""
    if rows:
        session.execute(insert(Check), rows)


def backoff_until(session: Session, source: str) -> datetime | None:
    """Until when the source asked to be left alone (HTTP 429), if it did."""
    return session.scalar(select(SourceState.backoff_until).where(SourceState.source == source))


def set_backoff(session: Session, source: str, until: datetime | None, reason: str) -> None:
    """Remember a wait the source asked for, or forget it (`until` None)."""
    session.execute(delete(SourceState).where(SourceState.source == source))
    if until is not None:
        session.add(SourceState(source=source, backoff_until=until, reason=reason))


def claim_slots(
    session: Session, tokens: Iterable[str], slot: str, now: datetime, instance: str
) -> set[str]:
    """The tokens whose (token, slot) row this call inserted.

    ON CONFLICT DO NOTHING: when several daemons share the database, the unique
    constraint lets exactly one of them poll each token per slot, on SQLite and
    PostgreSQL alike.
    """
    rows = [{"token": t, "slot": slot, "claimed_at": now, "instance": instance} for t in tokens]
    if not rows:
        return set()
    insert_row = upsert_insert(session)
    if session.get_bind().dialect.insert_returning:
        statement = (
            insert_row(PollSlot).values(rows).on_conflict_do_nothing().returning(PollSlot.token)
        )
        return set(session.scalars(statement))
    won = set()  # an SQLite older than 3.35: one row at a time
    for row in rows:
        if affected_rows(session, insert_row(PollSlot).values(row).on_conflict_do_nothing()):
            won.add(str(row["token"]))
    return won
