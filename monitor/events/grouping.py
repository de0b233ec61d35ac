"""The events of one source cycle, and the view of an event one channel gets.

docs/detection.md: the same change seen by several tokens of a source in one cycle is one
change listing those tokens, and a cycle yields at most one `models.changed` event. A
gateway that drops a model drops it for every token; ten tokens must not mean ten alerts.

Event order within a cycle is fixed: `token.failing` (grouped by error kind and status),
then `token.recovered`, then `models.changed`. Health comes first because it frames the
rest: a receiver reading in order learns which tokens broke or came back before it reads
what the working tokens saw. Ids are drawn from `new_id` in that same order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import translate

from monitor.core.diff import sort_changes
from monitor.core.records import Change, ChangeType, Event, EventType, FetchError, SourceRef
from monitor.events.health import Transition


@dataclass(frozen=True)
class CheckOutcome:
    """What one token's check contributed to a cycle.

    `changes` come from `guard.observe` with empty `tokens`; `error` is the failed
    check's error (required when `transition` is FAILING).
    """

    token: str
    changes: tuple[Change, ...] = ()
    transition: Transition | None = None
    error: FetchError | None = None
    notice: str | None = None  # said plainly in the event, e.g. a mass removal


def build_events(
    source: SourceRef,
    outcomes: Sequence[CheckOutcome],
    occurred_at: str,
    new_id: Callable[[], str],
) -> list[Event]:
    """Turn the outcomes of one cycle of one source into events, in a fixed order."""
    events: list[Event] = []

    failing: dict[tuple[str, int], list[CheckOutcome]] = {}
    recovered: list[str] = []
    for outcome in outcomes:
        if outcome.transition is Transition.FAILING:
            if outcome.error is None:
                raise ValueError(f"token {outcome.token!r} is failing without an error")
            group = (str(outcome.error.kind), _status_order(outcome.error.status))
            failing.setdefault(group, []).append(outcome)
        elif outcome.transition is Transition.RECOVERED:
            recovered.append(outcome.token)

    for group in sorted(failing):
        members = sorted(failing[group], key=lambda outcome: outcome.token)
        tokens = _unique_sorted(outcome.token for outcome in members)
        error = members[0].error
        events.append(
            Event(
                id=new_id(),
                type=EventType.TOKEN_FAILING,
                occurred_at=occurred_at,
                source=source,
                tokens=tokens,
                summary=failing_summary(tokens, error, source.name),
                error=error,
            )
        )

    if recovered:
        tokens = _unique_sorted(recovered)
        events.append(
            Event(
                id=new_id(),
                type=EventType.TOKEN_RECOVERED,
                occurred_at=occurred_at,
                source=source,
                tokens=tokens,
                summary=recovered_summary(tokens, source.name),
            )
        )

    changes = group_changes(outcomes)
    if changes:
        tokens = _unique_sorted(token for change in changes for token in change.tokens)
        notices = tuple((o.token, o.notice) for o in outcomes if o.notice and o.changes)
        events.append(
            Event(
                id=new_id(),
                type=EventType.MODELS_CHANGED,
                occurred_at=occurred_at,
                source=source,
                tokens=tokens,
                summary=_with_notices(summarize(changes, source.name), notices),
                changes=tuple(changes),
                notices=notices,
            )
        )
    return events


def group_changes(outcomes: Iterable[CheckOutcome]) -> list[Change]:
    """One change per `Change.key()`, listing the sorted tokens that saw it."""
    seen_by: dict[tuple[object, ...], tuple[Change, set[str]]] = {}
    for outcome in outcomes:
        for change in outcome.changes:
            entry = seen_by.setdefault(change.key(), (change, set()))
            entry[1].add(outcome.token)
    return sort_changes(
        replace(change, tokens=tuple(sorted(tokens))) for change, tokens in seen_by.values()
    )


def _status_order(status: int | None) -> int:
    return -1 if status is None else status


def _unique_sorted(tokens: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(tokens)))


# Summaries -----------------------------------------------------------------------------

_PARTS: tuple[tuple[ChangeType, str, str], ...] = (
    (ChangeType.ADDED, "added", "added"),
    (ChangeType.REMOVED, "removed", "removed"),
    # Each counts one model whose endpoint-types list changed, hence no singular form.
    (ChangeType.ENDPOINT_TYPES_CHANGED, "endpoint types changed", "endpoint types changed"),
    (ChangeType.FIELD_CHANGED, "field changed", "fields changed"),
    (ChangeType.PRICE_CHANGED, "price changed", "prices changed"),
    (ChangeType.GROUP_RATIO_CHANGED, "group ratio changed", "group ratios changed"),
    # Probes: "1 model unavailable", since a bare "1 unavailable" would not say what is.
    (ChangeType.UNAVAILABLE, "model unavailable", "models unavailable"),
    (ChangeType.AVAILABLE, "model available again", "models available again"),
)


# Counted by model, not by change: tokens in different groups get differently worded
# errors for one model, hence two `unavailable` changes, yet it is one model unavailable.
_BY_MODEL = frozenset({ChangeType.UNAVAILABLE, ChangeType.AVAILABLE})


def summarize(changes: Iterable[Change], source_name: str) -> str:
    """One line such as "2 added, 1 removed, 3 fields changed on aiberm"."""
    counts = dict.fromkeys(ChangeType, 0)
    models: set[tuple[ChangeType, str]] = set()
    for change in changes:
        if change.type in _BY_MODEL:
            if (change.type, change.model) in models:
                continue
            models.add((change.type, change.model))
        counts[change.type] += 1
    parts = [
        f"{counts[kind]} {one if counts[kind] == 1 else many}"
        for kind, one, many in _PARTS
        if counts[kind]
    ]
    if not parts:
        return f"no changes on {source_name}"
    return f"{', '.join(parts)} on {source_name}"


def describe_error(error: FetchError | None) -> str:
    """ "auth (HTTP 401): Invalid token", "timeout: read timed out", ..."""
    if error is None:
        return "unknown error"
    text = str(error.kind)
    if error.status is not None and not error.message.startswith(f"HTTP {error.status}"):
        text += f" (HTTP {error.status})"
    if error.message:
        text += f": {error.message}"
    if error.detail:
        text += f"; {error.detail}"
    return text


def _who(tokens: Sequence[str]) -> str:
    return tokens[0] if len(tokens) == 1 else f"{len(tokens)} tokens"


def failing_summary(tokens: Sequence[str], error: FetchError | None, source_name: str) -> str:
    return f"{_who(tokens)} failing on {source_name}: {describe_error(error)}"


def recovered_summary(tokens: Sequence[str], source_name: str) -> str:
    return f"{_who(tokens)} recovered on {source_name}"


# Per-channel view ----------------------------------------------------------------------


def filter_for_channel(
    payload_event: Event,
    tokens: Collection[str] | None,
    include_globs: Collection[str] = (),
    exclude_globs: Collection[str] = (),
    change_types: Collection[str] | None = None,
) -> Event | None:
    """The event as one channel should see it, or None if nothing is left for it.

    `tokens` are the tokens routed to the channel (None: all). For `models.changed`, a
    change stays if its model matches the include globs (empty: all) and no exclude glob
    (fnmatch, case-sensitive), and if at least one of its tokens is the channel's; its
    tokens are narrowed to those, and the summary is recomputed; with `change_types`, only
    changes of those types stay (a finance channel hears about prices, an engineering
    channel about models; a group ratio change has no model, so globs pass it). Token
    events are only
    narrowed by token (globs are about models). `test` events pass through untouched.
    Returns the same object when nothing was filtered out.
    """
    event = payload_event
    if event.type is EventType.TEST:
        return event
    allowed = None if tokens is None else frozenset(tokens)

    def narrow(names: Iterable[str]) -> tuple[str, ...]:
        return tuple(names) if allowed is None else tuple(t for t in names if t in allowed)

    if event.type is not EventType.MODELS_CHANGED:
        kept_tokens = narrow(event.tokens)
        if not kept_tokens:
            return None
        if kept_tokens == event.tokens:
            return event
        if event.type is EventType.TOKEN_FAILING:
            summary = failing_summary(kept_tokens, event.error, event.source.name)
        elif event.type is EventType.TOKEN_RECOVERED:
            summary = recovered_summary(kept_tokens, event.source.name)
        else:  # a budget event is about one token: kept whole or not at all
            summary = event.summary
        return replace(event, tokens=kept_tokens, summary=summary)

    include = _glob_matcher(include_globs)
    exclude = _glob_matcher(exclude_globs)
    kept: list[Change] = []
    for change in event.changes:
        if change_types is not None and str(change.type) not in change_types:
            continue
        if change.model and include is not None and not include(change.model):
            continue
        if change.model and exclude is not None and exclude(change.model):
            continue
        change_tokens = narrow(change.tokens)
        if allowed is not None and not change_tokens:
            continue
        kept.append(
            change if change_tokens == change.tokens else replace(change, tokens=change_tokens)
        )
    if not kept:
        return None

    seen = {token for change in kept for token in change.tokens}
    event_tokens = narrow(event.tokens)
    if seen:  # drop tokens whose every change was filtered out
        event_tokens = tuple(t for t in event_tokens if t in seen)
    notices = tuple((token, text) for token, text in event.notices if token in event_tokens)
    if (
        event_tokens == event.tokens
        and len(kept) == len(event.changes)
        and all(a is b for a, b in zip(kept, event.changes, strict=True))
    ):
        return event
    return replace(
        event,
        tokens=event_tokens,
        changes=tuple(kept),
        summary=_with_notices(summarize(kept, event.source.name), notices),
        notices=notices,
    )


def _with_notices(summary: str, notices: tuple[tuple[str, str], ...]) -> str:
    return "; ".join([summary, *(text for _, text in notices)])


def _glob_matcher(globs: Collection[str]) -> Callable[[str], bool] | None:
    """One compiled regex for all globs (fnmatch syntax, case-sensitive); None if empty."""
    if not globs:
        return None
    pattern = re.compile("|".join(translate(glob) for glob in globs))
    return lambda name: pattern.match(name) is not None
