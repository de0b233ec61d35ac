"""Every statement about silences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.events.silences import Silence
from monitor.store.dml import affected_rows
from monitor.store.schema import SilenceRow


def add_silence(session: Session, silence: Silence, now: datetime) -> None:
    session.add(
        SilenceRow(
            id=silence.id,
            source=silence.source,
            token=silence.token,
            model=silence.model,
            kind=silence.kind,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            comment=silence.comment,
            author=silence.author,
            created_at=now,
        )
    )


def silences(session: Session, *, active_at: datetime | None = None) -> list[Silence]:
    """Every silence, newest first; with `active_at`, only those active then."""
    query = select(SilenceRow).order_by(SilenceRow.created_at.desc(), SilenceRow.id)
    if active_at is not None:
        query = query.where(SilenceRow.starts_at <= active_at, SilenceRow.ends_at > active_at)
    return [
        Silence(
            row.id,
            row.starts_at,
            row.ends_at,
            row.source,
            row.token,
            row.model,
            row.kind,
            row.comment,
            row.author,
        )
        for row in session.scalars(query)
    ]


def expire_silence(session: Session, silence_id: str, now: datetime) -> bool:
    """End the silence now; False when there is none by that id still running."""
    statement = (
        update(SilenceRow)
        .where(SilenceRow.id == silence_id, SilenceRow.ends_at > now)
        .values(ends_at=now)
    )
    return affected_rows(session, statement) == 1
