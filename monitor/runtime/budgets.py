"""The budget pass: after a source's models are checked, read the budgets that are due.

A token's budget is due when its last read is older than the source's `budget_interval`
(0: every check). The gateway's budget route is rate limited for all tokens of a source
together (new-api: about 20 reads per 20 minutes per client address), so the pass reads
at most `budget_rate_limit` minus the reads of the last 20 minutes, stalest tokens
first: one read alone, then the rest `concurrency` at a time. A 429 on that first read
stops the pass and keeps the source's budget reads away for as long as it asked (20
minutes when it did not say), and a timeout or a network failure stops it until the
next check. Reads are counted in the
database, so `check` from cron and several daemons share one allowance.

What a read means (warnings once per crossing, the baseline) is decided by
`monitor.events.budget`; here it is read, stored and enqueued. A failed read fails only
that token's budget: its models and every other token are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from monitor.config import Config, MonitorSettings, SourceConfig, TokenConfig
from monitor.core.budget import Budget
from monitor.core.clock import rfc3339
from monitor.core.ids import new_id
from monitor.core.money import money
from monitor.core.records import ErrorKind, Event, EventType, FetchError, SourceRef
from monitor.delivery.routing import enqueue
from monitor.events.budget import BudgetWarning, left_text, observe_budget
from monitor.sources.base import Flavor
from monitor.sources.budget import BudgetRoute, read_budget
from monitor.store.budgets import budget_backoff, budget_records, reads_since, record_budget_read
from monitor.store.database import Database

log = logging.getLogger("monitor.budget")

RATE_WINDOW = timedelta(minutes=20)

Reader = Callable[
    [BudgetRoute, SourceConfig, TokenConfig, MonitorSettings, datetime], Budget | FetchError
]


class BudgetPass:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Callable[[], datetime],
        read: Reader = read_budget,
    ) -> None:
        self.config = config
        self.db = db
        self._clock = clock
        self._read = read

    def run(
        self, source: SourceConfig, tokens: Sequence[TokenConfig], flavor: type[Flavor] | None
    ) -> tuple[Event, ...]:
        """Read the due budgets of `tokens`, as `flavor` reads them; returns the events
        enqueued."""
        route = flavor.budget_route if flavor is not None else None
        if route is None or not tokens:
            return ()
        now = self._clock()
        with self.db.reader() as session:
            records = budget_records(session, [t.name for t in tokens])
            spent = reads_since(session, source.name, now - RATE_WINDOW)
            backoff = budget_backoff(session, source.name, now)
        if backoff is not None:
            log.debug("source %s: budget reads wait until %s", source.name, rfc3339(backoff))
            return ()
        interval = timedelta(seconds=self.config.budget_interval(source))
        due = [
            t
            for t in tokens
            if t.name not in records or records[t.name].checked_at <= now - interval
        ]
        due.sort(key=lambda t: records[t.name].checked_at if t.name in records else _NEVER)
        allowance = max(0, source.budget_rate_limit - spent)
        if len(due) > allowance:
            log.info(
                "source %s: %d budget read(s) due, %d allowed now; the rest wait",
                source.name,
                len(due),
                allowance,
            )
        results = self._read_all(route, source, due[:allowance], now)
        events: list[Event] = []
        with self.db.session() as session:
            for token, result, read_at in results:
                if isinstance(result, FetchError):
                    self._failed(session, source, token, result, read_at)
                    continue
                before = records.get(token.name)
                marks, warnings = observe_budget(
                    before.marks if before else None,
                    result,
                    self.config.budget_policy(token),
                    read_at,
                )
                record_budget_read(
                    session,
                    source=source.name,
                    token=token.name,
                    now=read_at,
                    outcome="ok",
                    status=200,
                    budget=result,
                    marks=marks,
                )
                for warning in warnings:
                    event = _event(source, token, warning, read_at)
                    enqueue(session, self.config, event, read_at)
                    events.append(event)
        return tuple(events)

    def _read_all(
        self,
        route: BudgetRoute,
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        now: datetime,
    ) -> list[tuple[TokenConfig, Budget | FetchError, datetime]]:
        """Each token's read, with when it came back. The first goes alone: when the route
        is unwell for the whole source (a 429, a stall), it is the only one that waits; the
        rest then go `concurrency` at a time, as the models checks do."""

        def read(token: TokenConfig) -> tuple[TokenConfig, Budget | FetchError, datetime]:
            result = self._read(route, source, token, self.config.monitor, now)
            return token, result, self._clock()

        if not tokens:
            return []
        first = read(tokens[0])
        result = first[1]
        if len(tokens) == 1 or (isinstance(result, FetchError) and result.kind in _SOURCE_WIDE):
            return [first]  # the route, not the token: the others wait for the next check
        workers = max(1, min(self.config.monitor.concurrency, len(tokens) - 1))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"budget-{source.name}") as pool:
            return [first, *pool.map(read, tokens[1:])]

    def _failed(
        self,
        session: Session,
        source: SourceConfig,
        token: TokenConfig,
        error: FetchError,
        read_at: datetime,
    ) -> None:
        retry_at = None
        if error.kind is ErrorKind.RATE_LIMITED:
            wait = error.retry_after or RATE_WINDOW.total_seconds()
            retry_at = read_at + timedelta(seconds=wait)
        record_budget_read(
            session,
            source=source.name,
            token=token.name,
            now=read_at,
            outcome=str(error.kind),
            status=error.status,
            retry_at=retry_at,
            error=error.message,
        )
        log.warning("token %s: budget not read: %s", token.name, error.message)


_NEVER = datetime.min.replace(tzinfo=UTC)
# Failures that say the route is unwell for every token of the source.
_SOURCE_WIDE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.NETWORK})


def _event(
    source: SourceConfig, token: TokenConfig, warning: BudgetWarning, now: datetime
) -> Event:
    budget = warning.budget
    if warning.kind == "expiring":
        assert budget.expires_at is not None
        kind = EventType.TOKEN_EXPIRING
        verb = "expired" if budget.expires_at <= now else "expires"
        summary = (
            f"{token.name} {verb} {left_text(budget.expires_at, now)} "
            f"({rfc3339(budget.expires_at)}) on {source.name}"
        )
    else:
        kind = EventType.TOKEN_QUOTA_LOW
        left = money(budget.remaining) if budget.remaining is not None else "little"
        if budget.granted:
            share = budget.remaining / budget.granted * 100 if budget.remaining is not None else 0
            summary = (
                f"{token.name} has {left} of {money(budget.granted)} left ({share:.0f}%) "
                f"on {source.name}"
            )
        else:
            summary = f"{token.name} has {left} left on {source.name}"
    return Event(
        id=new_id("evt"),
        type=kind,
        occurred_at=rfc3339(now),
        source=SourceRef(source.name, source.base_url),
        tokens=(token.name,),
        summary=summary,
        budget=budget,
        threshold=warning.threshold,
    )
