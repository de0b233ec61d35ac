"""`unavailable` and `available` (what probes find) wherever changes are shown: the
summary, every shipped template, the CLI's lines, the timeline and its feed, the payload
schema and a channel's `changes` filter. The error message comes from the gateway, so
each format must escape it as it escapes every other remote string."""

from __future__ import annotations

import copy
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.cli.output import change_line
from monitor.config import ChannelConfig
from monitor.core.printable import printable_data
from monitor.core.records import CallError, Change, ChangeType, EventType
from monitor.delivery import samples
from monitor.delivery.slack import render_messages
from monitor.delivery.stdout import StdoutChannel
from monitor.delivery.templates import Templates, call_error_text
from monitor.events import payload_errors
from monitor.events.grouping import CheckOutcome, build_events, filter_for_channel, summarize
from monitor.web.feed import build_feed
from monitor.web.render import render as render_page
from monitor.web.timeline import TimelineFilter, TimelineView, _entry, entry_title
from tests.support.json_check import strict
from tests.support.smtp_sink import email_channel

MESSAGE = "No available channel for model gpt-4o under group default (distributor)"
ERROR = CallError(503, "model_not_found", MESSAGE)
SAID = f"HTTP 503 model_not_found: {MESSAGE}"
UNAVAILABLE_LINE = f"gpt-4o: listed but not callable — {SAID}"
SCRIPT = "<script>alert(1)</script> & <b>"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def payload(message: str = MESSAGE) -> dict[str, Any]:
    """The shipped sample (gpt-4o unavailable for team-a and team-b, claude-sonnet-4-5
    available again for team-a), its error message replaced by `message`."""
    out = samples.calls_changed().to_payload()
    for change in out["changes"]:
        if change["type"] == "unavailable":
            change["error"]["message"] = message
    return out


def stdout_text(data: dict[str, Any]) -> str:
    return StdoutChannel(ChannelConfig("console", "stdout"), stream=io.StringIO()).render(data)


# -- the summary ---------------------------------------------------------------------------


def test_the_summary_counts_models_unavailable_and_available_again() -> None:
    one = [Change(ChangeType.UNAVAILABLE, "a", error=ERROR), Change(ChangeType.AVAILABLE, "b")]
    assert summarize(one, "gw") == "1 model unavailable, 1 model available again on gw"
    two = [Change(ChangeType.UNAVAILABLE, m, error=ERROR) for m in ("a", "b")]
    two += [Change(ChangeType.AVAILABLE, m) for m in ("c", "d")]
    assert summarize(two, "gw") == "2 models unavailable, 2 models available again on gw"
    added = Change(ChangeType.ADDED, "e")
    assert summarize([added, *one], "gw") == (
        "1 added, 1 model unavailable, 1 model available again on gw"
    )


def test_the_sample_event_groups_one_failure_across_tokens() -> None:
    data = payload()
    assert data["summary"] == "1 model unavailable, 1 model available again on aiberm"
    unavailable = next(c for c in data["changes"] if c["type"] == "unavailable")
    assert unavailable["tokens"] == ["team-a", "team-b"]
    assert unavailable["error"] == {"status": 503, "code": "model_not_found", "message": MESSAGE}
    assert samples.calls_changed().to_payload() in samples.all_payloads()


# -- the error in one line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ({"status": 503, "code": "model_not_found", "message": MESSAGE}, SAID),
        ({"status": 404, "code": None, "message": "not found"}, "HTTP 404: not found"),
        ({"status": None, "code": None, "message": "read timed out"}, "no answer: read timed out"),
    ],
)
def test_the_error_filter_words_it_as_the_cli_does(error: dict[str, Any], said: str) -> None:
    assert call_error_text({"type": "unavailable", "error": error}) == said
    assert said == CallError.from_json(error).text()


def test_the_error_filter_is_empty_without_an_error() -> None:
    assert call_error_text({"type": "unavailable", "model": "m", "tokens": []}) == ""
    assert call_error_text({"type": "available", "error": "not a mapping"}) == ""


# -- plain text: stdout, the email's text part, `history` --------------------------------------


def test_the_text_template_says_listed_but_not_callable_and_callable_again() -> None:
    text = stdout_text(payload())
    assert f"  ! {UNAVAILABLE_LINE}  (team-a, team-b)\n" in text
    assert "  ✓ claude-sonnet-4-5: callable again  (team-a)\n" in text


def test_the_text_template_shows_control_characters_instead_of_obeying_them() -> None:
    text = stdout_text(payload("busy\x1b[2J\rforged line"))
    assert "\x1b" not in text and "\r" not in text
    assert "busy\\x1b[2J\\rforged line  (team-a, team-b)" in text


def test_a_change_without_an_error_still_renders() -> None:
    data = payload()
    for change in data["changes"]:
        change.pop("error", None)
    assert "  ! gpt-4o: listed but not callable  (team-a, team-b)\n" in stdout_text(data)


def test_a_silenced_change_is_marked_in_the_text() -> None:
    data = payload()
    data["changes"][1]["silenced"] = "sil_1"
    assert payload_errors(data) == []
    text = stdout_text(data)
    assert "(silenced by sil_1, delivered to no one:)\n  ! gpt-4o" in text


# -- email ----------------------------------------------------------------------------------


def test_the_email_shows_both_changes_in_text_and_html() -> None:
    text, html = email_channel(25).render(payload())
    assert f"! {UNAVAILABLE_LINE}  (team-a, team-b)" in text
    assert "✓ claude-sonnet-4-5: callable again  (team-a)" in text
    assert ">unavailable</span>" in html and ">available</span>" in html
    assert "listed but not callable &mdash; <code" in html
    assert f">{SAID}</code>" in html
    assert "callable again" in html


def test_the_email_html_escapes_the_gateways_message() -> None:
    _, html = email_channel(25).render(payload(SCRIPT))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html


# -- Slack ----------------------------------------------------------------------------------


def slack_raw(data: dict[str, Any]) -> Any:
    """The shipped template's own output, parsed strictly: it must be JSON by itself."""
    return strict(Templates().render("slack.json.j2", printable_data(data)))


def test_slack_gets_one_section_per_kind_with_the_error() -> None:
    message = slack_raw(payload())
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert sections == [
        f"*Unavailable* (1) · team-a, team-b\n• `gpt-4o`: listed but not callable — {SAID}",
        "*Available again* (1) · team-a\n• `claude-sonnet-4-5`: callable again",
    ]
    assert f"! `gpt-4o`: listed but not callable — {SAID}" in message["text"]
    assert "✓ `claude-sonnet-4-5`: callable again" in message["text"]
    (sent,) = render_messages(payload())
    assert sent["blocks"] == message["blocks"]


def test_slack_output_stays_valid_json_and_inert_with_a_hostile_message() -> None:
    hostile = 'quote " backslash \\ <!channel> & \n newline'
    message = slack_raw(payload(hostile))
    (section,) = [b for b in message["blocks"] if "*Unavailable*" in str(b)]
    text = section["text"]["text"]
    assert "<" not in text and ">" not in text
    assert 'quote " backslash \\ &lt;!channel&gt; &amp; \\n newline' in text


def test_a_digest_marks_both_kinds_in_slack() -> None:
    events = [payload(), samples.token_recovered().to_payload()]
    (message,) = render_messages(samples.digest(events))
    (section,) = [b for b in message["blocks"] if "model unavailable" in str(b)]
    lines = section["text"]["text"].split("\n")
    assert "✓ `claude-sonnet-4-5`: callable again · _team-a_" in lines
    assert f"! `gpt-4o`: listed but not callable — {SAID}" in lines


# -- every shipped template -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["event.txt.j2", "email.txt.j2", "email.html.j2", "slack.json.j2"])
def test_every_shipped_template_names_the_status_code_and_message(name: str) -> None:
    text = Templates().render(name, printable_data(payload()))
    for part in ("gpt-4o", "503", "model_not_found", MESSAGE, "claude-sonnet-4-5"):
        assert part in text, (name, part)
    assert "listed but not callable" in text and "callable again" in text


# -- the CLI --------------------------------------------------------------------------------


def test_the_cli_lines() -> None:
    assert change_line(Change(ChangeType.UNAVAILABLE, "gpt-4o", error=ERROR)) == (
        f"! {UNAVAILABLE_LINE}"
    )
    assert change_line(Change(ChangeType.UNAVAILABLE, "gpt-4o")) == (
        "! gpt-4o: listed but not callable"
    )
    assert change_line(Change(ChangeType.AVAILABLE, "gpt-4o")) == "✓ gpt-4o: callable again"


# -- the timeline and its feed --------------------------------------------------------------


def entry(data: dict[str, Any], flt: TimelineFilter | None = None) -> Any:
    found = _entry(data, flt or TimelineFilter())
    assert found is not None
    return found


def test_the_timeline_lines_carry_the_error() -> None:
    available, unavailable = entry(payload()).changes
    assert (unavailable.type, unavailable.model, unavailable.call_error) == (
        "unavailable",
        "gpt-4o",
        SAID,
    )
    assert unavailable.tokens == ("team-a", "team-b")
    assert (available.type, available.model, available.call_error) == (
        "available",
        "claude-sonnet-4-5",
        None,
    )


def test_the_feed_title_names_what_stopped_and_started_answering() -> None:
    changes = payload()["changes"]
    title = entry_title("models.changed", "aiberm", (), changes, None, "")
    assert title == "aiberm: unavailable gpt-4o; available again claude-sonnet-4-5"


def test_a_type_filter_keeps_only_those_changes_and_recounts() -> None:
    narrowed = entry(payload(), TimelineFilter(type="unavailable"))
    assert [c.type for c in narrowed.changes] == ["unavailable"]
    assert narrowed.summary == "1 model unavailable on aiberm"
    assert narrowed.title == "aiberm: unavailable gpt-4o"


def test_a_type_filter_recounts_a_group_ratio_change_which_has_no_model() -> None:
    narrowed = entry(samples.prices_changed().to_payload(), TimelineFilter(type="price_changed"))
    assert narrowed.summary == "2 prices changed on aiberm"


def test_the_timeline_html_line_escapes_the_message() -> None:
    html = render_page("feed_entry.html.j2", entry=entry(payload(SCRIPT)))
    assert "<script>" not in html
    assert (
        '<span class="t-removed">unavailable</span> <code>gpt-4o</code>: listed but not callable'
        " &mdash; <code>HTTP 503 model_not_found: &lt;script&gt;alert(1)&lt;/script&gt; &amp;"
        " &lt;b&gt;</code>"
    ) in html
    assert (
        '<span class="t-added">available</span> <code>claude-sonnet-4-5</code>: callable again'
    ) in html


def test_the_feed_entry_shows_both_lines() -> None:
    view = TimelineView(TimelineFilter(), (entry(payload(SCRIPT)),), False, NOW)
    feed = ET.fromstring(build_feed(view))  # noqa: S314 - our own feed, under test
    atom = "{http://www.w3.org/2005/Atom}"
    (item,) = feed.findall(f"{atom}entry")
    assert item.findtext(f"{atom}title") == (
        "aiberm: unavailable gpt-4o; available again claude-sonnet-4-5"
    )
    content = item.findtext(f"{atom}content") or ""  # HTML, once unescaped from XML
    assert "listed but not callable" in content and "callable again" in content
    assert "<script>" not in content and "&lt;script&gt;" in content


# -- the payload schema ---------------------------------------------------------------------


def test_the_schema_accepts_both_types() -> None:
    assert payload_errors(payload()) == []
    no_answer = payload()
    no_answer["changes"][1]["error"] = {"status": None, "code": None, "message": "timed out"}
    assert payload_errors(no_answer) == []


def broken(mutate: Any) -> dict[str, Any]:
    """The sample with its unavailable change passed through `mutate`."""
    data = copy.deepcopy(payload())
    mutate(next(c for c in data["changes"] if c["type"] == "unavailable"))
    return data


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("error"),
        lambda c: c["error"].pop("message"),
        lambda c: c["error"].pop("code"),
        lambda c: c["error"].update(status="503"),
        lambda c: c["error"].update(code=7),
        lambda c: c["error"].update(kind="server"),
        lambda c: c.pop("model"),
    ],
    ids=[
        "without error",
        "without message",
        "without code",
        "status as string",
        "code as number",
        "unknown error key",
        "without model",
    ],
)
def test_the_schema_rejects_a_broken_unavailable_change(mutate: Any) -> None:
    assert payload_errors(broken(mutate))


def test_the_schema_rejects_an_error_on_an_available_change() -> None:
    data = payload()
    data["changes"][0]["error"] = {"status": 503, "code": None, "message": "x"}
    assert data["changes"][0]["type"] == "available"
    assert payload_errors(data)


# -- a channel's `changes` filter -----------------------------------------------------------


def test_a_channel_filtering_on_unavailable_gets_only_those() -> None:
    event = samples.calls_changed()
    view = filter_for_channel(event, None, change_types=("unavailable",))
    assert view is not None
    assert [(c.type, c.model, c.error) for c in view.changes] == [
        (ChangeType.UNAVAILABLE, "gpt-4o", ERROR)
    ]
    assert view.summary == "1 model unavailable on aiberm"
    assert view.tokens == ("team-a", "team-b")
    assert payload_errors(view.to_payload()) == []


def test_a_channel_not_filtering_on_them_hears_nothing() -> None:
    event = samples.calls_changed()
    assert filter_for_channel(event, None, change_types=("added", "removed")) is None
    only_b = filter_for_channel(event, ["team-b"], change_types=("available",))
    assert only_b is None  # team-b saw no model come back


def test_tokens_that_fail_alike_share_one_change_and_others_do_not() -> None:
    """One model, two differently worded failures (two groups): two changes, one model."""
    other = CallError(429, "rate_limit", "slow down")
    outcomes = [
        CheckOutcome("a", (Change(ChangeType.UNAVAILABLE, "m", error=ERROR),)),
        CheckOutcome("b", (Change(ChangeType.UNAVAILABLE, "m", error=ERROR),)),
        CheckOutcome("c", (Change(ChangeType.UNAVAILABLE, "m", error=other),)),
    ]
    (event,) = build_events(samples.SOURCE, outcomes, samples.OCCURRED_AT, lambda: "evt_1")
    assert event.type is EventType.MODELS_CHANGED
    assert [(c.tokens, c.error) for c in event.changes] == [(("a", "b"), ERROR), (("c",), other)]
    # Two changes, one model: the summary counts models.
    assert event.summary == "1 model unavailable on aiberm"
    assert event.to_payload()["changes"][1]["error"]["status"] == 429
