"""Probes as pure logic: which listed models to call, and what the answers add up to.

A probe is one real call to a listed model (`monitor.sources.probes` sends it). This
module decides, without I/O, which (token, model) pairs are due within the budgets, and
folds each answer into what is known of the pair, behind the same flap guard as the
models list: a verdict is reported only once it held for `confirm_checks` probes in a row
(`transient_checks` for failures that are often passing: a 5xx, a timeout).

What is known of a pair (`ProbeMemory`): the verdict people were told ("ok" is silent:
a model that works is what listed means), a verdict waiting for confirmation, and when
the pair was last probed and its model last appeared or changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from monitor.core.records import CallError, Change, ChangeType


class Outcome(StrEnum):
    """What one probe's answer means. Only OK, UNAVAILABLE and TRANSIENT are about the
    model; the rest say nothing of it and leave its verdict alone."""

    OK = "ok"  # any 2xx: callable
    UNAVAILABLE = "unavailable"  # no channel, no price, no access: the gateway's own verdict
    TRANSIENT = "transient"  # a 5xx from upstream, a timeout, a reset: may pass
    RATE_LIMITED = "rate_limited"  # 429: try later (the source's probes stop this cycle)
    TOKEN_QUOTA = "token_quota"  # noqa: S105 - the token's quota, not the model
    AUTH = "auth"  # 401: the token itself (the models list reports it)
    INCONCLUSIVE = "inconclusive"  # any other answer (a 400 on the request's shape, a 404)

    @property
    def stops_token(self) -> bool:
        """Whether the token's other probes this cycle would only get the same answer."""
        return self in (Outcome.RATE_LIMITED, Outcome.TOKEN_QUOTA, Outcome.AUTH)


class Verdict(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's answer, classified. `error` is set for every answer but a 2xx."""

    outcome: Outcome
    error: CallError | None = None
    kind: str = ""  # the request sent: "chat", "embeddings" or "messages"
    retry_after: float | None = None
    duration: float = 0.0
    status: int | None = None  # the HTTP status, None when nothing answered


@dataclass(frozen=True, slots=True)
class ProbeMemory:
    """What is known of one model for one token (stored in `probe_state`)."""

    # When the model last appeared or changed in the token's list; None: it was listed
    # before anything was known of it (such a model waits for the sweep).
    seen_at: datetime | None = None
    probed_at: datetime | None = None
    verdict: Verdict | None = None  # what people were told; None: nothing yet
    pending: Verdict | None = None  # a different verdict, not yet confirmed
    pending_count: int = 0
    error: CallError | None = None  # the failure behind an unavailable verdict or pending

    def changed(self, now: datetime) -> ProbeMemory:
        """The memory after the model appeared or changed at `now`: probed after the delay,
        like a new one; what people were told stays."""
        return replace(self, seen_at=now)

    @property
    def fresh(self) -> bool:
        """Appeared or changed since its last probe."""
        return self.seen_at is not None and (
            self.probed_at is None or self.probed_at < self.seen_at
        )

    @property
    def awaiting(self) -> bool:
        """Due sooner than the sweep: fresh, waiting for confirmation, or unavailable.
        Stored, so the few such pairs are found without reading every pair."""
        return self.fresh or self.pending is not None or self.verdict is Verdict.UNAVAILABLE


# Before every moment: a pair never probed goes first in the sweep.
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ProbePolicy:
    """A source's probe settings, as durations (`[[sources]] probe_*`, docs/probes.md)."""

    interval: timedelta  # every listed model, this often
    delay: timedelta  # after a model appears or changes
    recheck: timedelta  # an unavailable model, to tell when it answers again
    confirm_checks: int = 2  # the flap guard, as for the models list
    transient_checks: int = 3  # failures that may pass need a longer streak

    def due(self, memory: ProbeMemory, now: datetime) -> tuple[int, datetime] | None:
        """(priority, waiting since) when the pair is due for a probe, lower first; None
        when it is not."""
        if memory.pending is not None and memory.probed_at is not None:
            return 0, memory.probed_at  # a verdict waiting to be confirmed or dropped
        if memory.fresh and memory.seen_at is not None:
            ready = memory.seen_at + self.delay
            return (1, memory.seen_at) if now >= ready else None
        if memory.probed_at is None:
            return 3, NEVER
        if memory.verdict is Verdict.UNAVAILABLE and now >= memory.probed_at + self.recheck:
            return 2, memory.probed_at
        if now >= memory.probed_at + self.interval:
            return 3, memory.probed_at
        return None

    def fold(
        self, memory: ProbeMemory, model: str, result: ProbeResult, now: datetime
    ) -> tuple[ProbeMemory, Change | None]:
        """The memory after one probe's answer, and the change to report, if any."""
        outcome = result.outcome
        if outcome in (Outcome.RATE_LIMITED, Outcome.TOKEN_QUOTA, Outcome.AUTH):
            return memory, None  # nothing learned about the model: it stays due
        probed = replace(memory, probed_at=now)
        if outcome is Outcome.INCONCLUSIVE:
            return probed, None
        if outcome is Outcome.OK:
            if memory.verdict is not Verdict.UNAVAILABLE:
                return _settled(probed, Verdict.OK, None), None
            count = _streak(memory, Verdict.OK)
            if count < self.confirm_checks:
                return replace(probed, pending=Verdict.OK, pending_count=count), None
            return _settled(probed, Verdict.OK, None), Change(ChangeType.AVAILABLE, model)
        # UNAVAILABLE or TRANSIENT: the model does not answer.
        if memory.verdict is Verdict.UNAVAILABLE:
            return _settled(probed, Verdict.UNAVAILABLE, memory.error), None
        count = _streak(memory, Verdict.UNAVAILABLE)
        needed = self.confirm_checks
        if outcome is Outcome.TRANSIENT:
            needed = max(needed, self.transient_checks)
        if count < needed:
            pending = replace(
                probed, pending=Verdict.UNAVAILABLE, pending_count=count, error=result.error
            )
            return pending, None
        change = Change(ChangeType.UNAVAILABLE, model, error=result.error)
        return _settled(probed, Verdict.UNAVAILABLE, result.error), change


def _streak(memory: ProbeMemory, verdict: Verdict) -> int:
    return memory.pending_count + 1 if memory.pending is verdict else 1


def _settled(memory: ProbeMemory, verdict: Verdict, error: CallError | None) -> ProbeMemory:
    return replace(memory, verdict=verdict, pending=None, pending_count=0, error=error)


@dataclass(frozen=True, slots=True)
class Candidate:
    token: str
    model: str
    memory: ProbeMemory


def plan(
    candidates: Iterable[Candidate],
    policy: ProbePolicy,
    now: datetime,
    *,
    left: Mapping[str, int],
    cap: int,
    share: int | None = None,
) -> list[Candidate]:
    """The probes to send now: the due pairs, most urgent first (a verdict to confirm, then
    new or changed models, then unavailable ones to recheck, then the sweep, each oldest
    first), at most `left[token]` per token (its budget for the last 24 hours), `share`
    per token (a token's probes go one after another) and `cap` in all."""
    due = []
    for candidate in candidates:
        when = policy.due(candidate.memory, now)
        if when is not None:
            due.append((when, candidate.token, candidate.model, candidate))
    due.sort(key=lambda entry: entry[:3])
    remaining = {token: min(n, cap if share is None else share) for token, n in left.items()}
    chosen: list[Candidate] = []
    for _, token, _, candidate in due:
        if len(chosen) >= cap:
            break
        if remaining.get(token, 0) > 0:
            remaining[token] -= 1
            chosen.append(candidate)
    return chosen
