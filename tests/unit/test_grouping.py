"""Events of one source cycle, and the per-channel view of an event."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.records import (
    Change,
    ChangeType,
    ErrorKind,
    Event,
    EventType,
    FetchError,
    ModelRecord,
    SourceRef,
)
from monitor.events.grouping import (
    CheckOutcome,
    build_events,
    filter_for_channel,
    group_changes,
    summarize,
)
from monitor.events.health import Transition

R = ModelRecord.build
SOURCE = SourceRef("aiberm", "https://aiberm.com/v1")
NOW = "2026-11-26T10:00:00Z"
AUTH = FetchError(ErrorKind.AUTH, "Invalid token", status=401)
SERVER = FetchError(ErrorKind.SERVER, "bad gateway", status=502)
TIMEOUT = FetchError(ErrorKind.TIMEOUT, "read timed out")

GPT5 = R("gpt-5", ["openai"])
OLD = R("gpt-3.5-turbo", ["openai"])
ADD_GPT5 = Change(ChangeType.ADDED, "gpt-5", record=GPT5)
ADD_CLAUDE = Change(ChangeType.ADDED, "claude-4", record=R("claude-4", ["anthropic"]))
REMOVE_OLD = Change(ChangeType.REMOVED, "gpt-3.5-turbo", record=OLD)
GAIN = Change(ChangeType.ENDPOINT_TYPES_CHANGED, "gpt-4o", gained=("openai-response",))
FIELD = Change(ChangeType.FIELD_CHANGED, "gpt-4o", field="context_window", before=1, after=2)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"evt_{next(counter)}"


def build(*outcomes: CheckOutcome) -> list[Event]:
    return build_events(SOURCE, outcomes, NOW, ids())


# build_events ---------------------------------------------------------------------------


def test_nothing_happened_means_no_events() -> None:
    assert build(CheckOutcome("team-a"), CheckOutcome("team-b")) == []


def test_same_change_seen_by_several_tokens_is_one_change() -> None:
    [event] = build(
        CheckOutcome("team-b", (ADD_GPT5, REMOVE_OLD)),
        CheckOutcome("team-a", (ADD_GPT5,)),
        CheckOutcome("team-c"),
    )
    assert event.type is EventType.MODELS_CHANGED
    assert event.tokens == ("team-a", "team-b")
    assert event.changes == (
        Change(ChangeType.REMOVED, "gpt-3.5-turbo", record=OLD, tokens=("team-b",)),
        Change(ChangeType.ADDED, "gpt-5", record=GPT5, tokens=("team-a", "team-b")),
    )
    assert event.summary == "1 added, 1 removed on aiberm"
    assert event.occurred_at == NOW
    assert event.source == SOURCE
    assert event.id == "evt_1"


def test_different_values_of_one_field_stay_apart() -> None:
    other = Change(ChangeType.FIELD_CHANGED, "gpt-4o", field="context_window", before=1, after=3)
    [event] = build(CheckOutcome("a", (FIELD,)), CheckOutcome("b", (other,)))
    assert [(c.after, c.tokens) for c in event.changes] == [(2, ("a",)), (3, ("b",))]
    # Deterministic whatever the order of outcomes.
    [again] = build(CheckOutcome("b", (other,)), CheckOutcome("a", (FIELD,)))
    assert again.changes == event.changes


def test_summary_wording() -> None:
    changes = [ADD_GPT5, ADD_CLAUDE, REMOVE_OLD, GAIN, FIELD, FIELD, FIELD]
    assert summarize(changes, "aiberm") == (
        "2 added, 1 removed, 1 endpoint types changed, 3 fields changed on aiberm"
    )
    assert summarize([ADD_GPT5], "aiberm") == "1 added on aiberm"
    assert summarize([FIELD], "x") == "1 field changed on x"
    assert summarize([], "x") == "no changes on x"


def test_failing_tokens_grouped_by_kind_and_status() -> None:
    other_auth = FetchError(ErrorKind.AUTH, "token expired", status=401)
    events = build(
        CheckOutcome("team-b", transition=Transition.FAILING, error=other_auth),
        CheckOutcome("team-a", transition=Transition.FAILING, error=AUTH),
        CheckOutcome("team-c", transition=Transition.FAILING, error=TIMEOUT),
        CheckOutcome("team-d", transition=Transition.FAILING, error=SERVER),
    )
    assert [(e.type, e.tokens, e.error) for e in events] == [
        (EventType.TOKEN_FAILING, ("team-a", "team-b"), AUTH),  # the first token's error
        (EventType.TOKEN_FAILING, ("team-d",), SERVER),
        (EventType.TOKEN_FAILING, ("team-c",), TIMEOUT),
    ]
    assert [e.summary for e in events] == [
        "2 tokens failing on aiberm: auth (HTTP 401): Invalid token",
        "team-d failing on aiberm: server (HTTP 502): bad gateway",
        "team-c failing on aiberm: timeout: read timed out",
    ]
    assert all(e.changes == () for e in events)


def test_failing_without_error_is_a_bug() -> None:
    with pytest.raises(ValueError, match="without an error"):
        build(CheckOutcome("team-a", transition=Transition.FAILING))


def test_recovered_tokens_share_one_event() -> None:
    [one] = build(CheckOutcome("team-a", transition=Transition.RECOVERED))
    assert (one.type, one.tokens, one.summary) == (
        EventType.TOKEN_RECOVERED,
        ("team-a",),
        "team-a recovered on aiberm",
    )
    assert one.error is None
    [two] = build(
        CheckOutcome("team-b", transition=Transition.RECOVERED),
        CheckOutcome("team-a", transition=Transition.RECOVERED),
    )
    assert (two.tokens, two.summary) == (("team-a", "team-b"), "2 tokens recovered on aiberm")


def test_event_order_failing_recovered_changed_with_ids_in_order() -> None:
    events = build(
        CheckOutcome("team-a", (ADD_GPT5,), transition=Transition.RECOVERED),
        CheckOutcome("team-b", transition=Transition.FAILING, error=AUTH),
        CheckOutcome("team-c", (ADD_GPT5, GAIN)),
    )
    assert [(e.id, e.type) for e in events] == [
        ("evt_1", EventType.TOKEN_FAILING),
        ("evt_2", EventType.TOKEN_RECOVERED),
        ("evt_3", EventType.MODELS_CHANGED),
    ]
    assert events[2].tokens == ("team-a", "team-c")


# filter_for_channel ---------------------------------------------------------------------


def changed_event() -> Event:
    [event] = build(
        CheckOutcome("team-a", (ADD_GPT5, ADD_CLAUDE, GAIN)),
        CheckOutcome("team-b", (ADD_GPT5, REMOVE_OLD)),
    )
    return event


def test_filter_without_restrictions_returns_the_event_itself() -> None:
    event = changed_event()
    assert filter_for_channel(event, None, (), ()) is event
    assert filter_for_channel(event, ["team-a", "team-b", "team-z"], [], []) is event


def test_filter_by_change_type() -> None:
    event = changed_event()
    added = filter_for_channel(event, None, change_types=["added"])
    assert added is not None and {str(c.type) for c in added.changes} == {"added"}
    assert added.summary == "2 added on aiberm"
    assert filter_for_channel(event, None, change_types=["price_changed"]) is None
    ratio = Change(ChangeType.GROUP_RATIO_CHANGED, "", before="1", after="1.5", group="vip")
    [with_ratio] = build(CheckOutcome("team-a", (ADD_GPT5, ratio)))
    prices = filter_for_channel(with_ratio, None, ["gpt-*"], (), ["group_ratio_changed"])
    assert prices is not None and [c.type for c in prices.changes] == [ratio.type]


def test_filter_by_include_and_exclude_globs() -> None:
    event = changed_event()
    view = filter_for_channel(event, None, ["gpt-*"], ["gpt-3.5*"])
    assert view is not None
    assert [c.model for c in view.changes] == ["gpt-4o", "gpt-5"]
    assert view.summary == "1 added, 1 endpoint types changed on aiberm"
    assert view.tokens == ("team-a", "team-b")
    # Exclusion wins over inclusion; no include globs means everything.
    only_claude = filter_for_channel(event, None, (), ["gpt-*"])
    assert only_claude is not None
    assert [c.model for c in only_claude.changes] == ["claude-4"]
    assert only_claude.tokens == ("team-a",)  # team-b saw nothing that is left


def test_globs_are_case_sensitive() -> None:
    assert filter_for_channel(changed_event(), None, ["GPT-*"], ()) is None


def test_filter_by_tokens_narrows_change_tokens() -> None:
    view = filter_for_channel(changed_event(), ["team-b"], (), ())
    assert view is not None
    assert view.tokens == ("team-b",)
    assert [(c.model, c.tokens) for c in view.changes] == [
        ("gpt-3.5-turbo", ("team-b",)),
        ("gpt-5", ("team-b",)),
    ]
    assert view.summary == "1 added, 1 removed on aiberm"
    assert filter_for_channel(changed_event(), ["team-z"], (), ()) is None
    assert filter_for_channel(changed_event(), ["team-b"], ["claude-*"], ()) is None


def test_filter_token_events_ignores_globs_and_narrows_tokens() -> None:
    events = build(
        CheckOutcome("team-a", transition=Transition.FAILING, error=AUTH),
        CheckOutcome("team-b", transition=Transition.FAILING, error=AUTH),
        CheckOutcome("team-c", transition=Transition.RECOVERED),
        CheckOutcome("team-d", transition=Transition.RECOVERED),
    )
    failing, recovered = events
    assert filter_for_channel(failing, None, ["nothing-*"], ["*"]) is failing
    narrowed = filter_for_channel(failing, ["team-b", "team-c"], (), ())
    assert narrowed is not None
    assert narrowed.tokens == ("team-b",)
    assert narrowed.summary == "team-b failing on aiberm: auth (HTTP 401): Invalid token"
    assert narrowed.error == AUTH
    assert filter_for_channel(failing, ["team-c"], (), ()) is None
    back = filter_for_channel(recovered, ["team-c"], (), ())
    assert back is not None
    assert (back.tokens, back.summary) == (("team-c",), "team-c recovered on aiberm")


def test_test_events_pass_through() -> None:
    event = Event("evt_t", EventType.TEST, NOW, SOURCE, (), "test")
    assert filter_for_channel(event, ["nobody"], ["x"], ["*"]) is event


# Properties ----------------------------------------------------------------------------

TOKENS = ["team-a", "team-b", "team-c"]
MODELS = ["gpt-4o", "gpt-5", "claude-4"]
changes_strategy = st.one_of(
    st.builds(
        lambda model, types: Change(ChangeType.ADDED, model, record=R(model, types)),
        st.sampled_from(MODELS),
        st.sets(st.sampled_from(["openai", "anthropic"])),
    ),
    st.builds(
        lambda model: Change(ChangeType.REMOVED, model, record=R(model)),
        st.sampled_from(MODELS),
    ),
    st.builds(
        lambda model, gained: Change(ChangeType.ENDPOINT_TYPES_CHANGED, model, gained=gained),
        st.sampled_from(MODELS),
        st.sampled_from([("openai",), ("gemini",)]),
    ),
    st.builds(
        lambda model, field, after: Change(
            ChangeType.FIELD_CHANGED, model, field=field, before=None, after=after
        ),
        st.sampled_from(MODELS),
        st.sampled_from(["context_window", "owned_by"]),
        st.integers(0, 2),
    ),
)
outcomes_strategy = st.lists(
    st.tuples(st.sampled_from(TOKENS), st.lists(changes_strategy, max_size=5)),
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: [CheckOutcome(token, tuple(changes)) for token, changes in pairs])


@settings(max_examples=200, deadline=None)
@given(outcomes_strategy)
def test_grouping_keeps_every_change_token_pair_once(outcomes: list[CheckOutcome]) -> None:
    grouped = group_changes(outcomes)
    pairs = {(c.key(), o.token) for o in outcomes for c in o.changes}
    assert {(c.key(), t) for c in grouped for t in c.tokens} == pairs
    assert len({c.key() for c in grouped}) == len(grouped)
    assert all(list(c.tokens) == sorted(set(c.tokens)) for c in grouped)
    assert group_changes(list(reversed(outcomes))) == grouped


@settings(max_examples=200, deadline=None)
@given(outcomes_strategy, st.sets(st.sampled_from(TOKENS)))
def test_channel_view_is_the_cycle_restricted_to_the_channel_tokens(
    outcomes: list[CheckOutcome], channel_tokens: set[str]
) -> None:
    """Filtering by tokens equals building the event from those tokens' outcomes only."""
    events = build_events(SOURCE, outcomes, NOW, ids())
    views = [filter_for_channel(e, channel_tokens, (), ()) for e in events]
    narrowed = [o for o in outcomes if o.token in channel_tokens]
    direct = build_events(SOURCE, narrowed, NOW, ids())
    assert [_without_id(v) for v in views if v is not None] == [_without_id(e) for e in direct]


def _without_id(event: Event) -> dict[str, object]:
    payload = event.to_payload()
    del payload["id"]
    return payload
