"""The status page (`/`): every source and token, and the outbox, as frozen values.

Built from small read queries; every upstream string stays a plain `str` for the
templates to escape (see monitor/web/__init__.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.core.clock import rfc3339
from monitor.core.records import DeliveryState, ErrorKind, FetchError
from monitor.events.grouping import describe_error
from monitor.events.silences import Silence
from monitor.store import queries
from monitor.store.budgets import BudgetRecord, budget_records
from monitor.store.prices import price_states
from monitor.store.silences import silences as active_silences

OPEN_DELIVERIES_SHOWN = 50  # per state on the status page

# -- the status page ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One token's line on the status page, made from its `StatusRecord`."""

    name: str
    fingerprint: str | None
    flavor: str | None
    last_check: datetime | None
    outcome: str | None  # "ok", an error kind, "skipped", or None before the first check
    last_ok: datetime | None
    failing: bool
    failing_since: datetime | None
    model_count: int | None
    error: str | None  # the last error, said as `status` says it
    budget: str | None = None  # "$4.20 of $50.00 left, expires 2026-12-12" (None: not read)

    @property
    def health(self) -> str:
        """One word for the badge: failing, error (not failing yet), ok, or unchecked."""
        if self.failing:
            return "failing"
        if self.outcome is None:
            return "unchecked"
        return "ok" if self.outcome in ("ok", "skipped") else "error"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    base_url: str | None  # from the config; None when the pages run without one
    flavor: str | None
    tokens: tuple[StatusRow, ...]
    prices: str | None = None  # "available" or why not; None: never read (docs/prices.md)

    @property
    def failing(self) -> int:
        return sum(1 for t in self.tokens if t.failing)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    channel: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    event_type: str
    summary: str


@dataclass(frozen=True, slots=True)
class DisabledChannel:
    channel: str
    since: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class StatusView:
    generated_at: datetime
    sources: tuple[SourceStatus, ...]
    pending: int
    held: int
    dead: int
    sent: int
    open_deliveries: tuple[DeliveryRow, ...]  # pending, held and dead, newest first
    disabled: tuple[DisabledChannel, ...]
    silences: tuple[Silence, ...] = ()  # active now


def build_status(session: Session, config: Config | None, now: datetime) -> StatusView:
    """Every source and token (configured or seen in the database) and the outbox."""
    statuses = queries.status_records(session)
    budgets = budget_records(session)
    prices = price_states(session)
    by_source: dict[str, list[StatusRow]] = {}
    for s in statuses:
        by_source.setdefault(s.source, []).append(
            StatusRow(
                name=s.token,
                fingerprint=s.fingerprint,
                flavor=s.flavor,
                last_check=s.last_check_at,
                outcome=s.last_outcome,
                last_ok=s.last_ok_at,
                failing=s.failing,
                failing_since=s.failing_since,
                model_count=s.model_count,
                error=None
                if s.last_outcome in (None, "ok", "skipped")
                else error_text(s.last_error),
                budget=budget_text(budgets.get(s.token)),
            )
        )
    sources: list[SourceStatus] = []
    configured = {s.name: s for s in config.sources} if config else {}
    for name in ordered(configured, by_source):
        rows = by_source.get(name, [])
        if config is not None and name in configured:
            seen = {r.name for r in rows}
            rows += [_unchecked(t.name) for t in config.tokens_of(name) if t.name not in seen]
        source = configured.get(name)
        flavors = {r.flavor for r in rows if r.flavor}
        flavor = source.flavor if source else (flavors.pop() if len(flavors) == 1 else None)
        sources.append(
            SourceStatus(
                name=name,
                base_url=source.base_url if source else None,
                flavor=flavor,
                tokens=tuple(sorted(rows, key=lambda r: r.name)),
                prices=prices[name].availability if name in prices else None,
            )
        )
    counts = queries.delivery_counts(session)
    open_rows: list[DeliveryRow] = []
    for state in (DeliveryState.DEAD, DeliveryState.PENDING, DeliveryState.HELD):
        for d, kind, summary in queries.deliveries(session, state, limit=OPEN_DELIVERIES_SHOWN):
            open_rows.append(
                DeliveryRow(
                    id=d.id,
                    channel=d.channel,
                    state=d.state,
                    attempts=d.attempts,
                    created_at=d.created_at,
                    next_attempt_at=d.next_attempt_at if d.state != DeliveryState.DEAD else None,
                    last_error=d.last_error,
                    event_type=kind,
                    summary=summary,
                )
            )
    disabled = tuple(
        DisabledChannel(c.channel, c.disabled_at, c.reason)
        for c in queries.disabled_channels(session)
    )
    return StatusView(
        generated_at=now,
        sources=tuple(sources),
        pending=counts.get(DeliveryState.PENDING, 0),
        held=counts.get(DeliveryState.HELD, 0),
        dead=counts.get(DeliveryState.DEAD, 0),
        sent=counts.get(DeliveryState.SENT, 0),
        open_deliveries=tuple(open_rows),
        disabled=disabled,
        silences=tuple(active_silences(session, active_at=now)),
    )


def ordered(first: Iterable[str], then: Iterable[str]) -> list[str]:
    """Config order first (how the operator thinks of them), then the rest by name."""
    names = list(dict.fromkeys(first))
    return names + sorted(set(then) - set(names))


def budget_text(record: BudgetRecord | None) -> str | None:
    """A token's budget in one line: what is left and until when (None: never read)."""
    if record is None or record.budget is None:
        return None if record is None else f"not read: {record.last_error or 'unknown'}"
    budget = record.budget
    left = budget.left_text()
    if left is None:
        left = "quota unknown"
    elif not budget.unlimited:
        left += " left"
    until = "no expiry" if budget.expires_at is None else f"expires {rfc3339(budget.expires_at)}"
    return f"{left}, {until}"


def _unchecked(token: str) -> StatusRow:
    return StatusRow(token, None, None, None, None, None, False, None, None, None)


def error_text(error: Mapping[str, Any] | None) -> str | None:
    if not error:
        return None
    stored_kind = error.get("kind")
    try:
        kind = ErrorKind(stored_kind if isinstance(stored_kind, str) else "")
    except ValueError:
        return str(error.get("message") or error.get("kind") or "unknown error")
    return describe_error(
        FetchError(
            kind=kind,
            message=str(error.get("message") or ""),
            status=error.get("status"),
            detail=error.get("detail"),
        )
    )


def error_kind(error: Mapping[str, Any] | None) -> str | None:
    """What an error is, without its message: "auth (HTTP 401)", "timeout". For titles
    and markers; the message (with request ids and the like) belongs in the details."""
    if not error:
        return None
    kind = str(error.get("kind") or "error")
    status = error.get("status")
    return f"{kind} (HTTP {status})" if isinstance(status, int) else kind


def source_names(session: Session, config: Config | None) -> tuple[str, ...]:
    """Sources worth offering: configured ones first, then any the database has seen."""
    seen = {s.source for s in queries.status_records(session)}
    return tuple(ordered((s.name for s in config.sources) if config else (), seen))
