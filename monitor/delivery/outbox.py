"""The transactional outbox's dispatcher: sends what routing queued, until each channel
has it or gives up.

Stages, as in Alertmanager's notification pipeline, one module each:

- route (`monitor.delivery.routing.enqueue`): which channels see an event and what each
  sees, written in the check's own transaction;
- batch (`monitor.delivery.batching`): a digest channel's held deliveries become one;
- claim (here, over `monitor.store.outbox`): a lease, so one sender per delivery;
- send (`monitor.delivery.sending.Sender`): pacing, and a result for whatever the
  channel did;
- judge (`monitor.delivery.verdicts.judge`): sent, retry when, or dead;
- record (here): the verdict, the attempt and the metrics, in one transaction.

Each channel is sent from its own thread, so one slow or broken channel never holds up
another.
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

from monitor.config import Config
from monitor.core.clock import utcnow
from monitor.core.records import DeliveryState
from monitor.delivery.base import Channel, SendResult
from monitor.delivery.batching import seal_digests
from monitor.delivery.sending import Claimed, Sender
from monitor.delivery.verdicts import Verdict, judge
from monitor.store import outbox as store
from monitor.store.database import Database

log = logging.getLogger("monitor.delivery")


class AttemptCounter(Protocol):
    """Where the dispatcher counts its attempts (`monitor.runtime.metrics.Metrics`)."""

    def record_delivery(self, channel: str, result: str) -> None:
        """One delivery attempt: `result` is "sent", "retried" or "dead"."""
        ...


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.sent + other.sent, self.retried + other.retried, self.dead + other.dead
        )

    @classmethod
    def of(cls, verdict: Verdict) -> DispatchReport:
        return cls(**{verdict.word: 1})


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
        self._sender = Sender(channels)

    def run_once(self, limit: int = 500, channels: Collection[str] | None = None) -> DispatchReport:
        """Send everything due now (for the named channels, or all); returns what happened.

        The daemon runs one loop per channel (`channels=[name]`), so a channel that hangs
        delays nothing but itself; `check` sends every channel's share in parallel.
        """
        seal_digests(self.db, self._clock(), channels)
        claimed = self._claim(limit, channels)
        if not claimed:
            return DispatchReport()
        by_channel: dict[str, list[Claimed]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        if len(by_channel) == 1:
            return self._deliver(*by_channel.items())
        with ThreadPoolExecutor(len(by_channel), thread_name_prefix="deliver") as pool:
            reports = list(pool.map(self._deliver, by_channel.items()))
        total = DispatchReport()
        for report in reports:
            total += report
        return total

    def next_due(self, channel: str | None = None) -> datetime | None:
        """When the earliest waiting delivery becomes due (None: nothing waiting)."""
        with self.db.reader() as session:
            return store.next_due(session, channel)

    def _claim(self, limit: int, channels: Collection[str] | None = None) -> list[Claimed]:
        now = self._clock()
        lease_until = now + timedelta(seconds=self.config.monitor.delivery_lease)
        with self.db.session() as session:
            due = store.claim_due(
                session, now, lease_until, limit, channels, skip_locked=not self.db.is_sqlite
            )
        return [
            Claimed(d.id, d.event_id, d.channel, d.attempts, json.loads(d.payload)) for d in due
        ]

    def _deliver(self, item: tuple[str, list[Claimed]]) -> DispatchReport:
        """One channel's deliveries, in order."""
        name, deliveries = item
        report = DispatchReport()
        for delivery in deliveries:
            disabled = self._disabled_reason(name)
            if disabled is not None:
                result = SendResult(ok=False, permanent=True, error=f"channel disabled: {disabled}")
                report += self._record(delivery, result, 0.0)
                continue
            started = time.monotonic()
            result = self._sender.send(delivery)
            report += self._record(delivery, result, time.monotonic() - started)
            if result.disable:
                self._disable(name, result.error)
        return report

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

    def _record(self, delivery: Claimed, result: SendResult, duration: float) -> DispatchReport:
        now = self._clock()
        attempts = delivery.attempts + 1
        verdict = judge(
            result,
            attempts,
            self.config.monitor.retry_schedule,
            now,
            self._rng,
            self._windows.get(delivery.channel),
        )
        _log_verdict(delivery, attempts, result, verdict, duration)
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "last_status": result.status,
            "last_error": result.error or None,
            "state": verdict.state,
        }
        if verdict.state is DeliveryState.SENT:
            values["sent_at"] = now
        elif verdict.due is not None:
            values["next_attempt_at"] = verdict.due
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
            self.metrics.record_delivery(delivery.channel, verdict.word)
        return DispatchReport.of(verdict)


def _log_verdict(
    delivery: Claimed, attempts: int, result: SendResult, verdict: Verdict, duration: float
) -> None:
    fields: dict[str, Any] = {
        "delivery": delivery.id,
        "channel": delivery.channel,
        "attempt": attempts,
        "status": result.status,
        "duration_ms": round(duration * 1000),
        "result": verdict.word,
    }
    where = (delivery.id, delivery.channel, attempts)
    if verdict.state is DeliveryState.SENT:
        log.info("delivery %s to %s sent (attempt %d)", *where, extra={"fields": fields})
    elif verdict.state is DeliveryState.DEAD:
        log.error(
            "delivery %s to %s is dead after %d attempt(s): %s",
            *where,
            result.error,
            extra={"fields": {**fields, "error": result.error}},
        )
    else:
        log.warning(
            "delivery %s to %s failed (attempt %d), retrying in %.0fs: %s",
            *where,
            verdict.delay,
            result.error,
            extra={"fields": {**fields, "retry_in_s": round(verdict.delay), "error": result.error}},
        )


def retry(db: Database, *, delivery_id: str | None = None, dead: bool = False) -> int:
    """Put deliveries back in the queue, due now (`deliveries --retry` / `--retry-dead`).

    Replaying to a disabled channel re-enables it: the operator says it is fixed.
    """
    with db.session() as session:
        return store.requeue(session, utcnow(), delivery_id=delivery_id, dead=dead)
