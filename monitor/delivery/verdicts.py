"""What an attempt's result means for its delivery: sent, retried (when), or dead.

Pure: the dispatcher hands in the result, the attempt number, the retry schedule and the
channel's window, and writes what comes back. Kept apart so the retry rules are tested
without a database or a socket.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config.timing import DeliveryWindow
from monitor.core.records import DeliveryState
from monitor.delivery.base import SendResult


@dataclass(frozen=True, slots=True)
class Verdict:
    state: DeliveryState  # SENT, PENDING (to retry) or DEAD
    due: datetime | None = None  # when a retry is due
    delay: float = 0.0  # seconds until then, before the channel's window moved it

    @property
    def word(self) -> str:
        """ "sent", "retried" or "dead": the metrics label and the log's result field."""
        if self.state is DeliveryState.SENT:
            return "sent"
        return "dead" if self.state is DeliveryState.DEAD else "retried"


def judge(
    result: SendResult,
    attempts: int,
    schedule: tuple[float, ...],
    now: datetime,
    rng: random.Random,
    window: DeliveryWindow | None = None,
) -> Verdict:
    """The verdict on the `attempts`-th attempt. A retry waits for the schedule's step (with
    jitter, never less than the receiver asked), then for the channel's window to open; a
    permanent failure, or one past the end of the schedule, is dead."""
    if result.ok:
        return Verdict(DeliveryState.SENT)
    if result.permanent or attempts > len(schedule):
        return Verdict(DeliveryState.DEAD)
    delay = backoff(schedule, attempts, result.retry_after, rng)
    due = now + timedelta(seconds=delay)
    if window is not None:
        due = window.release(due)
    return Verdict(DeliveryState.PENDING, due, delay)


def backoff(
    schedule: tuple[float, ...], attempts: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after the n-th failed attempt: the schedule with +-10% jitter,
    never sooner than the receiver asked for."""
    base = schedule[min(attempts, len(schedule)) - 1]
    delay = base * rng.uniform(0.9, 1.1)
    return max(delay, retry_after or 0.0)
