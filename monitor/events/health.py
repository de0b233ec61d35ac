"""Token health: when a failing token is worth an alert, and when its recovery is.

A check fails for many passing reasons (a 502 from a CDN, a timeout, a bare 429), and
an alert for each would be spam. So transient failures raise `token.failing` only after
`failure_threshold` consecutive failed checks, while credential failures (401, 403:
`ErrorKind.immediate`) raise it at once: waiting will not fix a revoked key.

`token.failing` is sent once per failing spell, whatever the errors do meanwhile (a
timeout turning into a 500 is the same outage), and `token.recovered` exactly once, on
the first success after it. People who were told "broken" are always told "fixed".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.core.records import EventType, FetchError, FetchOk, FetchResult


@dataclass(frozen=True)
class Health:
    """The health of one token after its latest check.

    `failing_since` is when the current streak of failed checks began (RFC 3339 UTC),
    not when the threshold was crossed: "broken since 10:00" is what an operator needs.
    It is set from the first failure of a streak, so it may be set while `failing` is
    still False; everything resets on a success.
    """

    consecutive_failures: int = 0
    failing: bool = False
    failing_since: str | None = None
    last_error: FetchError | None = None


class Transition(StrEnum):
    """A health change worth an event; the values are the event types."""

    FAILING = "token.failing"
    RECOVERED = "token.recovered"

    @property
    def event_type(self) -> EventType:
        return EventType(self.value)


_HEALTHY = Health()


def next_health(
    health: Health, result: FetchResult, now: str, failure_threshold: int
) -> tuple[Health, Transition | None]:
    """Fold one check result into the health; return the new health and any transition.

    `now` is the check time (RFC 3339 UTC), passed in so this stays free of clocks.
    """
    if failure_threshold < 1:
        raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
    if isinstance(result, FetchOk):
        return _HEALTHY, (Transition.RECOVERED if health.failing else None)

    failures = health.consecutive_failures + 1
    since = health.failing_since if health.failing_since is not None else now
    if health.failing:
        # Still the same spell: no repeat, whatever the error now is.
        return Health(failures, True, since, result), None
    if result.kind.immediate or failures >= failure_threshold:
        return Health(failures, True, since, result), Transition.FAILING
    return Health(failures, False, since, result), None
