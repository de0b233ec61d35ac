"""Every payload we build validates against monitor/schemas/event-v1.json, and the schema
is strict enough to reject the mistakes that would break receivers."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from monitor.core.budget import Budget
from monitor.core.diff import diff_models
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
from monitor.events import load_event_schema
from monitor.events.grouping import CheckOutcome, build_events, filter_for_channel
from monitor.events.health import Transition

R = ModelRecord.build
SOURCE = SourceRef("aiberm", "https://aiberm.com/v1")
NOW = "2026-11-26T10:00:00Z"


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    # jsonschema checks date-time only with an optional extra installed; do it here.
    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None

    return checker


VALIDATOR = Draft202012Validator(load_event_schema(), format_checker=_format_checker())


def ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"evt_{next(counter):04d}"


def errors_of(payload: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(payload)]


def cycle_events() -> list[Event]:
    """One cycle with every kind of event and every kind of change."""
    before = {
        "gpt-4o": R("gpt-4o", ["openai"], {"context_window": 128000, "owned_by": "openai"}),
        "gpt-3.5-turbo": R("gpt-3.5-turbo", ["openai"]),
        "claude": R("claude", ["anthropic"], {"pricing": {"input": "0.003"}}),
    }
    after = {
        "gpt-4o": R(
            "gpt-4o", ["openai", "openai-response"], {"context_window": 200000, "owned_by": None}
        ),
        "gpt-5": R("gpt-5", ["openai"], {"capabilities": ["vision", "tools"]}),
        "claude": R("claude", ["anthropic"], {"pricing": {"input": "0.004"}}),
    }
    prices = (
        Change(
            ChangeType.PRICE_CHANGED,
            "gpt-4o",
            before=(("input", "2.5"), ("output", "10")),
            after=(("input", "5"), ("output", "20")),
            group="vip",
        ),
        Change(ChangeType.PRICE_CHANGED, "gpt-5", before=(), after=(("request", "0.04"),)),
        Change(ChangeType.GROUP_RATIO_CHANGED, "", before="1", after="1.5", group="vip"),
    )
    probes = (
        Change(ChangeType.UNAVAILABLE, "gpt-5", error=CallError(503, "model_not_found", "busy")),
        Change(ChangeType.AVAILABLE, "claude"),
    )
    changes = tuple(diff_models(before, after)) + prices + probes
    assert {c.type for c in changes} == set(ChangeType)
    auth = FetchError(ErrorKind.AUTH, "Invalid token", status=401)
    outcomes = [
        CheckOutcome("team-a", changes),
        CheckOutcome("team-b", changes[:2]),
        CheckOutcome("team-c", transition=Transition.FAILING, error=auth),
        CheckOutcome(
            "team-d",
            transition=Transition.FAILING,
            error=FetchError(ErrorKind.TIMEOUT, "read timed out"),
        ),
        CheckOutcome("team-e", transition=Transition.RECOVERED),
    ]
    events = build_events(SOURCE, outcomes, NOW, ids())
    expires = datetime(2026, 12, 12, tzinfo=UTC)
    budget = Budget(Decimal(50), Decimal(46), Decimal(4), expires_at=expires)
    events += [
        Event(
            "evt_exp",
            EventType.TOKEN_EXPIRING,
            NOW,
            SOURCE,
            ("team-a",),
            "expires",
            (),
            budget=budget,
            threshold="7d",
        ),
        Event(
            "evt_low",
            EventType.TOKEN_QUOTA_LOW,
            NOW,
            SOURCE,
            ("team-b",),
            "low",
            (),
            budget=Budget(unlimited=False, remaining=Decimal("0.5")),
            threshold="10%",
        ),
    ]
    assert {e.type for e in events} == set(EventType) - {EventType.TEST}
    return events


def payload_of(event_type: EventType) -> dict[str, Any]:
    return next(e for e in cycle_events() if e.type is event_type).to_payload()


# Valid payloads --------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(load_event_schema())


def test_every_event_of_a_cycle_validates() -> None:
    for event in cycle_events():
        assert errors_of(event.to_payload()) == []


def test_the_spec_example_validates() -> None:
    example = {
        "version": "1",
        "id": "evt_01",
        "type": "models.changed",
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": {"name": "aiberm", "base_url": "https://aiberm.com/v1"},
        "tokens": ["team-a", "team-b"],
        "summary": "2 added, 1 removed on aiberm",
        "changes": [
            {
                "type": "added",
                "model": "gpt-5",
                "tokens": ["team-a", "team-b"],
                "after": {"endpoint_types": ["openai"]},
            },
            {"type": "removed", "model": "gpt-3.5-turbo", "tokens": ["team-a"]},
            {
                "type": "endpoint_types_changed",
                "model": "gpt-4o",
                "tokens": ["team-a"],
                "gained": ["openai-response"],
                "lost": [],
            },
            {
                "type": "field_changed",
                "model": "gpt-4o",
                "tokens": ["team-a"],
                "field": "context_window",
                "before": 128000,
                "after": 200000,
            },
        ],
    }
    assert errors_of(example) == []


def test_test_events_validate() -> None:
    sample = Change(ChangeType.ADDED, "gpt-5", record=R("gpt-5", ["openai"]), tokens=("demo",))
    event = Event("evt_test", EventType.TEST, NOW, SOURCE, (), "test event", (sample,))
    assert errors_of(event.to_payload()) == []


def test_channel_views_validate() -> None:
    for event in cycle_events():
        for tokens in (None, ["team-a"], ["team-b", "team-c"], ["team-e"]):
            view = filter_for_channel(event, tokens, ["gpt-*"], ["gpt-3.5*"])
            if view is not None:
                assert errors_of(view.to_payload()) == []


def test_schema_enums_match_the_code() -> None:
    schema = load_event_schema()
    assert schema["properties"]["type"]["enum"] == [str(t) for t in EventType]
    change_types = schema["$defs"]["change"]["properties"]["type"]["enum"]
    assert change_types == [str(t) for t in ChangeType]
    error_kinds = schema["$defs"]["error"]["properties"]["kind"]["enum"]
    assert error_kinds == [str(k) for k in ErrorKind]


def test_load_event_schema_returns_a_fresh_copy() -> None:
    schema = load_event_schema()
    schema["properties"].clear()
    assert load_event_schema()["properties"]


MODEL_IDS = [f"model-{i}" for i in range(12)]
records = st.builds(
    R,
    st.sampled_from(MODEL_IDS),
    st.none() | st.frozensets(st.sampled_from(["openai", "anthropic", "gemini", "x-custom"])),
    st.dictionaries(
        st.sampled_from(["context_window", "owned_by", "pricing", "deprecated_at"]),
        st.integers()
        | st.text(max_size=5)
        | st.lists(st.booleans(), max_size=2)
        | st.dictionaries(st.text(max_size=3), st.floats(allow_nan=False), max_size=2),
        max_size=3,
    ),
)
snapshots = st.lists(records, max_size=12).map(lambda rs: {r.id: r for r in rs})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(snapshots, snapshots), min_size=1, max_size=3))
def test_payloads_of_arbitrary_diffs_validate(pairs: list[tuple[dict, dict]]) -> None:
    outcomes = [
        CheckOutcome(f"token-{i}", tuple(diff_models(before, after)))
        for i, (before, after) in enumerate(pairs)
    ]
    for event in build_events(SOURCE, outcomes, NOW, ids()):
        assert errors_of(event.to_payload()) == []


# Invalid payloads ------------------------------------------------------------------------


def _del(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(payload: dict[str, Any]) -> None:
        target: Any = payload
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(payload: dict[str, Any]) -> None:
        target: Any = payload
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _change_index(payload: dict[str, Any], change_type: str) -> int:
    return next(i for i, c in enumerate(payload["changes"]) if c["type"] == change_type)


def _on_change(
    change_type: str, mutate: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], None]:
    return lambda payload: mutate(payload["changes"][_change_index(payload, change_type)])


CHANGED, FAILING, RECOVERED = (
    EventType.MODELS_CHANGED,
    EventType.TOKEN_FAILING,
    EventType.TOKEN_RECOVERED,
)

INVALID = {
    "wrong version": (CHANGED, _set(1, "version")),
    "missing version": (CHANGED, _del("version")),
    "id without evt_ prefix": (CHANGED, _set("msg_123", "id")),
    "unknown event type": (CHANGED, _set("models.updated", "type")),
    "occurred_at with offset": (CHANGED, _set("2026-11-26T10:00:00+01:00", "occurred_at")),
    "occurred_at not a date": (CHANGED, _set("2026-13-45T10:00:00Z", "occurred_at")),
    "unknown top-level key": (CHANGED, _set(True, "urgent")),
    "source without base_url": (CHANGED, _del("source", "base_url")),
    "tokens not strings": (CHANGED, _set([1, 2], "tokens")),
    "duplicate tokens": (CHANGED, _set(["team-a", "team-a"], "tokens")),
    "models.changed without changes": (CHANGED, _set([], "changes")),
    "models.changed with error": (
        CHANGED,
        _set({"kind": "auth", "status": 401, "message": "x"}, "error"),
    ),
    "unknown change type": (CHANGED, _on_change("added", _set("renamed", "type"))),
    "added without after": (CHANGED, _on_change("added", _del("after"))),
    "added with gained": (CHANGED, _on_change("added", _set([], "gained"))),
    "endpoint change without lost": (CHANGED, _on_change("endpoint_types_changed", _del("lost"))),
    "endpoint types not a list": (
        CHANGED,
        _on_change("endpoint_types_changed", _set("openai", "gained")),
    ),
    "field change without field": (CHANGED, _on_change("field_changed", _del("field"))),
    "field change without before": (CHANGED, _on_change("field_changed", _del("before"))),
    "change without model": (CHANGED, _on_change("removed", _del("model"))),
    "change without tokens": (CHANGED, _on_change("removed", _del("tokens"))),
    "failing without error": (FAILING, _del("error")),
    "error with unknown kind": (FAILING, _set("oops", "error", "kind")),
    "error status as string": (FAILING, _set("401", "error", "status")),
    "error without message": (FAILING, _del("error", "message")),
    "failing without tokens": (FAILING, _set([], "tokens")),
    "recovered with changes": (
        RECOVERED,
        _set([{"type": "removed", "model": "m", "tokens": []}], "changes"),
    ),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_payloads_are_rejected(name: str) -> None:
    event_type, mutate = INVALID[name]
    payload = payload_of(event_type)
    assert errors_of(payload) == []
    broken = copy.deepcopy(payload)
    mutate(broken)
    assert errors_of(broken), f"{name}: schema accepted {broken}"
