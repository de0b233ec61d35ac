"""The budget warnings' rules, with an injected clock: once per crossing, again after a
renewal or a top-up, silent on the first read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.budget import Budget, BudgetPolicy, QuotaWarning
from monitor.core.money import decimal_text, money
from monitor.events.budget import (
    Marks,
    duration_text,
    left_text,
    observe_budget,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = BudgetPolicy()
DAY = timedelta(days=1)


def expiring(at: datetime) -> Budget:
    return Budget(Decimal(100), Decimal(0), Decimal(100), expires_at=at)


def run(reads: list[tuple[datetime, Budget]], policy: BudgetPolicy = POLICY) -> list[str]:
    """Feed reads in order, from a baseline; returns what was warned, as 'kind threshold'."""
    marks: Marks | None = None
    said = []
    for now, budget in reads:
        marks, warnings = observe_budget(marks, budget, policy, now)
        said += [f"{w.kind} {w.threshold}" for w in warnings]
    return said


def test_each_expiry_threshold_warns_once_as_it_is_crossed() -> None:
    at = NOW + 10 * DAY
    reads = [(NOW + timedelta(hours=h), expiring(at)) for h in range(0, 10 * 24, 5)]
    assert run(reads) == ["expiring 7d", "expiring 1d"]


def test_a_renewal_rearms_and_a_new_approach_warns_again() -> None:
    first, renewed = NOW + 8 * DAY, NOW + 40 * DAY
    reads = [
        (NOW, expiring(first)),
        (NOW + 2 * DAY, expiring(first)),  # 6 days left: 7d
        (NOW + 3 * DAY, expiring(renewed)),  # renewed: quiet
        (NOW + 34 * DAY, expiring(renewed)),  # 6 days left again: 7d again
        (NOW + 35 * DAY, expiring(renewed)),
    ]
    assert run(reads) == ["expiring 7d", "expiring 7d"]


def test_the_first_read_is_a_baseline() -> None:
    reads = [(NOW, expiring(NOW + 3 * DAY)), (NOW + DAY, expiring(NOW + 3 * DAY))]
    assert run(reads) == []  # 7d was already past at the baseline; 1d not reached
    reads.append((NOW + 2 * DAY + timedelta(hours=1), expiring(NOW + 3 * DAY)))
    assert run(reads) == ["expiring 1d"]


def test_tokens_without_expiry_or_unlimited_never_warn() -> None:
    never = Budget(Decimal(100), Decimal(100), Decimal(0), unlimited=True)
    reads = [(NOW + i * DAY, never) for i in range(5)]
    assert run(reads) == []


def test_quota_low_once_reset_by_a_top_up() -> None:
    def left(amount: int, granted: int = 100) -> Budget:
        return Budget(Decimal(granted), Decimal(granted - amount), Decimal(amount))

    reads = [(NOW, left(50)), (NOW, left(11)), (NOW, left(9)), (NOW, left(5)), (NOW, left(0))]
    assert run(reads) == ["quota_low 10%"]
    reads += [(NOW, left(80, 200)), (NOW, left(19, 200))]  # topped up, then low again
    assert run(reads) == ["quota_low 10%", "quota_low 10%"]


def test_an_absolute_quota_threshold_in_dollars() -> None:
    policy = BudgetPolicy(quota=QuotaWarning(percent=None, amount=Decimal("2.5")))
    reads = [
        (NOW, Budget(None, None, Decimal(3))),
        (NOW, Budget(None, None, Decimal("2.49"))),
    ]
    assert run(reads, policy) == ["quota_low 2.5"]


def test_a_percent_threshold_needs_the_granted_quota() -> None:
    reads = [(NOW, Budget(None, None, Decimal(5))), (NOW, Budget(None, None, Decimal(0)))]
    assert run(reads) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=30 * 24), min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=20 * 24), min_size=1, max_size=3),
)
def test_never_more_warnings_than_thresholds_per_expiry(hours: list[int], marks: list[int]) -> None:
    policy = BudgetPolicy(expiry=tuple(h * 3600.0 for h in marks))
    at = NOW + 31 * DAY
    reads = [(NOW + timedelta(hours=h), expiring(at)) for h in sorted(hours)]
    said = run([(NOW - DAY * 60, expiring(at)), *reads], policy)
    assert len(said) == len(set(said)) <= len(set(marks))


@pytest.mark.parametrize(
    ("seconds", "text"), [(7 * 86400, "7d"), (36 * 3600, "36h"), (5400, "90m"), (45, "45s")]
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_words_for_people() -> None:
    assert left_text(NOW + 6 * DAY + timedelta(hours=3), NOW) == "in 6 days"
    assert left_text(NOW + 5 * DAY - timedelta(seconds=2), NOW) == "in 5 days"
    assert left_text(NOW + 36 * timedelta(hours=1), NOW) == "in 36 hours"
    assert left_text(NOW - timedelta(hours=1), NOW) == "60 minutes ago"
    assert decimal_text(Decimal("12.50")) == "12.5" and decimal_text(Decimal("1E+3")) == "1000"
    assert money(Decimal("4.2")) == "$4.20" and money(Decimal("0.0375")) == "$0.0375"
    assert Budget(Decimal(1), unlimited=True).to_json() == {"unit": "USD", "unlimited": True}


def test_a_token_found_expired_is_left_to_token_failing() -> None:
    at = NOW + 10 * DAY
    reads = [(NOW, expiring(at)), (at + timedelta(hours=1), expiring(at))]
    assert run(reads) == []
