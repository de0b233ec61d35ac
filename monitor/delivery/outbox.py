"""The transactional outbox: events are enqueued with the check that caused them, and a
dispatcher sends them afterwards, retrying until each channel has them or gives up.

Stages, as in Alertmanager's notification pipeline: route (which channels, what each
sees) -> claim (a lease, so one sender per delivery) -> send -> record (sent, retry
with backoff, or dead). Each channel is sent from its own thread, so one slow or
broken channel never holds up another.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from monitor.clock import utcnow
from monitor.config import Config
from monitor.delivery.base import Channel, Message, SendResult
from monitor.events.grouping import filter_for_channel
from monitor.ids import new_id
from monitor.records import Event
from monitor.store.database import Database
from monitor.store.schema import Delivery, EventRow

log = logging.getLogger("monitor.delivery")

# How long a claimed delivery belongs to its sender; past it, another may retry.
LEASE = timedelta(minutes=2)


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def enqueue(session: Session, config: Config, event: Event, now: datetime) -> int:
    """Store an event and one pending delivery per channel that should see it.

    Runs inside the caller's transaction (the one that stored the check), which is
    the whole point of an outbox. Returns the number of deliveries created.
    """
    session.execute(
        insert(EventRow).values(
            id=event.id,
            type=str(event.type),
            source=event.source.name,
            occurred_at=now,
            summary=event.summary,
            payload=_dumps(event.to_payload()),
        )
    )
    rows = []
    for channel in config.channels:
        if str(event.type) not in channel.events:
            continue
        tokens = {t.name for t in config.tokens if t.channels is None or channel.name in t.channels}
        narrowed = filter_for_channel(event, tokens, channel.models, channel.exclude_models)
        if narrowed is None:
            continue
        rows.append(
            {
                "id": new_id("msg"),
                "event_id": event.id,
                "channel": channel.name,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "payload": None if narrowed == event else _dumps(narrowed.to_payload()),
            }
        )
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.sent + other.sent, self.retried + other.retried, self.dead + other.dead
        )


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    event_id: str
    channel: str
    attempts: int
    payload: dict[str, Any]


class Dispatcher:
    """Sends due deliveries. Safe to run from several threads or processes at once."""

    def __init__(
        self,
        config: Config,
        db: Database,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.channels = channels
        self._clock = clock
        self._rng = rng or random.Random()

    def run_once(self, limit: int = 500) -> DispatchReport:
        """Send everything due now; returns what happened."""
        claimed = self._claim(limit)
        if not claimed:
            return DispatchReport()
        by_channel: dict[str, list[_Claimed]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        if len(by_channel) == 1:
            return self._send_all(*by_channel.items())
        with ThreadPoolExecutor(len(by_channel), thread_name_prefix="deliver") as pool:
            reports = list(pool.map(self._send_all, by_channel.items()))
        total = DispatchReport()
        for report in reports:
            total += report
        return total

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery becomes due (None: nothing pending)."""
        with self.db.reader() as session:
            return session.scalar(
                select(func.min(Delivery.next_attempt_at)).where(Delivery.state == "pending")
            )

    def _claim(self, limit: int) -> list[_Claimed]:
        now = self._clock()
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
            .where(Delivery.state == "pending", Delivery.next_attempt_at <= now, claimable)
            .order_by(Delivery.created_at, Delivery.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(of=Delivery, skip_locked=True)
        claimed = []
        with self.db.session() as session:
            for row in session.execute(query).all():
                # A conditional update is the claim: it works the same on every backend.
                taken = session.execute(
                    update(Delivery)
                    .where(Delivery.id == row[0], Delivery.state == "pending", claimable)
                    .values(lease_until=now + LEASE)
                ).rowcount
                if taken == 1:
                    payload = json.loads(row[4] or row[5])
                    claimed.append(_Claimed(row[0], row[1], row[2], row[3], payload))
        return claimed

    def _send_all(self, item: tuple[str, list[_Claimed]]) -> DispatchReport:
        name, deliveries = item
        report = DispatchReport()
        for delivery in deliveries:
            result = self._send(name, delivery)
            report += self._record(delivery, result)
        return report

    def _send(self, name: str, delivery: _Claimed) -> SendResult:
        channel = self.channels.get(name)
        if channel is None:
            return SendResult(ok=False, error=f"channel {name!r} is not in the config")
        message = Message(delivery.id, delivery.event_id, delivery.payload, delivery.attempts + 1)
        try:
            return channel.send(message)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            log.exception("channel %s raised while sending %s", name, delivery.id)
            return SendResult(ok=False, error=f"internal error: {type(exc).__name__}")

    def _record(self, delivery: _Claimed, result: SendResult) -> DispatchReport:
        now = self._clock()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "last_status": result.status,
            "last_error": result.error or None,
        }
        schedule = self.config.monitor.retry_schedule
        if result.ok:
            values.update(state="sent", sent_at=now)
            report = DispatchReport(sent=1)
            log.info("delivery %s to %s sent (attempt %d)", delivery.id, delivery.channel, attempts)
        elif result.permanent or attempts > len(schedule):
            values.update(state="dead")
            report = DispatchReport(dead=1)
            log.error(
                "delivery %s to %s is dead after %d attempt(s): %s",
                delivery.id,
                delivery.channel,
                attempts,
                result.error,
            )
        else:
            delay = backoff(schedule, attempts, result.retry_after, self._rng)
            values.update(next_attempt_at=now + timedelta(seconds=delay))
            report = DispatchReport(retried=1)
            log.warning(
                "delivery %s to %s failed (attempt %d), retrying in %.0fs: %s",
                delivery.id,
                delivery.channel,
                attempts,
                delay,
                result.error,
            )
        with self.db.session() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.state == "pending")
                .values(**values)
            )
        return report


def backoff(
    schedule: tuple[float, ...], attempts: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after the n-th failed attempt: the schedule with +-10% jitter,
    never sooner than the receiver asked for."""
    base = schedule[min(attempts, len(schedule)) - 1]
    delay = base * rng.uniform(0.9, 1.1)
    return max(delay, retry_after or 0.0)


def retry(db: Database, *, delivery_id: str | None = None, dead: bool = False) -> int:
    """Put deliveries back in the queue, due now (`deliveries --retry` / `--retry-dead`)."""
    now = utcnow()
    query = update(Delivery).values(
        state="pending", next_attempt_at=now, lease_until=None, attempts=0
    )
    if delivery_id is not None:
        query = query.where(Delivery.id == delivery_id)
    elif dead:
        query = query.where(Delivery.state == "dead")
    else:
        return 0
    with db.session() as session:
        return session.execute(query).rowcount
