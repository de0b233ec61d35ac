"""The Slack channel on the wire, against a real loopback receiver: the rendered message
posted as JSON, a broken user template never sent, digests split into parts sent in order
and paced, and a retry that resumes after the parts already sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Secret
from monitor.config.model import ChannelConfig
from monitor.delivery import samples
from monitor.delivery.base import Message
from monitor.delivery.slack import SlackChannel, render_messages
from monitor.delivery.templates import Templates
from tests.support.digests import digest


def channel(
    url: str, templates: Templates | None = None, sleeps: list[float] | None = None
) -> SlackChannel:
    """A Slack channel to `url`; its pauses between parts are recorded in `sleeps`, not slept."""
    config = ChannelConfig("team-slack", "slack", options={"url": Secret(url), "timeout": 5.0})
    record = sleeps.append if sleeps is not None else lambda seconds: None
    return SlackChannel(config, templates, sleep=record)


@pytest.mark.parametrize("body", ["not json {{ event.summary }}", "{{ event.no_such_key }}"])
def test_a_broken_user_template_is_a_permanent_failure(receiver, tmp_path: Path, body: str) -> None:
    (tmp_path / "slack.json.j2").write_text(body)
    hook = channel(receiver.url, Templates(tmp_path))
    result = hook.send(Message("msg_t", "evt_1", samples.sample_test().to_payload()))
    assert not result.ok and result.permanent and not result.disable
    assert "slack.json.j2" in result.error
    assert receiver.received == []


def test_posts_the_rendered_message_as_json(receiver) -> None:
    payload = samples.models_changed().to_payload()
    result = channel(receiver.url).send(Message("msg_1", "evt_1", payload))
    assert result.ok and result.status == 200
    (request,) = receiver.received
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["user-agent"].startswith("llm-model-monitor/")
    assert [request.json()] == render_messages(payload)


def test_parts_are_sent_in_order_and_paced(receiver) -> None:
    sleeps: list[float] = []
    payload = digest(60)
    parts = render_messages(payload)
    result = channel(receiver.url, sleeps=sleeps).send(Message("msg_d", "dig_0001", payload))
    assert result.ok
    assert [r.json() for r in receiver.received] == parts
    assert len(sleeps) == len(parts) - 1
    assert all(0.5 < s <= SlackChannel.MIN_INTERVAL for s in sleeps)


def test_a_retry_resumes_after_the_parts_already_sent(receiver) -> None:
    payload = digest(60)
    parts = render_messages(payload)
    hook = channel(receiver.url)
    receiver.respond_with(200, "ok")
    receiver.respond_with(429, "rate_limited", {"Retry-After": "3"})
    first = hook.send(Message("msg_r", "dig_0001", payload))
    assert not first.ok and first.retry_after == 3.0
    assert first.error.startswith(f"part 2/{len(parts)}: HTTP 429")
    receiver.clear()
    second = hook.send(Message("msg_r", "dig_0001", payload, attempt=2))
    assert second.ok
    assert [r.json() for r in receiver.received] == parts[1:]  # part 1 is not sent twice
