"""The budget pass: after a source's models are checked, read the budgets that are due.

A token's budget is due when its last read is older than the source's `budget_interval`
(0: every check). The gateway's budget route is rate limited for all tokens of a source
together (new-api: about 20 reads per 20 minutes per client address), so the pass reads
at most `budget_rate_limit` minus the reads of the last 20 minutes, stalest tokens
first, one after another; a 429 stops the pass and keeps the source's budget reads
away for as long as it asked (20 minutes when it did not say), and a timeout or a
network failure stops it until the next check. Reads are counted in the
database, so `check` from cron and several daemons share one allowance.

What a read means (warnings once per crossing, the baseline) is decided by
`monitor.events.budget`; here it is read, stored and enqueued. A failed read fails only
that token's budget: its models and every other token are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

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
        events: list[Event] = []
        for token in due[:allowance]:
            result = self._read(route, source, token, self.config.monitor, now)
            read_at = self._clock()
            with self.db.session() as session:
                if isinstance(result, FetchError):
                    retry_at = None
                    if result.kind is ErrorKind.RATE_LIMITED:
                        wait = result.retry_after or RATE_WINDOW.total_seconds()
                        retry_at = read_at + timedelta(seconds=wait)
                    record_budget_read(
                        session,
                        source=source.name,
                        token=token.name,
                        now=read_at,
                        outcome=str(result.kind),
                        status=result.status,
                        retry_at=retry_at,
                        error=result.message,
                    )
                    log.warning("token %s: budget not read: %s", token.name, result.message)
                    if result.kind in _SOURCE_WIDE:
                        break  # the route, not the token: the others wait for the next check
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
