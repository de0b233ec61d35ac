"""The apprise channel, through Apprise's own json:// notifier to a real receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ChannelConfig, ConfigError, Secret
from monitor.delivery import samples
from monitor.delivery.apprise import AppriseChannel
from monitor.delivery.base import Message
from monitor.runtime.catalogue import load as load_config

pytest.importorskip("apprise")


def channel(*urls: str, secret_url: str | None = None) -> AppriseChannel:
    options: dict[str, object] = {"urls": urls, "title_prefix": "[model-monitor]"}
    if secret_url:
        options["url"] = Secret(secret_url)
    return AppriseChannel(ChannelConfig("apprise", "apprise", options=options))


def test_event_goes_out_as_title_and_text_body(receiver) -> None:
    event = samples.models_changed()
    result = channel(receiver.url.replace("http://", "json://")).send(
        Message("msg_1", event.id, event.to_payload())
    )
    assert result.ok
    (request,) = receiver.received
    body = request.json()
    assert body["title"] == f"[model-monitor] {event.summary}"
    assert "+ gpt-5" in body["message"] and "- gpt-3.5-turbo" in body["message"]


def test_a_failing_service_is_a_retryable_failure(receiver) -> None:
    receiver.respond_with(500)
    event = samples.token_failing()
    hook = channel(secret_url=receiver.url.replace("http://", "json://"))
    result = hook.send(Message("msg_2", event.id, event.to_payload()))
    assert not result.ok
    assert not result.permanent
    assert "apprise" in result.error


def test_config_rejects_unusable_urls_without_echoing_them(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[channels]]\nname = "chat"\ntype = "apprise"\nurls = ["nonsense-scheme://sk-secret-canary"]\n'
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, {})
    (problem,) = error.value.problems
    assert 'channels[0] "chat": urls: entry 1' in problem
    assert "sk-secret-canary" not in problem
