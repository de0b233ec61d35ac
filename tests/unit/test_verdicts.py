"""The retry rules of delivery, without a database or a socket: what each result of an
attempt means for its delivery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config.timing import DeliveryWindow
from monitor.core.records import DeliveryState
from monitor.delivery.base import SendResult
from monitor.delivery.verdicts import backoff, judge

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SCHEDULE = (5.0, 300.0, 1800.0)


def test_backoff_follows_the_schedule_with_jitter_and_retry_after() -> None:
    rng = random.Random(0)
    assert 4.5 <= backoff(SCHEDULE, 1, None, rng) <= 5.5
    assert 270 <= backoff(SCHEDULE, 2, None, rng) <= 330
    assert 1620 <= backoff(SCHEDULE, 9, None, rng) <= 1980  # past the end: the last step
    assert backoff(SCHEDULE, 1, 60.0, rng) == 60.0


def test_a_success_is_sent() -> None:
    verdict = judge(SendResult.success(200), 1, SCHEDULE, NOW, random.Random(0))
    assert (verdict.state, verdict.due, verdict.word) == (DeliveryState.SENT, None, "sent")


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_transient_failure_is_retried_within_the_schedule(attempts: int) -> None:
    result = SendResult(ok=False, status=503, error="HTTP 503")
    verdict = judge(result, attempts, SCHEDULE, NOW, random.Random(1))
    assert verdict.state is DeliveryState.PENDING and verdict.word == "retried"
    step = SCHEDULE[attempts - 1]
    assert verdict.due is not None
    assert 0.9 * step <= (verdict.due - NOW).total_seconds() <= 1.1 * step
    assert verdict.delay == pytest.approx((verdict.due - NOW).total_seconds())


def test_past_the_schedule_or_permanent_is_dead() -> None:
    transient = SendResult(ok=False, status=503, error="HTTP 503")
    assert judge(transient, 4, SCHEDULE, NOW, random.Random(0)).state is DeliveryState.DEAD
    permanent = SendResult(ok=False, status=404, error="HTTP 404", permanent=True)
    verdict = judge(permanent, 1, SCHEDULE, NOW, random.Random(0))
    assert (verdict.state, verdict.word) == (DeliveryState.DEAD, "dead")


def test_a_retry_waits_for_the_receiver_and_then_for_quiet_hours_to_end() -> None:
    result = SendResult(ok=False, status=429, error="HTTP 429", retry_after=3600.0)
    verdict = judge(result, 1, SCHEDULE, NOW, random.Random(0))
    assert verdict.due == NOW + timedelta(hours=1)
    quiet = DeliveryWindow.parse(None, "12:30-18:00", "UTC")
    verdict = judge(result, 1, SCHEDULE, NOW, random.Random(0), quiet)
    assert verdict.due == datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert verdict.delay == 3600.0  # what the log says: the retry's own wait


@pytest.mark.parametrize(
    "extra", [{"permanent": True}, {"disable": True}, {"error": "x"}, {"retry_after": 5.0}]
)
def test_a_success_cannot_also_be_a_failure(extra: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="successful send"):
        SendResult(ok=True, **extra)  # type: ignore[arg-type]
