"""The Slack channel's rendering: messages within every Slack limit whatever the size of the
change, hostile model ids made inert, user templates, and the channel's config. Sending to
a loopback receiver is in tests/integration/test_slack.py; Slack's answers classified and
the rendered examples under docs/ in tests/contract/test_channels.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, Secret
from monitor.delivery import samples
from monitor.delivery.registry import CHANNELS
from monitor.delivery.slack import SlackChannel, render_messages
from monitor.delivery.templates import Templates
from monitor.runtime.catalogue import load as load_config
from tests.support.digests import digest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "monitor" / "templates" / "slack.json.j2"
CANARY = "secret-path-canary-3b7f"


def texts(node: Any) -> list[str]:
    """Every string under a "text" key: what Slack counts as block text."""
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            out += [value] if key == "text" and isinstance(value, str) else texts(value)
        return out
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


def mrkdwn_strings(message: dict[str, Any]) -> list[str]:
    """The fallback and every mrkdwn text object: where Slack parses <...> and &...;."""
    found = [message["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return found


def assert_valid(message: dict[str, Any]) -> None:
    """Slack's documented limits (a 40,000-character fallback text, 50 blocks, 150 characters
    of header, 3,000 of section text, 10 context elements of 2,000) and its refusals of
    empty blocks."""
    json.dumps(message)
    assert isinstance(message["text"], str) and 0 < len(message["text"]) <= 40_000
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    assert sum(map(len, texts(blocks))) <= 13_000
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= 3000
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(e["text"]) <= 2000 for e in block["elements"])


# -- Rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 10, 500])
def test_any_number_of_changes_fits_one_valid_message(n: int) -> None:
    (message,) = render_messages(samples.models_changed(n_added=n).to_payload())
    assert_valid(message)
    header, *sections, context = message["blocks"]
    summary = f"{n} added, 1 removed, 1 endpoint types changed, 1 field changed on aiberm"
    assert header == {"type": "header", "text": {"type": "plain_text", "text": summary}}
    assert [s["text"]["text"].split("\n")[0] for s in sections] == [
        f"*Added* ({n}) · team-a, team-b",
        "*Removed* (1) · team-a",
        "*Endpoint types changed* (1) · team-a",
        "*Fields changed* (1) · team-a",
    ]
    added = sections[0]["text"]["text"].split("\n")[1:]
    shown = [line for line in added if line.startswith("• `gpt-5")]
    more = re.fullmatch(r"… and (\d+) more", added[-1])
    assert len(shown) + (int(more.group(1)) if more else 0) == n
    assert (more is not None) == (n == 500)
    assert context["elements"][0]["text"] == (
        "*aiberm* · https://aiberm.com/v1 · tokens: team-a, team-b · 2026-11-26T10:00:00Z"
    )
    assert message["text"].startswith(f"{n} added")
    assert len(message["text"].split("\n")) <= 12  # summary, 10 changes, "… and N more"


def test_token_events_and_test_message() -> None:
    (failing,) = render_messages(samples.token_failing().to_payload())
    assert_valid(failing)
    assert [b["type"] for b in failing["blocks"]] == ["header", "section", "context"]
    assert failing["blocks"][1]["text"]["text"] == (
        "*Error:* auth (HTTP 401)\n*Message:* Invalid token (request id: 20261126100000123)"
    )
    for event in (samples.token_recovered(), samples.sample_test()):
        (message,) = render_messages(event.to_payload())
        assert_valid(message)
        assert [b["type"] for b in message["blocks"]] == ["header", "context"]
        assert message["text"] == event.summary


def test_a_small_digest_is_one_message_with_a_section_per_event() -> None:
    (message,) = render_messages(digest(3))
    assert_valid(message)
    assert [b["type"] for b in message["blocks"]] == ["header", *["section"] * 3, "context"]
    assert message["blocks"][1]["text"]["text"].startswith("*event 0: team-b failing on aiberm")
    assert "+ `gpt-5` — openai, openai-response" in message["blocks"][2]["text"]["text"]


def test_a_digest_of_60_events_splits_into_numbered_valid_messages() -> None:
    parts = render_messages(digest(60))
    assert len(parts) >= 2
    summaries = []
    for k, part in enumerate(parts, 1):
        assert_valid(part)
        header, *sections, context = part["blocks"]
        assert header["text"]["text"] == f"60 events on aiberm ({k}/{len(parts)})"
        assert part["text"].startswith(f"60 events on aiberm ({k}/{len(parts)})\n")
        assert context["elements"][0]["text"].startswith("model-monitor digest · 60 events")
        summaries += [re.match(r"\*event (\d+):", s["text"]["text"]).group(1) for s in sections]
    assert summaries == [str(i) for i in range(60)]  # every event, once, in order


def test_a_digest_of_big_events_collapses_sections_evenly_before_splitting() -> None:
    payload = digest(3)
    for event in payload["events"]:
        event.update(samples.models_changed(n_added=400).to_payload(), summary="big")
    (message,) = render_messages(payload)
    assert_valid(message)
    lengths = [len(b["text"]["text"]) for b in message["blocks"] if b["type"] == "section"]
    assert max(lengths) - min(lengths) < 100  # one common cap, not first-come first-served
    assert all(b["text"]["text"].endswith("more") for b in message["blocks"][1:-1])


def test_a_huge_model_id_is_cut_not_rejected() -> None:
    (message,) = render_messages(samples.models_changed(model_id="m" * 10_000).to_payload())
    assert_valid(message)


@pytest.mark.parametrize(
    ("model_id", "shown"),
    [
        ("<script>", "&lt;script&gt;"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("a & b", "a &amp; b"),
        ("x\r\ny", "x\\r\\ny"),
        ("rtl\u202egnp.exe", "rtl\\u202egnp.exe"),
    ],
)
def test_hostile_model_ids_render_inert(model_id: str, shown: str) -> None:
    (message,) = render_messages(samples.models_changed(model_id=model_id).to_payload())
    assert_valid(message)
    strings = mrkdwn_strings(message)
    assert all("<" not in s and ">" not in s for s in strings)  # no link, mention or tag
    assert all("\r" not in s and "\u202e" not in s for s in strings)
    assert all(f"`{shown}`" in s for s in (strings[0], message["blocks"][1]["text"]["text"]))
    body = json.dumps(message, ensure_ascii=False)
    assert "&amp;amp;" not in body and "&amp;lt;" not in body  # escaped once
    assert "&quot;" not in body and "&#" not in body  # and never HTML-escaped
    # Every line of the Added section is one model: an id cannot forge lines.
    assert len(message["blocks"][1]["text"]["text"].split("\n")) == 3


def test_a_hostile_error_message_is_inert_in_mrkdwn() -> None:
    payload = samples.token_failing().to_payload()
    payload["error"]["message"] = "<!here> pay at <https://evil.example|here> & now"
    payload["summary"] = "team-b failing on aiberm: " + payload["error"]["message"]
    (message,) = render_messages(payload)
    for text in mrkdwn_strings(message):
        assert "<" not in text and ">" not in text
    assert "&lt;!here&gt; pay at &lt;https://evil.example|here&gt; &amp; now" in message["text"]
    assert message["blocks"][0]["text"]["text"] == payload["summary"]  # plain_text: as is


# -- Templates -----------------------------------------------------------------------------


def test_the_shipped_template_passes_the_user_template_check(tmp_path: Path) -> None:
    shutil.copy(SHIPPED, tmp_path / SHIPPED.name)
    assert Templates(tmp_path).check(samples.all_payloads()) == []


def test_a_user_template_overrides_the_look(tmp_path: Path) -> None:
    (tmp_path / "slack.json.j2").write_text(
        '{{ {"text": "custom: " ~ (event.summary | mrkdwn), "icon_emoji": ":robot_face:",'
        ' "blocks": [{"type": "section", "text": {"type": "mrkdwn",'
        ' "text": "*" ~ (event.summary | mrkdwn) ~ "*"}}]} | tojson }}'
    )
    payload = samples.token_recovered().to_payload()
    assert render_messages(payload, Templates(tmp_path)) == [
        {
            "text": "custom: team-b recovered on aiberm",
            "icon_emoji": ":robot_face:",
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "*team-b recovered on aiberm*"},
                }
            ],
        }
    ]


def test_limits_hold_whatever_a_user_template_produces(tmp_path: Path) -> None:
    (tmp_path / "slack.json.j2").write_text(
        "{% set blocks = [] %}{% for i in range(80) %}"
        '{% set _ = blocks.append({"type": "section", "text": {"type": "mrkdwn",'
        ' "text": ("line " ~ i ~ "\\n") * 500}}) %}{% endfor %}'
        '{% set _ = blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": " "}}) %}'
        '{{ {"blocks": blocks} | tojson }}'
    )
    parts = render_messages(samples.sample_test().to_payload(), Templates(tmp_path))
    assert len(parts) > 2
    for k, part in enumerate(parts, 1):
        assert_valid(part)  # the blank section is dropped, the fallback made up
        assert part["blocks"][0]["elements"][0]["text"] == f"part ({k}/{len(parts)})"
    sections = [b for p in parts for b in p["blocks"] if b["type"] == "section"]
    assert len(sections) == 80
    *shown, more = sections[0]["text"]["text"].split("\n")
    assert len(shown) + int(re.fullmatch(r"… and (\d+) more", more).group(1)) == 500


# -- Configuration -------------------------------------------------------------------------


def test_registered_as_the_slack_type() -> None:
    assert CHANNELS["slack"] is SlackChannel
    assert SlackChannel.MIN_INTERVAL == 1.0


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://hooks.slack.com/services/T0/B0/x", False),
        ("hooks.slack.com/services/T0/B0/x", False),
        ("ftp://hooks.slack.com/x", False),
        ("https:///no-host", False),
        ("http://[::1", False),
    ],
)
def test_check_options(url: str, ok: bool) -> None:
    problems = SlackChannel.check_options({"url": Secret(url)})
    assert (problems == []) is ok
    assert all(url not in message for _, message in problems)


def test_config_rejects_a_plain_http_url_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    body = (
        '[[sources]]\nname = "aiberm"\nbase_url = "https://aiberm.com/v1"\n'
        '[[tokens]]\nname = "team-a"\nsource = "aiberm"\ntoken_env = "TEAM_A"\n'
        '[[channels]]\nname = "ops"\ntype = "slack"\nurl_env = "SLACK_URL"\n'
    )
    path.write_text(body)
    good = load_config(path, {"TEAM_A": "sk-a", "SLACK_URL": "https://hooks.slack.com/x"})
    assert good.channels[0].type == "slack"
    with pytest.raises(ConfigError) as info:
        load_config(path, {"TEAM_A": "sk-a", "SLACK_URL": f"http://hooks.slack.com/{CANARY}"})
    assert "url" in str(info.value) and CANARY not in str(info.value)
