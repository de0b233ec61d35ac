"""Silences' rules, with an injected clock: what matches, when, and what is left to deliver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.records import Change, ChangeType, Event, EventType, ModelRecord, SourceRef
from monitor.events.grouping import CheckOutcome, build_events
from monitor.events.silences import Silence, apply_silences

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SOURCE = SourceRef("gw", "https://gw.example/v1")
ADD = Change(ChangeType.ADDED, "gpt-5", ModelRecord.build("gpt-5", ["openai"]))
GONE = Change(ChangeType.REMOVED, "gpt-3.5-turbo", ModelRecord.build("gpt-3.5-turbo", ["openai"]))


def changed() -> Event:
    (event,) = build_events(
        SOURCE,
        [CheckOutcome("a", (ADD, GONE)), CheckOutcome("b", (GONE,))],
        "2026-12-06T12:00:00Z",
        lambda: "evt_1",
    )
    return event


def silence(**match: str) -> Silence:
    return Silence("sil_1", NOW - timedelta(hours=1), NOW + timedelta(hours=1), **match)


def test_a_silence_matches_only_in_its_window() -> None:
    quiet = silence(kind="removed")
    assert apply_silences(changed(), [quiet], NOW).marks == {0: "sil_1"}  # by model id
    for moment in (NOW - timedelta(hours=2), NOW + timedelta(hours=1)):  # before; at the end
        result = apply_silences(changed(), [quiet], moment)
        assert result.marks == {} and result.delivered == changed()


def test_a_fully_silenced_change_is_not_delivered_and_the_rest_is() -> None:
    result = apply_silences(changed(), [silence(model="gpt-3.5*")], NOW)
    assert result.marks == {0: "sil_1"}
    assert result.delivered is not None
    assert [c.model for c in result.delivered.changes] == ["gpt-5"]
    assert result.delivered.summary == "1 added on gw"
    assert result.delivered.tokens == ("a",)


def test_a_token_silence_narrows_a_change_to_the_other_tokens() -> None:
    result = apply_silences(changed(), [silence(token="b")], NOW)
    assert result.marks == {}  # nothing is silenced for everyone
    assert result.delivered is not None
    gone = next(c for c in result.delivered.changes if c.model == "gpt-3.5-turbo")
    assert gone.tokens == ("a",)


def test_an_event_whose_every_change_is_silenced_is_not_delivered() -> None:
    result = apply_silences(changed(), [silence(source="gw")], NOW)
    assert result.delivered is None and result.marks == {0: "sil_1", 1: "sil_1"}
    other = apply_silences(changed(), [silence(source="elsewhere")], NOW)
    assert other.delivered == changed()


def test_token_events_are_silenced_per_token() -> None:
    failing = Event("evt_2", EventType.TOKEN_FAILING, "t", SOURCE, ("a", "b"), "2 tokens failing")
    narrowed = apply_silences(failing, [silence(token="a", kind="token.failing")], NOW)
    assert narrowed.delivered is not None and narrowed.delivered.tokens == ("b",)
    both = apply_silences(failing, [silence(kind="token.failing")], NOW)
    assert both.delivered is None and both.marks == {-1: "sil_1"}
    # A silence on a model never covers a token event.
    assert apply_silences(failing, [silence(model="*")], NOW).delivered == failing


def test_the_stored_payload_with_its_marks_validates_and_the_timeline_shows_them() -> None:
    from monitor.events import payload_errors
    from monitor.web.timeline import _change_line

    payload = changed().to_payload()
    payload["changes"][0]["silenced"] = "sil_1"
    assert payload_errors(payload) == []
    assert _change_line(payload["changes"][0]).silenced == "sil_1"
    payload["changes"][0]["silenced"] = "not-a-silence-id"
    assert payload_errors(payload) != []
