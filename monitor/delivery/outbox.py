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
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.core.clock import rfc3339, utcnow
from monitor.core.ids import new_id
from monitor.core.records import DeliveryState, Event
from monitor.delivery.base import Channel, Message, SendResult
from monitor.events.grouping import filter_for_channel
from monitor.store import outbox as store
from monitor.store.database import Database

log = logging.getLogger("monitor.delivery")


class AttemptCounter(Protocol):
    """Where the dispatcher counts its attempts (`monitor.runtime.metrics.Metrics`)."""

    def record_delivery(self, channel: str, result: str) -> None:
        """One delivery attempt: `result` is "sent", "retried" or "dead"."""
        ...


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def enqueue(session: Session, config: Config, event: Event, now: datetime) -> int:
    """Store an event and one pending delivery per channel that should see it.

    Runs inside the caller's transaction (the one that stored the check), which is
    the whole point of an outbox. Returns the number of deliveries created.
    """
    payload = _dumps(event.to_payload())
    store.add_event(
        session, event.id, str(event.type), event.source.name, now, event.summary, payload
    )
    rows = []
    for channel in config.channels:
        if str(event.type) not in channel.events:
            continue
        tokens = {t.name for t in config.tokens if t.channels is None or channel.name in t.channels}
        narrowed = filter_for_channel(event, tokens, channel.models, channel.exclude_models)
        if narrowed is None:
            continue
        state, due = channel.window.first(now)
        rows.append(
            {
                "id": new_id("msg"),
                "event_id": event.id,
                "channel": channel.name,
                "state": state,
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": now,
                "payload": None if narrowed == event else _dumps(narrowed.to_payload()),
            }
        )
    store.add_deliveries(session, rows)
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
        metrics: AttemptCounter | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.channels = channels
        self.metrics = metrics  # counts each delivery attempt (None: off)
        self._clock = clock
        self._rng = rng or random.Random()
        self._windows = {c.name: c.window for c in config.channels}
        self._last_sent: dict[str, float] = {}

    def run_once(self, limit: int = 500, channels: Collection[str] | None = None) -> DispatchReport:
        """Send everything due now (for the named channels, or all); returns what happened.

        The daemon runs one loop per channel (`channels=[name]`), so a channel that hangs
        delays nothing but itself; `check` sends every channel's share in parallel.
        """
        self._seal_digests(channels)
        claimed = self._claim(limit, channels)
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

    def next_due(self, channel: str | None = None) -> datetime | None:
        """When the earliest waiting delivery becomes due (None: nothing waiting)."""
        with self.db.reader() as session:
            return store.next_due(session, channel)

    def _seal_digests(self, channels: Collection[str] | None) -> None:
        """Turn each digest channel's due held deliveries into one digest delivery.

        The digest is an event of its own (type "digest", carrying the batched payloads),
        so it gets a stable id and the same retries as any delivery.
        """
        now = self._clock()
        with self.db.session() as session:
            batches: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
            for delivery_id, channel, payload in store.held_and_due(session, now, channels):
                batches[channel].append((delivery_id, json.loads(payload)))
            for channel, items in batches.items():
                digest = digest_payload([payload for _, payload in items], now)
                store.add_event(
                    session, digest["id"], "digest", "", now, digest["summary"], _dumps(digest)
                )
                row = {
                    "id": new_id("msg"),
                    "event_id": digest["id"],
                    "channel": channel,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                store.add_deliveries(session, [row])
                store.mark_batched(session, [delivery_id for delivery_id, _ in items], digest["id"])
                log.info("digest %s for %s: %d event(s)", digest["id"], channel, len(items))

    def _claim(self, limit: int, channels: Collection[str] | None = None) -> list[_Claimed]:
        now = self._clock()
        lease_until = now + timedelta(seconds=self.config.monitor.delivery_lease)
        with self.db.session() as session:
            due = store.claim_due(
                session, now, lease_until, limit, channels, skip_locked=not self.db.is_sqlite
            )
        return [
            _Claimed(d.id, d.event_id, d.channel, d.attempts, json.loads(d.payload)) for d in due
        ]

    def _send_all(self, item: tuple[str, list[_Claimed]]) -> DispatchReport:
        """One channel's deliveries, in order, no faster than the channel allows."""
        name, deliveries = item
        report = DispatchReport()
        for delivery in deliveries:
            disabled = self._disabled_reason(name)
            if disabled is not None:
                result = SendResult(ok=False, permanent=True, error=f"channel disabled: {disabled}")
                report += self._record(delivery, result, 0.0)
                continue
            self._pace(name)
            started = time.monotonic()
            result = self._send(name, delivery)
            report += self._record(delivery, result, time.monotonic() - started)
            if result.disable:
                self._disable(name, result.error)
        return report

    def _pace(self, name: str) -> None:
        channel = self.channels.get(name)
        interval = channel.MIN_INTERVAL if channel is not None else 0.0
        last = self._last_sent.get(name)
        if interval and last is not None:
            wait = last + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_sent[name] = time.monotonic()

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

    def _disabled_reason(self, name: str) -> str | None:
        with self.db.reader() as session:
            return store.disabled_reason(session, name)

    def _disable(self, name: str, reason: str) -> None:
        log.error(
            "channel %s is DISABLED: its destination is gone (%s). Fix the channel, then "
            "`model-monitor deliveries --retry-dead` re-enables it and resends.",
            name,
            reason,
        )
        with self.db.session() as session:
            store.disable_channel(session, name, self._clock(), reason)

    def _record(self, delivery: _Claimed, result: SendResult, duration: float) -> DispatchReport:
        now = self._clock()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "last_status": result.status,
            "last_error": result.error or None,
        }
        schedule = self.config.monitor.retry_schedule
        fields: dict[str, Any] = {
            "delivery": delivery.id,
            "channel": delivery.channel,
            "attempt": attempts,
            "status": result.status,
            "duration_ms": round(duration * 1000),
        }
        if result.ok:
            values.update(state=DeliveryState.SENT, sent_at=now)
            report = DispatchReport(sent=1)
            log.info(
                "delivery %s to %s sent (attempt %d)",
                delivery.id,
                delivery.channel,
                attempts,
                extra={"fields": {**fields, "result": "sent"}},
            )
        elif result.permanent or attempts > len(schedule):
            values.update(state=DeliveryState.DEAD)
            report = DispatchReport(dead=1)
            log.error(
                "delivery %s to %s is dead after %d attempt(s): %s",
                delivery.id,
                delivery.channel,
                attempts,
                result.error,
                extra={"fields": {**fields, "result": "dead", "error": result.error}},
            )
        else:
            delay = backoff(schedule, attempts, result.retry_after, self._rng)
            due = now + timedelta(seconds=delay)
            if delivery.channel in self._windows:
                due = self._windows[delivery.channel].release(due)
            values.update(next_attempt_at=due)
            report = DispatchReport(retried=1)
            log.warning(
                "delivery %s to %s failed (attempt %d), retrying in %.0fs: %s",
                delivery.id,
                delivery.channel,
                attempts,
                delay,
                result.error,
                extra={
                    "fields": {
                        **fields,
                        "result": "retried",
                        "retry_in_s": round(delay),
                        "error": result.error,
                    }
                },
            )
        with self.db.session() as session:
            store.record_attempt(
                session,
                delivery.id,
                attempts,
                now,
                round(duration * 1000),
                ok=result.ok,
                status=result.status,
                error=result.error or None,
                changes=values,
            )
        if self.metrics is not None:
            outcome = "sent" if report.sent else "dead" if report.dead else "retried"
            self.metrics.record_delivery(delivery.channel, outcome)
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
    """Put deliveries back in the queue, due now (`deliveries --retry` / `--retry-dead`).

    Replaying to a disabled channel re-enables it: the operator says it is fixed.
    """
    with db.session() as session:
        return store.requeue(session, utcnow(), delivery_id=delivery_id, dead=dead)


def digest_payload(payloads: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """One message carrying several events (payload version 1, type "digest"; docs/payload.md)."""
    kinds: dict[str, int] = defaultdict(int)
    for payload in payloads:
        kinds[payload["type"]] += 1
    parts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    noun = "event" if len(payloads) == 1 else "events"
    return {
        "version": "1",
        "id": new_id("evt"),
        "type": "digest",
        "occurred_at": rfc3339(now),
        "summary": f"digest of {len(payloads)} {noun}: {parts}",
        "events": payloads,
    }
