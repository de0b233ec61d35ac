"""The outbox's tables: events, their deliveries, each attempt, and disabled channels.

Every statement of `monitor.delivery.outbox` lives here; the dispatcher there decides
what to send, when to retry and when to give up. The caller owns the transaction: each
function takes the session it runs in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from monitor.core.records import DeliveryState
from monitor.store.dml import affected_rows
from monitor.store.schema import ChannelState, Delivery, DeliveryAttempt, EventRow


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery ready to send: `payload` is its own (narrowed for its channel) or the
    event's, as stored JSON text."""

    id: str
    event_id: str
    channel: str
    attempts: int
    payload: str


def add_event(
    session: Session,
    event_id: str,
    kind: str,
    source: str,
    at: datetime,
    summary: str,
    payload: str,
) -> None:
    session.execute(
        insert(EventRow).values(
            id=event_id, type=kind, source=source, occurred_at=at, summary=summary, payload=payload
        )
    )


def add_deliveries(session: Session, rows: Sequence[Mapping[str, object]]) -> None:
    """Delivery rows (id, event_id, channel, state, attempts, next_attempt_at, created_at,
    and payload when the channel sees less than the whole event), in one statement."""
    if rows:
        session.execute(insert(Delivery), rows)


def next_due(session: Session, channel: str | None = None) -> datetime | None:
    """When the earliest waiting delivery becomes due (None: nothing waiting)."""
    query = select(func.min(Delivery.next_attempt_at)).where(
        Delivery.state.in_((DeliveryState.PENDING, DeliveryState.HELD))
    )
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    return session.scalar(query)


def held_and_due(
    session: Session, now: datetime, channels: Collection[str] | None
) -> list[tuple[str, str, str]]:
    """(delivery id, channel, payload JSON) of each held delivery due by `now`, by channel
    and in the order the events occurred."""
    rows = session.execute(
        select(Delivery.id, Delivery.channel, Delivery.payload, EventRow.payload)
        .join(EventRow, EventRow.id == Delivery.event_id)
        .where(Delivery.state == DeliveryState.HELD, Delivery.next_attempt_at <= now)
        .where(_among(channels))
        .order_by(Delivery.channel, EventRow.occurred_at, EventRow.id)
    ).all()
    return [(delivery_id, channel, own or shared) for delivery_id, channel, own, shared in rows]


def mark_batched(session: Session, delivery_ids: Sequence[str], digest_id: str) -> None:
    """Held deliveries folded into the digest event `digest_id`."""
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)))
        .values(state=DeliveryState.BATCHED, digest_id=digest_id)
    )


def claim_due(
    session: Session,
    now: datetime,
    lease_until: datetime,
    limit: int,
    channels: Collection[str] | None,
    *,
    skip_locked: bool,
) -> list[DueDelivery]:
    """Lease up to `limit` pending deliveries due by `now`, oldest first.

    A conditional UPDATE is the claim, so two dispatchers never lease the same
    delivery on any backend; `skip_locked` (PostgreSQL) keeps them from waiting on
    each other's rows.
    """
    claimable = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
    query = (
        select(
            Delivery.id,
            Delivery.event_id,
            Delivery.channel,
            Delivery.attempts,
            Delivery.payload,
            EventRow.payload,
        )
        .join(EventRow, EventRow.id == Delivery.event_id)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now, claimable)
        .where(_among(channels))
        .order_by(Delivery.created_at, Delivery.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(of=Delivery, skip_locked=True)
    claimed = []
    for delivery_id, event_id, channel, attempts, own, shared in session.execute(query).all():
        claim = (
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING, claimable)
            .values(lease_until=lease_until)
        )
        if affected_rows(session, claim) == 1:
            claimed.append(DueDelivery(delivery_id, event_id, channel, attempts, own or shared))
    return claimed


def record_attempt(
    session: Session,
    delivery_id: str,
    attempt: int,
    at: datetime,
    duration_ms: int,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    changes: Mapping[str, Any],
) -> None:
    """One attempt's row, and the delivery's new state (`changes`) if still pending."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING)
        .values(**changes)
    )
    session.execute(
        insert(DeliveryAttempt).values(
            delivery_id=delivery_id,
            attempt=attempt,
            at=at,
            duration_ms=duration_ms,
            ok=ok,
            status=status,
            error=error,
        )
    )


def disabled_reason(session: Session, channel: str) -> str | None:
    """Why the channel is disabled (its destination is gone), or None."""
    return session.scalar(select(ChannelState.reason).where(ChannelState.channel == channel))


def disable_channel(session: Session, channel: str, at: datetime, reason: str) -> None:
    session.execute(delete(ChannelState).where(ChannelState.channel == channel))
    session.execute(insert(ChannelState).values(channel=channel, disabled_at=at, reason=reason))


def requeue(session: Session, now: datetime, *, delivery_id: str | None, dead: bool) -> int:
    """Make one delivery, or every dead one, pending and due now; their channels are
    enabled again. Returns how many deliveries were requeued."""
    if delivery_id is not None:
        which = Delivery.id == delivery_id
    elif dead:
        which = Delivery.state == DeliveryState.DEAD
    else:
        return 0
    channels = set(session.scalars(select(Delivery.channel).where(which)))
    session.execute(delete(ChannelState).where(ChannelState.channel.in_(channels)))
    values = {
        "state": DeliveryState.PENDING,
        "next_attempt_at": now,
        "lease_until": None,
        "attempts": 0,
    }
    return affected_rows(session, update(Delivery).where(which).values(**values))


def _among(channels: Collection[str] | None) -> ColumnElement[bool]:
    return true() if channels is None else Delivery.channel.in_(list(channels))
