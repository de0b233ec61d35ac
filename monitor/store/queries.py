"""Read-side queries behind `status`, `models`, `history`, `diff`, `deliveries`, and retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from monitor.core.clock import utcnow
from monitor.core.records import DeliveryState, ModelRecord
from monitor.store.dml import affected_rows
from monitor.store.probes import prune_probes
from monitor.store.schema import (
    ChannelState,
    Check,
    Delivery,
    DeliveryAttempt,
    EventRow,
    Installation,
    PollSlot,
    Snapshot,
    TokenState,
)
from monitor.store.snapshots import SnapshotStore


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One token as its last check left it (its `token_state` row and model count): what
    `status`, the metrics and the status pages read."""

    token: str
    source: str
    fingerprint: str
    last_check_at: datetime | None
    last_outcome: str | None
    last_ok_at: datetime | None
    model_count: int | None
    failing: bool
    failing_since: datetime | None
    last_error: dict[str, Any] | None
    flavor: str | None


def answers(session: Session) -> None:
    """Raises unless the database answers a trivial query (the daemon's health check)."""
    session.execute(select(1))


def installation_id(session: Session) -> str | None:
    """The database's UUID (migration 0006 creates it): the oldest installation row's."""
    return session.scalar(
        select(Installation.id).order_by(Installation.created_at, Installation.id)
    )


def status_records(session: Session) -> list[StatusRecord]:
    rows = session.execute(
        select(TokenState, Snapshot.model_count)
        .outerjoin(Snapshot, Snapshot.id == TokenState.last_snapshot_id)
        .order_by(TokenState.source, TokenState.token)
    )
    return [
        StatusRecord(
            token=state.token,
            source=state.source,
            fingerprint=state.fingerprint,
            last_check_at=state.last_check_at,
            last_outcome=state.last_outcome,
            last_ok_at=state.last_ok_at,
            model_count=count,
            failing=state.failing,
            failing_since=state.failing_since,
            last_error=json.loads(state.last_error) if state.last_error else None,
            flavor=state.flavor,
        )
        for state, count in rows
    ]


def detected_flavors(session: Session) -> dict[str, str]:
    """Per source, the wire format its tokens' last successful checks were read as."""
    rows = session.execute(
        select(TokenState.source, TokenState.flavor)
        .where(TokenState.flavor.is_not(None))
        .order_by(TokenState.last_ok_at)
    )
    return {source: flavor for source, flavor in rows if flavor is not None}


def delivery_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
    return {state: count for state, count in rows}


def last_models(
    session: Session, store: SnapshotStore, token: str
) -> tuple[int, dict[str, ModelRecord]] | None:
    """The models the token saw at its last successful check, with the snapshot id."""
    snapshot_id = session.scalar(
        select(TokenState.last_snapshot_id).where(TokenState.token == token)
    )
    if snapshot_id is None:
        return None
    return snapshot_id, store.load(session, snapshot_id)


def snapshot_history(session: Session, token: str, limit: int = 50) -> list[tuple[int, datetime]]:
    """Distinct snapshots a token has seen, newest first, with when each was last seen."""
    last_seen = func.max(Check.started_at)
    rows = session.execute(
        select(Check.snapshot_id, last_seen)
        .where(Check.token == token, Check.snapshot_id.is_not(None))
        .group_by(Check.snapshot_id)
        .order_by(last_seen.desc())
        .limit(limit)
    )
    return [(sid, seen) for sid, seen in rows if sid is not None]


def events_since(
    session: Session, since: datetime, *, token: str | None = None, source: str | None = None
) -> list[dict[str, Any]]:
    query = select(EventRow.payload).where(EventRow.occurred_at >= since, EventRow.type != "digest")
    if source:
        query = query.where(EventRow.source == source)
    payloads = [
        json.loads(p) for p in session.scalars(query.order_by(EventRow.occurred_at, EventRow.id))
    ]
    if token:
        payloads = [p for p in payloads if token in p.get("tokens", [])]
    return payloads


def events_newest_first(
    session: Session,
    *,
    source: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Event payloads, newest first, streamed: the status pages stop reading once a page
    is full, so a long history is never loaded whole (token filters need the payload)."""
    query = select(EventRow.payload).where(EventRow.type != "digest")
    if source:
        query = query.where(EventRow.source == source)
    if event_type:
        query = query.where(EventRow.type == event_type)
    if since is not None:
        query = query.where(EventRow.occurred_at >= since)
    query = query.order_by(EventRow.occurred_at.desc(), EventRow.id.desc())
    for payload in session.scalars(query.execution_options(yield_per=200)):
        yield json.loads(payload)


def last_snapshot_ids(session: Session, source: str) -> dict[str, int | None]:
    """Per token of `source`, the snapshot its last successful check saw (None: none yet)."""
    rows = session.execute(
        select(TokenState.token, TokenState.last_snapshot_id)
        .where(TokenState.source == source)
        .order_by(TokenState.token)
    )
    return {token: snapshot_id for token, snapshot_id in rows}


def baselines_since(session: Session, since: datetime, token: str | None = None) -> list[Check]:
    query = select(Check).where(Check.baseline.is_(True), Check.started_at >= since)
    if token:
        query = query.where(Check.token == token)
    return list(session.scalars(query.order_by(Check.started_at)))


def deliveries(
    session: Session, state: str | None = None, limit: int = 200
) -> list[tuple[Delivery, str, str]]:
    """Deliveries with their event's type and summary, newest first."""
    query = select(Delivery, EventRow.type, EventRow.summary).join(
        EventRow, EventRow.id == Delivery.event_id
    )
    if state:
        query = query.where(Delivery.state == state)
    rows = session.execute(query.order_by(Delivery.created_at.desc()).limit(limit))
    return [(delivery, event_type, summary) for delivery, event_type, summary in rows]


def attempts(session: Session, delivery_id: str) -> list[DeliveryAttempt]:
    query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
    return list(session.scalars(query.order_by(DeliveryAttempt.attempt, DeliveryAttempt.id)))


def disabled_channels(session: Session) -> list[ChannelState]:
    return list(session.scalars(select(ChannelState).order_by(ChannelState.channel)))


@dataclass(frozen=True, slots=True)
class PruneReport:
    checks: int
    events: int
    snapshots: int
    slots: int = 0
    probes: int = 0


# Poll slots only need to outlive the poll they name; a day is ample for any interval
# below a day, and short enough that the table stays small.
SLOT_KEEP = timedelta(days=1)


def prune_poll_slots(session: Session, now: datetime | None = None) -> int:
    """Delete poll-slot claims older than a day (see `PollSlot`)."""
    cutoff = (now or utcnow()) - SLOT_KEEP
    return affected_rows(session, delete(PollSlot).where(PollSlot.claimed_at < cutoff))


def prune(session: Session, before: datetime) -> PruneReport:
    """Delete history older than `before`; never what is still needed.

    Events with a delivery still pending stay; snapshots stay while any check or token
    state refers to them (the confirmed view of a quiet token may be very old). Poll-slot
    claims are pruned after a day whatever `before` is (`prune_poll_slots`); the probe log
    is kept at least a day, which its budget counts (`prune_probes`).
    """
    slots = prune_poll_slots(session)
    checks = affected_rows(session, delete(Check).where(Check.started_at < before))
    pending = exists().where(
        Delivery.event_id == EventRow.id, Delivery.state == DeliveryState.PENDING
    )
    old_events = select(EventRow.id).where(EventRow.occurred_at < before, ~pending)
    session.execute(delete(Delivery).where(Delivery.event_id.in_(old_events)))
    events = affected_rows(session, delete(EventRow).where(EventRow.occurred_at < before, ~pending))
    referenced = or_(
        exists().where(Check.snapshot_id == Snapshot.id),
        exists().where(
            or_(
                TokenState.confirmed_snapshot_id == Snapshot.id,
                TokenState.last_snapshot_id == Snapshot.id,
            )
        ),
    )
    snapshots = affected_rows(session, delete(Snapshot).where(~referenced))
    probes = prune_probes(session, before, utcnow())
    return PruneReport(checks, events, snapshots, slots, probes)
