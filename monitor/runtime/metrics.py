"""What the daemon counts for `/metrics` (Prometheus text format, via prometheus-client).

A `Metrics` object owns its own `CollectorRegistry` (never the process-global one), so
two daemons or two tests in one process never share numbers. The `Checker` and the
`Dispatcher` take one optionally (None: nothing is counted) and call it once per cycle
and once per delivery attempt, after their database work: the hot path stays a few
dictionary lookups and additions.

Labels carry token NAMES from the config, never token values; nothing from a response
(messages, model ids) becomes a label, so the number of series stays bounded by the
config.

Deliveries by state are read from the database at scrape time (`delivery_counts`), so
they are right even for rows written by another process (`model-monitor check`).

Beside its own numbers the registry carries what the process-global default registry
would have: `process_*` (CPU, memory, open files, start time; from /proc, so Linux only)
and `python_info`, plus `model_monitor_build_info{version,python}`, always 1, for
"which version runs where" and for joining onto other series.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.core.records import DeliveryState, EventType

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.runtime.cycle import CycleReport
    from monitor.store.database import Database

log = logging.getLogger("monitor.metrics")

# `*_created` series (when each counter was born) double the output and answer nothing
# an alert asks; the switch is process-wide, and this process is the daemon.
disable_created_metrics()

PREFIX = "model_monitor"
# A models list answers in tens of milliseconds on loopback and in seconds from a slow
# gateway; the timeout is 20s by default, a re-fetch may double it.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
# Delivery states always exported (as 0 when empty), so alert rules need no `or vector(0)`.
DELIVERY_STATES = (
    DeliveryState.PENDING,
    DeliveryState.HELD,
    DeliveryState.BATCHED,
    DeliveryState.SENT,
    DeliveryState.DEAD,
)


class Metrics:
    """Counters, gauges and a histogram for one daemon; `registry` is what `/metrics` serves."""

    def __init__(self, db: Database | None = None) -> None:
        """With `db`, deliveries by state are read from it at every scrape."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Gauge(
            f"{PREFIX}_build_info",
            "Always 1: the running version of model-monitor and of Python, as labels.",
            ["version", "python"],
            registry=r,
        ).labels(__version__, platform.python_version()).set(1)
        self.checks = Counter(
            f"{PREFIX}_checks",
            "Checks of one token's models list, by outcome (ok, an error kind, or skipped).",
            ["source", "outcome"],
            registry=r,
        )
        self.check_duration = Histogram(
            f"{PREFIX}_check_duration_seconds",
            "Time to fetch one token's models list (skipped checks excluded).",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.models = Gauge(
            f"{PREFIX}_models",
            "Models the token saw at its last successful check.",
            ["source", "token"],
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the token's models list was last fetched successfully (unix time).",
            ["source", "token"],
            registry=r,
        )
        self.last_cycle = Gauge(
            f"{PREFIX}_last_cycle_timestamp_seconds",
            "When the source's last check cycle completed (unix time).",
            ["source"],
            registry=r,
        )
        self.token_failing = Gauge(
            f"{PREFIX}_token_failing",
            "1 while the token is failing (token.failing was raised and no success since), else 0.",
            ["source", "token"],
            registry=r,
        )
        self.cycle_failures = Counter(
            f"{PREFIX}_cycle_failures",
            "Check cycles that raised before recording anything (e.g. the database was down).",
            ["source"],
            registry=r,
        )
        self.events = Counter(
            f"{PREFIX}_events",
            "Events detected, by type (models.changed, token.failing, token.recovered...).",
            ["source", "type"],
            registry=r,
        )
        self.probes = Counter(
            f"{PREFIX}_probes",
            "Probes sent to listed models (docs/probes.md), by result: ok, unavailable, "
            "transient, rate_limited, token_quota, auth, inconclusive.",
            ["source", "result"],
            registry=r,
        )
        self.delivery_attempts = Counter(
            f"{PREFIX}_delivery_attempts",
            "Delivery attempts by channel and result (sent, retried, dead).",
            ["channel", "result"],
            registry=r,
        )
        if db is not None:
            r.register(DeliveryCollector(db))

    # -- recording (called by the Checker, the Dispatcher and the Daemon) ---------------

    def record_cycle(self, report: CycleReport, at: datetime) -> None:
        """One completed check cycle of one source; `at` is when its results were stored."""
        stamp = at.timestamp()
        for token in report.tokens:
            self.checks.labels(token.source, token.outcome).inc()
            if token.outcome == "skipped":
                continue  # nothing was asked: no latency, no new success
            self.check_duration.labels(token.source).observe(token.duration)
            failing = self.token_failing.labels(token.source, token.token)  # 0 when new
            if token.outcome == "ok":
                failing.set(0)  # a success ends any failing spell
                if token.model_count is not None:
                    self.models.labels(token.source, token.token).set(token.model_count)
                    self.last_success.labels(token.source, token.token).set(stamp)
        for event in report.events:
            self.events.labels(event.source.name, str(event.type)).inc()
            if event.type == EventType.TOKEN_FAILING:  # raised once per spell, as the state is
                for name in event.tokens:
                    self.token_failing.labels(event.source.name, name).set(1)
        self.last_cycle.labels(report.source).set(stamp)

    def record_probe(self, source: str, result: str) -> None:
        self.probes.labels(source, result).inc()

    def record_cycle_failure(self, source: str) -> None:
        self.cycle_failures.labels(source).inc()

    def record_delivery(self, channel: str, result: str) -> None:
        """One delivery attempt: `result` is "sent", "retried" or "dead"."""
        self.delivery_attempts.labels(channel, result).inc()

    def restore(self, db: Database, config: Config) -> None:
        """Seed the per-token gauges from the database, so a restart does not blank them."""
        from monitor.store.queries import status_records

        known = {(t.source, t.name) for t in config.tokens}
        with db.reader() as session:
            statuses = status_records(session)
        for status in statuses:
            if (status.source, status.token) not in known:
                continue  # a token since removed from the config
            if status.last_check_at is not None:
                self.token_failing.labels(status.source, status.token).set(int(status.failing))
            if status.model_count is not None:
                self.models.labels(status.source, status.token).set(status.model_count)
            if status.last_ok_at is not None:
                self.last_success.labels(status.source, status.token).set(
                    _timestamp(status.last_ok_at)
                )


class DeliveryCollector(Collector):
    """`model_monitor_deliveries{state}` and `model_monitor_database_up`, read per scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        from monitor.store.queries import delivery_counts

        try:
            with self.db.reader() as session:
                counts = delivery_counts(session)
        except Exception:
            log.warning("metrics: cannot read delivery counts from the database", exc_info=True)
            counts = None
        return self._families(counts)

    def _families(self, counts: dict[str, int] | None = None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_database_up", "Whether the database answered at this scrape (1 or 0)."
        )
        deliveries = GaugeMetricFamily(
            f"{PREFIX}_deliveries",
            "Deliveries in the outbox by state, read from the database at scrape time.",
            labels=["state"],
        )
        if counts is not None:
            for state in sorted({*DELIVERY_STATES, *counts}):
                deliveries.add_metric([state], counts.get(state, 0))
        up.add_metric([], 0 if counts is None else 1)
        yield up
        yield deliveries


def _timestamp(moment: datetime) -> float:
    """Unix seconds; naive datetimes from the database are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
