"""What a token may still spend and until when, as the gateway said it.

Money is exact (`Decimal`) and in US dollars: new-api counts in quota units, 500,000 to
the dollar; its billing routes speak dollars and cents. None means the gateway did not
say; `unlimited` tokens have no meaningful remainder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from monitor.core.clock import rfc3339
from monitor.core.money import decimal_text, money

QUOTA_PER_USD = Decimal(500_000)
UNIT = "USD"


@dataclass(frozen=True, slots=True)
class Budget:
    granted: Decimal | None = None
    used: Decimal | None = None
    remaining: Decimal | None = None
    unlimited: bool = False
    expires_at: datetime | None = None  # None: never

    def left_text(self) -> str | None:
        """What is left, for people: "$4.20 of $50.00", "$4.20", "unlimited"; None when
        the gateway did not say."""
        if self.unlimited:
            return "unlimited"
        if self.remaining is None:
            return None
        left = money(self.remaining)
        return f"{left} of {money(self.granted)}" if self.granted is not None else left

    def to_json(self) -> dict[str, Any]:
        """The payload's `budget` object (keys the gateway did not give are left out)."""
        out: dict[str, Any] = {"unit": UNIT, "unlimited": self.unlimited}
        if self.expires_at is not None:
            out["expires_at"] = rfc3339(self.expires_at)
        for key in ("granted", "used", "remaining"):
            value = getattr(self, key)
            if value is not None and not self.unlimited:
                out[key] = decimal_text(value)
        return out


@dataclass(frozen=True, slots=True)
class QuotaWarning:
    """Warn below `percent` of the granted quota, or below `amount` dollars."""

    percent: Decimal | None = Decimal(10)
    amount: Decimal | None = None

    def threshold(self, budget: Budget) -> Decimal | None:
        """The remainder that warns, in dollars; None when it cannot be known."""
        if self.amount is not None:
            return self.amount
        if self.percent is None or budget.granted is None or budget.granted <= 0:
            return None
        return budget.granted * self.percent / 100

    def text(self) -> str:
        if self.amount is not None:
            return format(self.amount.normalize(), "f")
        return f"{format((self.percent or Decimal(0)).normalize(), 'f')}%"


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    expiry: tuple[float, ...] = (7 * 86400.0, 86400.0)  # seconds before expiry, any order
    quota: QuotaWarning = field(default_factory=QuotaWarning)
