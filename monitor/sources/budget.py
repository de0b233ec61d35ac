"""A token's budget: how much it may still spend and until when, as the gateway says.

new-api answers `GET /api/usage/token/` with the token itself, in quota units (500,000 to
the dollar), even for an expired or exhausted token, which is also how a 401 is explained
(new-api says "Invalid token" to every refusal). The route is rate limited (about 20
calls in 20 minutes per client address): the checker reads it on a schedule of its own
and counts its reads (monitor.runtime.budgets). one-api, and OpenAI-compatible gateways
generally, answer the billing routes instead: `/v1/dashboard/billing/subscription` (the
limit and the expiry) and `/v1/dashboard/billing/usage` (cents spent).

Every read has its own deadline; any failure is a `FetchError` for that token's budget,
never for its models, and no message carries the token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from monitor.config import MonitorSettings, SourceConfig, TokenConfig
from monitor.core.budget import QUOTA_PER_USD, Budget
from monitor.core.clock import utcnow
from monitor.core.records import FetchError
from monitor.sources.side_routes import get_json, guarded, site_root
from monitor.transport.deadline import Deadline

log = logging.getLogger("monitor.sources")

USAGE_PATH = "/api/usage/token/"
SUBSCRIPTION_PATH = "/dashboard/billing/subscription"
BILLING_USAGE_PATH = "/dashboard/billing/usage"
BUDGET_TIMEOUT = 10.0
# The billing routes' "no limit": new-api answers 100,000,000 dollars for unlimited tokens.
_UNLIMITED_USD = Decimal(100_000_000)

# Which route a flavor's gateway answers (`Flavor.budget_route`).
BudgetRoute = Literal["usage", "billing"]


def read_budget(
    route: BudgetRoute,
    source: SourceConfig,
    token: TokenConfig,
    settings: MonitorSettings,
    now: datetime | None = None,
) -> Budget | FetchError:
    """The token's budget, or why it could not be read.

    Within 10 s at most (less when the source's timeout is shorter): a stalling route must
    not hold up the cycle for long.
    """

    def read(deadline: Deadline) -> Budget:
        if route == "usage":
            body = get_json(site_root(source.base_url) + USAGE_PATH, source, token, deadline)
            return usage_budget(body)
        limits = get_json(source.base_url + SUBSCRIPTION_PATH, source, token, deadline)
        spent = get_json(source.base_url + BILLING_USAGE_PATH, source, token, deadline)
        return billing_budget(limits, spent)

    return guarded(
        min(source.timeout or settings.timeout, BUDGET_TIMEOUT),
        read,
        invalid=(ValueError, TypeError, KeyError, AttributeError),
        unreadable="the budget could not be read",
        silent="the budget route did not answer",
    )


def usage_budget(document: object) -> Budget:
    """new-api's `{"code": true, "data": {...}}` as a budget; raises ValueError if it is not one."""
    if not isinstance(document, Mapping) or document.get("code") is False:
        raise ValueError("the gateway did not return the token's usage")
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("no data object in the answer")
    unlimited = data.get("unlimited_quota") is True
    return Budget(
        granted=_quota(data, "total_granted"),
        used=_quota(data, "total_used"),
        remaining=_quota(data, "total_available"),
        unlimited=unlimited,
        expires_at=_moment(data.get("expires_at")),
    )


def billing_budget(limits: object, spent: object) -> Budget:
    """The billing routes' answers as a budget; raises ValueError if they are not."""
    if not isinstance(limits, Mapping) or not isinstance(spent, Mapping):
        raise ValueError("the billing answers are not objects")
    granted = _amount(limits.get("hard_limit_usd"), "hard_limit_usd")
    cents = _amount(spent.get("total_usage"), "total_usage")
    unlimited = granted >= _UNLIMITED_USD
    used = cents / 100
    return Budget(
        granted=None if unlimited else granted,
        used=used,
        remaining=None if unlimited else granted - used,
        unlimited=unlimited,
        expires_at=_moment(limits.get("access_until")),
    )


def _quota(data: Mapping[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    return None if value is None else _amount(value, key) / QUOTA_PER_USD


def _amount(value: object, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise ValueError(f"{key} is not a number")
    amount = Decimal(value) if isinstance(value, int | Decimal) else Decimal(repr(value))
    if not amount.is_finite():
        raise ValueError(f"{key} is not a finite number")
    return amount


def _moment(value: object) -> datetime | None:
    """Unix seconds; 0 and negative numbers (-1 in older versions) mean never."""
    if value is None:
        return None
    seconds = _amount(value, "expires_at")
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("expires_at is out of range") from None


def explain_auth_failure(
    source: SourceConfig,
    token: TokenConfig,
    settings: MonitorSettings,
    now: datetime | None = None,
) -> str | None:
    """A short, secret-free reason for a refused token, or None when the gateway won't say.

    Best effort: any failure of the lookup costs the explanation, never the alert.
    """
    now = now or utcnow()
    budget = read_budget("usage", source, token, settings, now)
    if isinstance(budget, FetchError):
        log.debug("usage lookup for token %s failed: %s", token.name, budget.kind)
        return None
    return describe_budget(budget, now)


def describe_budget(budget: Budget, now: datetime) -> str | None:
    """Why a token with this budget is refused: expired, or out of quota (None: neither)."""
    if budget.expires_at is not None and budget.expires_at <= now:
        return f"the token expired at {budget.expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    if not budget.unlimited and budget.remaining is not None and budget.remaining <= 0:
        return "the token has no quota left"
    return None
