"""Every statement about tokens' budgets: the reads (history and rate-limit count) and each
token's last budget with the warnings' marks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.core.budget import Budget
from monitor.core.money import decimal_text
from monitor.events.budget import Marks
from monitor.store.schema import BudgetCheck, TokenBudget


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """A token's budget as its last reads left it."""

    token: str
    source: str
    checked_at: datetime  # the last read, successful or not
    ok_at: datetime | None  # the last successful read
    last_error: str | None  # the last read's error, None when it succeeded
    budget: Budget | None  # from the last successful read
    marks: Marks | None  # None until the first successful read (the baseline)


def budget_records(
    session: Session, tokens: Iterable[str] | None = None
) -> dict[str, BudgetRecord]:
    query = select(TokenBudget).order_by(TokenBudget.source, TokenBudget.token)
    if tokens is not None:
        query = query.where(TokenBudget.token.in_(list(tokens)))
    return {row.token: _record(row) for row in session.scalars(query)}


def reads_since(session: Session, source: str, since: datetime) -> int:
    """How many budget reads of the source's tokens went out since `since`."""
    query = select(func.count(BudgetCheck.id)).where(
        BudgetCheck.source == source, BudgetCheck.checked_at >= since
    )
    return session.scalar(query) or 0


def budget_backoff(session: Session, source: str, now: datetime) -> datetime | None:
    """Until when the source's budget route asked to be left alone (a 429), if later than now."""
    query = select(func.max(BudgetCheck.retry_at)).where(
        BudgetCheck.source == source, BudgetCheck.retry_at > now
    )
    return session.scalar(query)


def record_budget_read(
    session: Session,
    *,
    source: str,
    token: str,
    now: datetime,
    outcome: str,
    status: int | None = None,
    budget: Budget | None = None,
    retry_at: datetime | None = None,
    error: str | None = None,
    marks: Marks | None = None,
) -> None:
    """One read: a history row, and the token's state (its budget and marks when it
    succeeded, only the error when not)."""
    session.add(
        BudgetCheck(
            source=source,
            token=token,
            checked_at=now,
            outcome=outcome,
            http_status=status,
            retry_at=retry_at,
            **_money(budget),
            unlimited=None if budget is None else budget.unlimited,
            expires_at=None if budget is None else budget.expires_at,
        )
    )
    row = session.get(TokenBudget, token)
    if row is None:
        row = TokenBudget(token=token, source=source, unlimited=False, quota_warned=False)
        session.add(row)
    row.source, row.checked_at = source, now
    if budget is None:
        row.last_error = error
        return
    row.ok_at, row.last_error = now, None
    for key, value in _money(budget).items():
        setattr(row, key, value)
    row.unlimited, row.expires_at = budget.unlimited, budget.expires_at
    if marks is not None:
        row.warned_expires_at = marks.expires_at
        row.expiry_warned = None if marks.expiry_warned is None else int(marks.expiry_warned)
        row.quota_warned = marks.quota_warned


def _money(budget: Budget | None) -> dict[str, str | None]:
    values = (
        (None, None, None) if budget is None else (budget.granted, budget.used, budget.remaining)
    )
    return {
        key: None if value is None else decimal_text(value)
        for key, value in zip(("granted", "used", "remaining"), values, strict=True)
    }


def _record(row: TokenBudget) -> BudgetRecord:
    budget = None
    marks = None
    if row.ok_at is not None:
        budget = Budget(
            granted=_decimal(row.granted),
            used=_decimal(row.used),
            remaining=_decimal(row.remaining),
            unlimited=row.unlimited,
            expires_at=row.expires_at,
        )
        marks = Marks(
            expires_at=row.warned_expires_at,
            expiry_warned=None if row.expiry_warned is None else float(row.expiry_warned),
            quota_warned=row.quota_warned,
        )
    return BudgetRecord(
        row.token, row.source, row.checked_at, row.ok_at, row.last_error, budget, marks
    )


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
