"""One check cycle of one source: fetch every token, then record, diff and enqueue at once.

The order matters and is the product's main guarantee:
1. fetch all tokens concurrently, with no database transaction open;
2. in ONE transaction: the checks, snapshots, flap-guard and health state, the events
   and one outbox row per channel (a crash loses nothing and half-writes nothing);
3. delivery happens afterwards, from the outbox (`monitor.delivery.outbox`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from sqlalchemy.orm import Session

from monitor.config import Config, MonitorSettings, SourceConfig, TokenConfig
from monitor.core.clock import rfc3339, utcnow
from monitor.core.ids import new_id
from monitor.core.records import (
    Change,
    ChangeType,
    ErrorKind,
    Event,
    FetchError,
    FetchOk,
    FetchResult,
    ModelRecord,
    SourceRef,
)
from monitor.delivery.routing import enqueue
from monitor.events.grouping import CheckOutcome, build_events
from monitor.events.guard import GuardState, Pending, observe
from monitor.events.health import Health, next_health
from monitor.events.prices import fields_as_prices
from monitor.events.thresholds import FieldPolicy
from monitor.runtime.budgets import BudgetPass
from monitor.runtime.caches import CycleCaches
from monitor.runtime.prices import PricePass
from monitor.runtime.probes import ProbePass
from monitor.sources.base import Flavor
from monitor.sources.fetch import fetch_models, secret_forms
from monitor.sources.registry import reading
from monitor.store.cycles import (
    LastCheck,
    add_checks,
    backoff_until,
    claim_slots,
    last_checks,
    set_backoff,
    token_states,
)
from monitor.store.database import Database
from monitor.store.queries import detected_flavors
from monitor.store.schema import TokenState

log = logging.getLogger("monitor.check")


class CycleCounter(Protocol):
    """Where the checker counts finished cycles (`monitor.runtime.metrics.Metrics`)."""

    def record_cycle(self, report: CycleReport, at: datetime) -> None:
        """One completed check cycle of one source, its results stored at `at`."""
        ...

    def record_probe(self, source: str, result: str) -> None:
        """One probe sent (monitor.runtime.probes), by its result."""
        ...


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What one check of one token found, for summaries and exit codes."""

    source: str
    token: str
    outcome: str  # "ok" or an ErrorKind value
    model_count: int | None
    changes: tuple[Change, ...]
    baseline: bool
    error: FetchError | None
    duration: float


@dataclass(frozen=True, slots=True)
class CycleReport:
    source: str
    tokens: tuple[CheckReport, ...]
    events: tuple[Event, ...]

    @property
    def failed(self) -> bool:
        return any(t.error is not None for t in self.tokens)

    @property
    def changed(self) -> bool:
        return any(t.changes for t in self.tokens)


class Checker:
    """Runs check cycles for the sources of one config against one database."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        caches: CycleCaches | None = None,
        fetch: Callable[[SourceConfig, TokenConfig, MonitorSettings], FetchResult] | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        metrics: CycleCounter | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.metrics = metrics  # monitor.runtime.metrics: counts each finished cycle (None: off)
        self.caches = caches if caches is not None else CycleCaches()
        self.snapshots = self.caches.snapshots
        self._fetch = fetch or partial(fetch_models, caches=self.caches.parsed)
        self.budgets = BudgetPass(config, db, clock)
        self.prices = PricePass(config, db, clock)
        self._clock = clock
        self._sleep = sleep
        # Called (from fetch threads) once per token fetched: `check`'s progress bar.
        self.on_fetched: Callable[[], None] | None = None
        # Set when the process stops: no new polls, and a cycle under way records nothing.
        self.cancelled = threading.Event()
        self.probes = ProbePass(
            config,
            db,
            self.snapshots,
            clock,
            cancelled=self.cancelled,
            counted=self._count_probe,
        )
        # Every configured token as a gateway might echo it as a model id (each walk
        # already masks its own token anywhere in its answer).
        self._secret_ids = frozenset(
            form for t in config.tokens for form in secret_forms(t.secret.reveal())
        )

    # -- fetching (no transaction open) ------------------------------------------------

    def _prior(self, tokens: Sequence[TokenConfig]) -> dict[str, LastCheck]:
        """What the last cycle left, read before fetching (no transaction is held open)."""
        with self.db.reader() as session:
            return last_checks(session, [t.name for t in tokens])

    def _backoff_until(self, source: SourceConfig) -> datetime | None:
        with self.db.reader() as session:
            return backoff_until(session, source.name)

    def _fetch_one(
        self, source: SourceConfig, token: TokenConfig, confirmed: int | None
    ) -> FetchResult:
        settings = self.config.monitor
        result = self._fetch(source, token, settings)
        if (
            isinstance(result, FetchOk)
            and confirmed
            and _is_mass_drop(confirmed, len(result.models), settings.mass_change_share)
        ):
            # A list that suddenly lost most of its models is more often a gateway
            # hiccup than the truth: ask again before believing it.
            log.info(
                "token %s: %d of %d models, fetching again to confirm",
                token.name,
                len(result.models),
                confirmed,
            )
            self._sleep(settings.refetch_delay)
            result = self._fetch(source, token, settings)
        return result

    def fetch_all(self, source: SourceConfig, tokens: Sequence[TokenConfig]) -> list[FetchResult]:
        prior = self._prior(tokens)
        workers = max(1, min(self.config.monitor.concurrency, len(tokens)))

        def fetch(token: TokenConfig) -> FetchResult:
            started = time.monotonic()
            try:
                if self.cancelled.is_set():
                    return FetchError(ErrorKind.TIMEOUT, "not polled: the monitor is stopping")
                before = prior.get(token.name, LastCheck(None, False, None))
                result = self._fetch_one(source, token, before.model_count)
                result = self._explained(source, token, result, before)
                if isinstance(result, FetchOk):
                    models = _without_echoes(result.models, self._secret_ids)
                    result = replace(result, models=self.snapshots.shared(models))
            except Exception as exc:  # one token's answer fails that token, nothing else
                result = _unprocessable(source, token, exc, "reading", time.monotonic() - started)
            if self.on_fetched is not None:
                self.on_fetched()
            return result

        if workers == 1:
            return [fetch(t) for t in tokens]
        with ThreadPoolExecutor(workers, thread_name_prefix=f"fetch-{source.name}") as pool:
            return list(pool.map(fetch, tokens))

    def _explained(
        self, source: SourceConfig, token: TokenConfig, result: FetchResult, before: LastCheck
    ) -> FetchResult:
        """A 401 that starts a failing spell, with new-api's reason when it gives one."""
        if (
            isinstance(result, FetchError)
            and result.kind is ErrorKind.AUTH
            and not before.failing
            and source.explain_auth
        ):
            # With flavor = "auto", the flavor the last successful check was read as.
            flavor = reading(source.flavor, before.flavor)
            detail = flavor.explain_auth(source, token, self.config.monitor) if flavor else None
            if detail:
                return replace(result, detail=detail)
        return result

    # -- one cycle -----------------------------------------------------------------------

    def check_source(
        self,
        source: SourceConfig,
        tokens: Sequence[TokenConfig] | None = None,
        *,
        dry_run: bool = False,
        slot: str | None = None,
    ) -> CycleReport:
        """One cycle. `slot` names the scheduled poll (the daemon passes it): only the
        tokens this instance claims for that slot are polled. Without a slot (manual
        `check`, `--dry-run`) nothing is claimed and every token is polled."""
        tokens = tuple(tokens if tokens is not None else self.config.tokens_of(source.name))
        if slot is not None and not dry_run:
            tokens = self._claim(tokens, slot)
            if not tokens:
                return self._counted(CycleReport(source.name, (), ()))
        started = self._clock()
        backoff = self._backoff_until(source)
        if backoff is not None and backoff > started:
            return self._counted(self._skip(source, tokens, backoff, started, dry_run=dry_run))
        results = self.fetch_all(source, tokens)
        if self.cancelled.is_set():
            # Stopping: answers cut short by the shutdown are no verdict on the tokens.
            log.info("check of source %s abandoned: the monitor is stopping", source.name)
            return CycleReport(source.name, (), ())
        while True:
            try:
                report = self._record_cycle(source, tokens, results, started, dry_run=dry_run)
                break
            except _TokenFault as fault:
                # The transaction rolled back whole; record again with that token's
                # answer replaced by its failure, so the other tokens lose nothing.
                if results[fault.index] is fault.error:
                    raise fault.cause from None
                results[fault.index] = fault.error
        if dry_run or self.cancelled.is_set():
            return report
        flavor = self._read_as(source)
        extra = self._pass("budget", self.budgets.run, source, tokens, flavor)
        extra += self._pass("price", self.prices.run, source, tokens, flavor)
        listing = {t.token: t.changes for t in report.tokens if t.outcome == "ok"}
        answered = [t for t in tokens if t.name in listing]
        probe = partial(self.probes.run, changes=listing)
        extra += self._pass("probe", probe, source, answered, flavor)
        return replace(report, events=report.events + extra)

    def _count_probe(self, source: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.record_probe(source, result)

    def _read_as(self, source: SourceConfig) -> type[Flavor] | None:
        """The flavor the source is read as: its own, or for `auto` the one detected."""
        if source.flavor != "auto":
            return reading(source.flavor, None)
        try:
            with self.db.reader() as session:
                return reading(source.flavor, detected_flavors(session).get(source.name))
        except Exception:
            log.exception("source %s: the detected flavor could not be read", source.name)
            return None

    def _pass(
        self,
        name: str,
        run: Callable[
            [SourceConfig, Sequence[TokenConfig], type[Flavor] | None], tuple[Event, ...]
        ],
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        flavor: type[Flavor] | None,
    ) -> tuple[Event, ...]:
        """A pass after the models are stored (`monitor.runtime.budgets`, `.prices`,
        `.probes`): its failure is logged and costs nothing that was already recorded."""
        try:
            return run(source, tokens, flavor)
        except Exception:
            log.exception("source %s: the %s pass failed", source.name, name)
            return ()

    def _record_cycle(
        self,
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        results: Sequence[FetchResult],
        started: datetime,
        *,
        dry_run: bool,
    ) -> CycleReport:
        """Record a cycle's answers, diff them and enqueue the events: one transaction."""
        with self.db.session(commit=not dry_run) as session:
            now = self._clock()
            # One query loads every token's state; `_record` then finds it in the
            # identity map, and the session flushes all rows at once.
            states = token_states(session, [t.name for t in tokens])
            reports: list[CheckReport] = []
            outcomes: list[CheckOutcome] = []
            checks: list[dict[str, object]] = []  # inserted together, after the loop
            for index, (token, result) in enumerate(zip(tokens, results, strict=True)):
                try:
                    report, outcome = self._record(
                        session, source, token, result, started, now, states.get(token.name), checks
                    )
                except Exception as exc:
                    error = _unprocessable(source, token, exc, "recording", result.duration)
                    raise _TokenFault(index, error, exc) from exc
                reports.append(report)
                outcomes.append(outcome)
            add_checks(session, checks)
            _update_backoff(session, source, results, now)
            ref = SourceRef(source.name, source.base_url)
            events = build_events(ref, outcomes, rfc3339(now), lambda: new_id("evt"))
            for event in events:
                enqueue(session, self.config, event, now)
        for report in reports:
            _log_check(report)
        return self._counted(CycleReport(source.name, tuple(reports), tuple(events)), now)

    # -- claiming a scheduled poll (several daemons, one database) ---------------------

    def _claim(self, tokens: Sequence[TokenConfig], slot: str) -> tuple[TokenConfig, ...]:
        """The tokens whose (token, slot) row this instance inserted, in a short
        transaction of its own before any fetch. ON CONFLICT DO NOTHING: when several
        daemons share the database, the unique constraint lets exactly one poll each
        token per slot, on SQLite and PostgreSQL alike. A daemon that dies after
        claiming loses that one slot; the next slot is claimed by whoever is alive."""
        if not tokens:
            return ()
        with self.db.session() as session:
            won = claim_slots(session, [t.name for t in tokens], slot, self._clock(), INSTANCE)
        skipped = len(tokens) - len(won)
        if skipped:
            log.debug("slot %s: %d token(s) already claimed by another instance", slot, skipped)
        return tuple(t for t in tokens if t.name in won)

    def _counted(self, cycle: CycleReport, at: datetime | None = None) -> CycleReport:
        """Hand a finished cycle to the metrics, if any (`monitor.runtime.metrics`)."""
        if self.metrics is not None:
            self.metrics.record_cycle(cycle, at or self._clock())
        return cycle

    def _skip(
        self,
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        until: datetime,
        started: datetime,
        *,
        dry_run: bool,
    ) -> CycleReport:
        """The source said "slow down": record the polls as skipped, ask nothing."""
        message = f"skipped: {source.name} asked to wait until {rfc3339(until)} (HTTP 429)"
        rows = [
            {
                "source": source.name,
                "token": token.name,
                "fingerprint": token.fingerprint,
                "started_at": started,
                "duration_ms": 0,
                "outcome": SKIPPED,
                "message": message,
                "baseline": False,
            }
            for token in tokens
        ]
        with self.db.session(commit=not dry_run) as session:
            add_checks(session, rows)
        log.info(
            "check source=%s outcome=skipped until=%s",
            source.name,
            rfc3339(until),
            extra={"fields": {"source": source.name, "outcome": SKIPPED, "until": rfc3339(until)}},
        )
        reports = tuple(
            CheckReport(source.name, t.name, SKIPPED, None, (), False, None, 0.0) for t in tokens
        )
        return CycleReport(source.name, reports, ())

    def check(self, token_names: Sequence[str] = (), *, dry_run: bool = False) -> list[CycleReport]:
        """Check every source (or only the named tokens), one cycle each."""
        reports = []
        for source in self.config.sources:
            tokens = self.config.tokens_of(source.name)
            if token_names:
                tokens = tuple(t for t in tokens if t.name in token_names)
            if tokens:
                reports.append(self.check_source(source, tokens, dry_run=dry_run))
        return reports

    def _record(
        self,
        session: Session,
        source: SourceConfig,
        token: TokenConfig,
        result: FetchResult,
        started: datetime,
        now: datetime,
        state: TokenState | None,
        checks: list[dict[str, object]],
    ) -> tuple[CheckReport, CheckOutcome]:
        if state is None:
            state = TokenState(
                token=token.name,
                source=source.name,
                pending="{}",
                consecutive_failures=0,
                failing=False,
            )
            session.add(state)
        # Assigned only when different: with a thousand tokens, setting unchanged
        # attributes costs more than the rest of the bookkeeping together.
        _assign(state, source=source.name, fingerprint=token.fingerprint)

        health, transition = next_health(
            _health_of(state), result, rfc3339(now), self.config.monitor.failure_threshold
        )
        changes: list[Change] = []
        is_baseline = False
        notice = None
        snapshot_id = None
        if isinstance(result, FetchOk):
            policy = FieldPolicy(source.ignore_fields, source.thresholds)
            models = policy.strip(result.models)
            snapshot_id = self.snapshots.put(session, models, now)
            changes, is_baseline, notice = self._observe(
                session, state, models, snapshot_id, policy
            )
            _assign(
                state,
                last_snapshot_id=snapshot_id,
                last_ok_at=now,
                flavor=result.flavor or source.flavor,
            )
        _store_health(state, health)
        outcome = "ok" if isinstance(result, FetchOk) else str(result.kind)
        _assign(state, last_check_at=now, last_outcome=outcome)

        error = result if isinstance(result, FetchError) else None
        checks.append(
            {
                "source": source.name,
                "token": token.name,
                "fingerprint": token.fingerprint,
                "started_at": started,
                "duration_ms": round(result.duration * 1000),
                "outcome": outcome,
                "http_status": result.status,
                "message": error.message if error else None,
                "snapshot_id": snapshot_id,
                "model_count": len(result.models) if isinstance(result, FetchOk) else None,
                "baseline": is_baseline,
            }
        )
        report = CheckReport(
            source=source.name,
            token=token.name,
            outcome=outcome,
            model_count=len(result.models) if isinstance(result, FetchOk) else None,
            changes=tuple(changes),
            baseline=is_baseline,
            error=error,
            duration=result.duration,
        )
        return report, CheckOutcome(token.name, tuple(changes), transition, error, notice)

    def _observe(
        self,
        session: Session,
        state: TokenState,
        models: Mapping[str, ModelRecord],
        snapshot_id: int,
        policy: FieldPolicy,
    ) -> tuple[list[Change], bool, str | None]:
        """Run the flap guard: the changes to report, whether this was the baseline, and
        a plain notice when the token lost most of its models at once."""
        if state.confirmed_snapshot_id is None:
            state.confirmed_snapshot_id = snapshot_id
            state.pending = "{}"
            return [], True, None
        pending = _load_pending(state.pending)
        if snapshot_id == state.confirmed_snapshot_id and not pending:
            return [], False, None  # the common case: nothing moved
        confirmed_id = state.confirmed_snapshot_id
        if pending:
            outcome = self._guard(session, confirmed_id, models, pending, policy)
        else:
            # Without a streak the outcome depends on the two snapshots alone, and the
            # tokens of a group usually move together: compare once per transaction
            # (ids are only trusted within it, see SnapshotStore).
            memo = session.info.setdefault(_OBSERVED, {})
            key = (confirmed_id, snapshot_id, policy)
            outcome = memo.get(key)
            if outcome is None:
                outcome = memo[key] = self._guard(session, confirmed_id, models, {}, policy)
        if outcome.adopt:
            state.confirmed_snapshot_id = snapshot_id
        elif outcome.changes:
            state.confirmed_snapshot_id = self.snapshots.put(
                session, outcome.view.confirmed, self._clock()
            )
        state.pending = outcome.pending_json
        notice = _mass_removal_notice(
            state.token, outcome.changes, outcome.confirmed_count, self.config.monitor
        )
        return list(outcome.changes), False, notice

    def _guard(
        self,
        session: Session,
        confirmed_id: int,
        models: Mapping[str, ModelRecord],
        pending: Mapping[str, Pending],
        policy: FieldPolicy,
    ) -> _Guarded:
        settings = self.config.monitor
        view = GuardState(self.snapshots.load(session, confirmed_id), pending)
        seen = policy.settle(view.confirmed, models)
        new_view, changes = observe(
            view, seen, settings.confirm_checks, mass_share=settings.mass_change_share
        )
        return _Guarded(
            view=new_view,
            changes=tuple(fields_as_prices(changes, view.confirmed)),
            adopt=new_view.confirmed == models,
            pending_json=json.dumps(
                {key: entry.to_json() for key, entry in new_view.pending.items()}, sort_keys=True
            ),
            confirmed_count=len(view.confirmed),
        )


def _without_echoes(
    models: Mapping[str, ModelRecord], secrets: frozenset[str]
) -> Mapping[str, ModelRecord]:
    """The list with any model id that is a configured token's value renamed `***`."""
    if secrets.isdisjoint(models):
        return models  # the common case: one set intersection in C
    return {
        ("***" if key in secrets else key): (
            replace(record, id="***") if record.id in secrets else record
        )
        for key, record in models.items()
    }


class _TokenFault(Exception):
    """Recording one token's answer raised: which token, and the failure to record instead."""

    def __init__(self, index: int, error: FetchError, cause: Exception) -> None:
        super().__init__(index)
        self.index = index
        self.error = error
        self.cause = cause  # what recording raised


def _unprocessable(
    source: SourceConfig, token: TokenConfig, exc: Exception, stage: str, duration: float
) -> FetchError:
    """An answer the monitor could not handle, as that token's classified failure.

    The traceback goes to the debug log once; the message names only the exception's
    type, since its text could quote the answer (or a token echoed in it).
    """
    log.debug("token %s on %s: %s its answer failed", token.name, source.name, stage, exc_info=True)
    return FetchError(
        ErrorKind.INVALID_RESPONSE,
        f"the answer could not be processed ({type(exc).__name__} while {stage} it)",
        duration=duration,
    )


@dataclass(frozen=True, slots=True)
class _Guarded:
    """What the flap guard made of one check, before it is applied to a token's state."""

    view: GuardState
    changes: tuple[Change, ...]
    adopt: bool  # the check's snapshot becomes the confirmed one
    pending_json: str
    confirmed_count: int  # models confirmed before the check


_OBSERVED = "monitor.observed"  # Session.info: (confirmed id, seen id, policy) -> _Guarded


SKIPPED = "skipped"
# Who claimed a poll slot (poll_slots.instance): for people reading the table.
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"[:255]
DEFAULT_BACKOFF = 60.0  # seconds, when a 429 does not say how long to wait


def _update_backoff(
    session: Session, source: SourceConfig, results: Sequence[FetchResult], now: datetime
) -> None:
    """Remember the longest wait any 429 asked for; forget it once it has passed."""
    waits = [
        r.retry_after if r.retry_after is not None else DEFAULT_BACKOFF
        for r in results
        if isinstance(r, FetchError) and r.kind is ErrorKind.RATE_LIMITED
    ]
    until = now + timedelta(seconds=max(waits)) if waits else None
    set_backoff(session, source.name, until, "HTTP 429")
    if until is not None:
        log.warning(
            "source %s is rate limiting; its polls wait until %s", source.name, rfc3339(until)
        )


def _load_pending(text: str | None) -> dict[str, Pending]:
    loaded = {key: Pending.from_json(value) for key, value in json.loads(text or "{}").items()}
    return {key: entry for key, entry in loaded.items() if entry is not None}


def _mass_removal_notice(
    token: str, changes: Sequence[Change], before: int, settings: MonitorSettings
) -> str | None:
    removed = sum(1 for c in changes if c.type is ChangeType.REMOVED)
    if not before or removed <= settings.mass_change_share * before:
        return None
    checks = max(settings.confirm_checks, 2)
    return (
        f"{token} lost {removed} of its {before} models ({removed / before:.0%}) at once, "
        f"confirmed by {checks} consecutive checks"
    )


def _is_mass_drop(before: int, after: int, share: float) -> bool:
    return after == 0 or (before - after) > before * share


def _health_of(state: TokenState) -> Health:
    last_error = None
    if state.last_error:
        data = json.loads(state.last_error)
        last_error = FetchError(ErrorKind(data["kind"]), data["message"], data.get("status"))
    return Health(
        consecutive_failures=state.consecutive_failures or 0,
        failing=bool(state.failing),
        failing_since=rfc3339(state.failing_since) if state.failing_since else None,
        last_error=last_error,
    )


def _store_health(state: TokenState, health: Health) -> None:
    _assign(
        state,
        consecutive_failures=health.consecutive_failures,
        failing=health.failing,
        failing_since=(
            datetime.fromisoformat(health.failing_since.replace("Z", "+00:00"))
            if health.failing_since
            else None
        ),
        last_error=json.dumps(health.last_error.to_json()) if health.last_error else None,
    )


def _assign(state: TokenState, **values: object) -> None:
    """Set the attributes whose value changes (an unchanged one is not set at all)."""
    current = state.__dict__
    for name, value in values.items():
        if name not in current or current[name] != value:
            setattr(state, name, value)


def _log_check(report: CheckReport) -> None:
    fields: dict[str, object] = {
        "source": report.source,
        "token": report.token,
        "outcome": report.outcome,
        "duration_ms": round(report.duration * 1000),
    }
    if report.error is None:
        fields.update(
            models=report.model_count or 0, changes=len(report.changes), baseline=report.baseline
        )
        log.info(
            "check source=%s token=%s outcome=ok models=%d changes=%d%s duration_ms=%d",
            report.source,
            report.token,
            report.model_count or 0,
            len(report.changes),
            " baseline=yes" if report.baseline else "",
            round(report.duration * 1000),
            extra={"fields": fields},
        )
    else:
        fields.update(status=report.error.status, error=report.error.message)
        log.warning(
            "check source=%s token=%s outcome=%s status=%s duration_ms=%d: %s",
            report.source,
            report.token,
            report.outcome,
            report.error.status,
            round(report.duration * 1000),
            report.error.message,
            extra={"fields": fields},
        )
