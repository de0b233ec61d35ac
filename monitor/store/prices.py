"""Every statement about prices: content-addressed price lists and each source's state."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from monitor.core.prices import PriceList, canonical_json, from_canonical
from monitor.core.records import content_hash
from monitor.store.dialects import upsert_insert
from monitor.store.schema import EventRow, PriceSnapshot, SourcePrices


@dataclass(frozen=True, slots=True)
class PriceState:
    """A source's prices as its last reads left them."""

    source: str
    checked_at: datetime
    ok_at: datetime | None
    outcome: str  # "ok", "hidden" or an ErrorKind value
    message: str | None
    confirmed_id: int | None  # the list people were told about (None: no list yet)
    pending_id: int | None  # a different list, seen `pending_count` times in a row
    pending_count: int

    @property
    def availability(self) -> str:
        """ "available", or why not: the page hidden, an error."""
        return "available" if self.outcome == "ok" else (self.message or self.outcome)


def price_states(session: Session, sources: list[str] | None = None) -> dict[str, PriceState]:
    query = select(SourcePrices).order_by(SourcePrices.source)
    if sources is not None:
        query = query.where(SourcePrices.source.in_(sources))
    return {
        row.source: PriceState(
            row.source,
            row.checked_at,
            row.ok_at,
            row.outcome,
            row.message,
            row.confirmed_id,
            row.pending_id,
            row.pending_count,
        )
        for row in session.scalars(query)
    }


def put_price_list(session: Session, prices: PriceList, now: datetime) -> int:
    """The id of the stored list with this content, storing it if new."""
    canonical = canonical_json(prices)
    key = content_hash(canonical)
    found = session.scalar(select(PriceSnapshot.id).where(PriceSnapshot.content_hash == key))
    if found is not None:
        return found
    insert = upsert_insert(session)
    values = {
        PriceSnapshot.content_hash: key,
        PriceSnapshot.model_count: len(prices.prices),
        PriceSnapshot.body: zlib.compress(canonical, 6),
        PriceSnapshot.created_at: now,
    }
    session.execute(insert(PriceSnapshot).values(values).on_conflict_do_nothing())
    return session.execute(
        select(PriceSnapshot.id).where(PriceSnapshot.content_hash == key)
    ).scalar_one()


def load_price_list(session: Session, list_id: int) -> PriceList:
    body = session.scalar(select(PriceSnapshot.body).where(PriceSnapshot.id == list_id))
    if body is None:
        raise LookupError(f"price list {list_id} does not exist")
    return from_canonical(zlib.decompress(body))


def record_prices(
    session: Session,
    source: str,
    now: datetime,
    outcome: str,
    message: str | None = None,
    *,
    confirmed_id: int | None = None,
    pending_id: int | None = None,
    pending_count: int = 0,
) -> None:
    """The source's state after a read: the ids only change when the read succeeded."""
    row = session.get(SourcePrices, source)
    if row is None:
        row = SourcePrices(source=source, pending_count=0)
        session.add(row)
    row.checked_at, row.outcome, row.message = now, outcome, message
    if outcome == "ok":
        row.ok_at = now
        row.confirmed_id, row.pending_id, row.pending_count = (
            confirmed_id,
            pending_id,
            pending_count,
        )


def last_price_change(session: Session, source: str) -> datetime | None:
    """When the source's latest event with a price change occurred (None: never)."""
    query = select(func.max(EventRow.occurred_at)).where(
        EventRow.source == source,
        EventRow.type == "models.changed",
        or_(
            EventRow.payload.contains('"type":"price_changed"'),
            EventRow.payload.contains('"type":"group_ratio_changed"'),
        ),
    )
    return session.scalar(query)
