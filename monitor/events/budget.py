"""When a token's budget is worth a warning: once per crossing, again after a renewal.

Pure: the checker hands in what was warned before (`Marks`), the budget just read and
the token's thresholds, and stores the marks that come back. A warning fires when a
threshold is crossed, not while the token stays past it, so a cron job that checks
every five minutes warns once. Renewing (a later expiry) or topping up (the remainder
back above the threshold) clears the marks, so the next approach warns again.

The first read of a token is its baseline: past thresholds are marked, not announced,
as a new token's models are recorded silently. A token found already expired is not
warned about either: its checks fail, and token.failing says why. A read that failed
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.core.budget import Budget, BudgetPolicy


@dataclass(frozen=True, slots=True)
class Marks:
    """What has been warned about, kept per token between reads."""

    expires_at: datetime | None = None  # the expiry the expiry marks are about
    expiry_warned: float | None = None  # the nearest threshold warned for it, in seconds
    quota_warned: bool = False


@dataclass(frozen=True, slots=True)
class BudgetWarning:
    kind: str  # "expiring" or "quota_low"
    threshold: str  # as the payload says it: "7d", "10%", "5" (dollars)
    budget: Budget


def observe_budget(
    marks: Marks | None, budget: Budget, policy: BudgetPolicy, now: datetime
) -> tuple[Marks, list[BudgetWarning]]:
    """The marks to keep and the warnings to send for one successful read.

    `marks` is None before the token's first read (the baseline: nothing is sent).
    """
    baseline = marks is None
    marks = marks or Marks()
    warnings: list[BudgetWarning] = []

    # Expiry: a renewal (a later expiry, or none) forgets what was warned.
    expiry_warned = marks.expiry_warned
    if budget.expires_at is None or (
        marks.expires_at is not None and budget.expires_at > marks.expires_at
    ):
        expiry_warned = None
    if budget.expires_at is not None:
        left = (budget.expires_at - now).total_seconds()
        crossed = [t for t in policy.expiry if left <= t]
        if crossed:
            nearest = min(crossed)
            if expiry_warned is None or nearest < expiry_warned:
                expiry_warned = nearest
                # Already expired: the refused check says so (token.failing, with why).
                if not baseline and left > 0:
                    warnings.append(BudgetWarning("expiring", duration_text(nearest), budget))
    marks = replace(marks, expires_at=budget.expires_at, expiry_warned=expiry_warned)

    # Quota: low below the threshold; a top-up above it re-arms the warning.
    threshold = None if budget.unlimited else policy.quota.threshold(budget)
    low = threshold is not None and budget.remaining is not None and budget.remaining < threshold
    if low and not marks.quota_warned and not baseline:
        warnings.append(BudgetWarning("quota_low", policy.quota.text(), budget))
    return replace(marks, quota_warned=low), warnings


def duration_text(seconds: float) -> str:
    """7 days -> "7d", 36 hours -> "36h", 90 minutes -> "90m": the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def left_text(expires_at: datetime, now: datetime) -> str:
    """How long until `expires_at`, for people: "in 6 days", "in 20 hours", "1 hour ago"."""
    left = expires_at - now
    if left <= timedelta(0):
        return f"{_span(-left)} ago"
    return f"in {_span(left)}"


def _span(span: timedelta) -> str:
    """Rounded to the nearest unit, in days from two days on, hours from two hours on."""
    seconds = span.total_seconds()
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size or (name == "minute" and seconds >= size):
            count = round(seconds / size)
            return f"{count} {name}{'' if count == 1 else 's'}"
    return "less than a minute"
