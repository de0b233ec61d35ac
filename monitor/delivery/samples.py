"""Typical events, for `notify-test`, for checking user templates, and for the rendered
examples under docs/. Built through the real grouping code, so they are what users get."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from monitor.core.budget import Budget
from monitor.core.records import (
    CallError,
    Change,
    ChangeType,
    ErrorKind,
    Event,
    EventType,
    FetchError,
    ModelRecord,
    SourceRef,
)
from monitor.events.grouping import CheckOutcome, build_events
from monitor.events.health import Transition

SOURCE = SourceRef("aiberm", "https://aiberm.com/v1")
OCCURRED_AT = "2026-11-26T10:00:00Z"


def _ids(prefix: str) -> Any:
    counter = iter(range(1, 1_000_000))
    return lambda: f"{prefix}{next(counter):04d}"


def models_changed(n_added: int = 2, n_removed: int = 1, *, model_id: str | None = None) -> Event:
    """A models.changed event: additions, removals, an endpoint type and an owner change.

    `model_id` replaces the first added model's id (hostile-input tests use it).
    """

    def record(model: str, types: list[str]) -> ModelRecord:
        return ModelRecord.build(model, types, {"owned_by": "openai"})

    added_ids = ["gpt-5", *(f"gpt-5-mini-{i:04d}" for i in range(1, n_added))][:n_added]
    if model_id is not None and added_ids:
        added_ids[0] = model_id
    removed_ids = ["gpt-3.5-turbo", *(f"gpt-3.5-turbo-{i:04d}" for i in range(1, n_removed))]
    added = [
        Change(ChangeType.ADDED, m, record(m, ["openai", "openai-response"])) for m in added_ids
    ]
    removed = [
        Change(ChangeType.REMOVED, m, record(m, ["openai"])) for m in removed_ids[:n_removed]
    ]
    others = [
        Change(ChangeType.ENDPOINT_TYPES_CHANGED, "gpt-4o", gained=("openai-response",)),
        Change(
            ChangeType.FIELD_CHANGED,
            "claude-sonnet-4-5",
            field="owned_by",
            before="claude",
            after="aws-bedrock",
        ),
    ]
    outcomes = [
        CheckOutcome("team-a", tuple(added + removed + others)),
        CheckOutcome("team-b", tuple(added)),
    ]
    (event,) = build_events(SOURCE, outcomes, OCCURRED_AT, _ids("evt_sample_changed_"))
    return event


def token_failing() -> Event:
    error = FetchError(ErrorKind.AUTH, "Invalid token (request id: 20261126100000123)", 401)
    (event,) = build_events(
        SOURCE,
        [CheckOutcome("team-b", (), Transition.FAILING, error)],
        OCCURRED_AT,
        _ids("evt_sample_failing_"),
    )
    return event


def token_recovered() -> Event:
    (event,) = build_events(
        SOURCE,
        [CheckOutcome("team-b", (), Transition.RECOVERED)],
        OCCURRED_AT,
        _ids("evt_sample_recovered_"),
    )
    return event


def prices_changed() -> Event:
    """A new-api price list moved: one model's price for two groups, and a group ratio."""
    ratio = Change(ChangeType.GROUP_RATIO_CHANGED, "", before="1.5", after="2", group="vip")
    price = {
        None: ((("input", "2.5"), ("output", "10")), (("input", "5"), ("output", "20"))),
        "vip": ((("input", "3.75"), ("output", "15")), (("input", "10"), ("output", "40"))),
    }

    def moved(group: str | None) -> Change:
        before, after = price[group]
        return Change(ChangeType.PRICE_CHANGED, "gpt-4o", before=before, after=after, group=group)

    outcomes = [
        CheckOutcome("team-a", (moved(None),)),
        CheckOutcome("team-b", (moved("vip"), ratio)),
    ]
    (event,) = build_events(SOURCE, outcomes, OCCURRED_AT, _ids("evt_sample_prices_"))
    return event


def calls_changed() -> Event:
    """Probes' news: a listed model whose calls fail for two tokens (the error new-api
    gives when no channel serves the model), and one that answers again."""
    error = CallError(
        503,
        "model_not_found",
        "No available channel for model gpt-4o under group default (distributor)",
    )
    unavailable = Change(ChangeType.UNAVAILABLE, "gpt-4o", error=error)
    available = Change(ChangeType.AVAILABLE, "claude-sonnet-4-5")
    outcomes = [
        CheckOutcome("team-a", (unavailable, available)),
        CheckOutcome("team-b", (unavailable,)),
    ]
    (event,) = build_events(SOURCE, outcomes, OCCURRED_AT, _ids("evt_sample_calls_"))
    return event


def token_expiring() -> Event:
    budget = Budget(
        Decimal(50),
        Decimal("12.5"),
        Decimal("37.5"),
        expires_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
    )
    return Event(
        id="evt_sample_expiring_0001",
        type=EventType.TOKEN_EXPIRING,
        occurred_at=OCCURRED_AT,
        source=SOURCE,
        tokens=("team-a",),
        summary="team-a expires in 6 days (2026-12-02T10:00:00Z) on aiberm",
        budget=budget,
        threshold="7d",
    )


def token_quota_low() -> Event:
    return Event(
        id="evt_sample_quota_low_0001",
        type=EventType.TOKEN_QUOTA_LOW,
        occurred_at=OCCURRED_AT,
        source=SOURCE,
        tokens=("team-b",),
        summary="team-b has $4.20 of $50.00 left (8%) on aiberm",
        budget=Budget(Decimal(50), Decimal("45.8"), Decimal("4.2")),
        threshold="10%",
    )


def sample_test(channel: str = "ops") -> Event:
    return Event(
        id="evt_sample_test",
        type=EventType.TEST,
        occurred_at=OCCURRED_AT,
        source=SourceRef("model-monitor", "https://example.invalid/v1"),
        tokens=(),
        summary=f"test message for channel {channel}",
    )


def digest(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    from monitor.delivery.batching import digest_payload  # as real digests are built

    return {
        **digest_payload(payloads, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
        "id": "evt_sample_digest_0001",
    }


def all_payloads() -> list[dict[str, Any]]:
    """One payload of every event type, for template checks."""
    return [
        e.to_payload()
        for e in (
            models_changed(),
            prices_changed(),
            calls_changed(),
            token_failing(),
            token_recovered(),
            token_expiring(),
            token_quota_low(),
            sample_test(),
        )
    ]
