"""What every channel type promises, checked on each type in monitor.delivery.registry.

Every sample event (and a digest of them) renders through every type. Where a type has a
destination (all but stdout): an unreachable one is a failure worth retrying that never
shows the channel's secret, and so is one too slow to answer. Types that post over HTTP
(webhook, Slack) classify each answer the same way: whether to retry, whether to stop
using the destination, what it asked to wait, and never a redirect followed. The rendered
examples under docs/examples are exactly what the channels produce.

A type added to the registry fails `test_every_registered_type_is_held_to_this_file`
until it is given its cases here.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ChannelConfig, Secret
from monitor.delivery import samples
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.registry import CHANNELS
from monitor.delivery.slack import SlackChannel, render_messages
from monitor.delivery.stdout import StdoutChannel
from monitor.delivery.webhook import WebhookChannel
from monitor.events import payload_errors
from monitor.sim import WebhookReceiver
from tests.support.digests import digest
from tests.support.ports import free_port
from tests.support.smtp_sink import email_channel

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
CANARY = "secret-path-canary-3b7f"  # the secret part of a channel's URL, or its password


def webhook(url: str, **options: Any) -> Channel:
    return WebhookChannel(
        ChannelConfig("hook", "webhook", options={"url": Secret(url), "timeout": 5.0, **options})
    )


def slack(url: str, **options: Any) -> Channel:
    config = ChannelConfig(
        "team-slack", "slack", options={"url": Secret(url), "timeout": 5.0, **options}
    )
    return SlackChannel(config, sleep=lambda seconds: None)


def apprise(url: str, **options: Any) -> Channel:
    """Apprise's own json:// notifier, posting to `url`."""
    pytest.importorskip("apprise")
    from monitor.delivery.apprise import AppriseChannel

    urls = (url.replace("http://", "json://", 1),)
    return AppriseChannel(ChannelConfig("chat", "apprise", options={"urls": urls, **options}))


# The types that post to a URL, by how a test builds one aimed at a URL.
OVER_HTTP: dict[str, Callable[..., Channel]] = {
    "webhook": webhook,
    "slack": slack,
    "apprise": apprise,
}
WITH_A_DESTINATION = [*OVER_HTTP, "email"]
WITHOUT_A_DESTINATION = ["stdout"]


def send(channel: Channel, payload: dict[str, Any] | None = None) -> SendResult:
    payload = payload or samples.sample_test().to_payload()
    return channel.send(Message("msg_contract", str(payload["id"]), payload))


def test_every_registered_type_is_held_to_this_file() -> None:
    assert sorted(CHANNELS) == sorted([*WITH_A_DESTINATION, *WITHOUT_A_DESTINATION])


# -- rendering -----------------------------------------------------------------------------


def renderer(kind: str) -> Channel:
    """A channel of `kind` for rendering only: nothing is sent, so nothing listens."""
    if kind == "stdout":
        return StdoutChannel(ChannelConfig("console", "stdout"), stream=io.StringIO())
    if kind == "email":
        return email_channel(25)
    return OVER_HTTP[kind]("http://127.0.0.1:9/hook")


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_every_sample_event_and_a_digest_render(kind: str) -> None:
    channel = renderer(kind)
    events = samples.all_payloads()
    for payload in [*events, samples.digest(events)]:
        assert channel.render(payload), (kind, payload["type"])
    channel.close()


# -- destinations that are not there, or too slow --------------------------------------------

REFUSED = {
    "webhook": r"connection failed",
    "slack": r"connection failed",
    "apprise": r"apprise reported a failure .*",
    "email": r"connection refused by 127\.0\.0\.1:\d+.*",
}


@pytest.mark.parametrize("kind", WITH_A_DESTINATION)
def test_an_unreachable_destination_is_retried_without_showing_its_secret(kind: str) -> None:
    port = free_port()  # nobody listens there
    if kind == "email":
        channel = email_channel(port, username="alerts", password=Secret(CANARY))
    else:
        channel = OVER_HTTP[kind](f"http://127.0.0.1:{port}/services/T0/B0/{CANARY}")
    result = send(channel)
    assert not result.ok and not result.permanent
    assert re.fullmatch(REFUSED[kind], result.error), result.error
    assert CANARY not in repr(result)
    assert CANARY not in json.dumps(result.error)


@contextmanager
def too_slow(kind: str) -> Iterator[Channel]:
    """A channel of `kind` with a 0.3 s timeout, to a destination that takes longer."""
    if kind == "email":
        with socket.socket() as listener:  # accepts connections, never greets
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            yield email_channel(listener.getsockname()[1], timeout=0.3)
        return
    with WebhookReceiver() as receiver:
        receiver.respond_with(200, delay=2.0)
        yield OVER_HTTP[kind](receiver.url, timeout=0.3)


TIMED_OUT = {
    "webhook": r"timed out after 0\.3s",
    "slack": r"timed out after 0\.3s",
    "apprise": r"timed out after 0\.3s",
    "email": r".*timed out.*",
}


@pytest.mark.parametrize("kind", WITH_A_DESTINATION)
def test_a_destination_too_slow_to_answer_is_retried(kind: str) -> None:
    with too_slow(kind) as channel:
        result = send(channel)
    assert not result.ok and not result.permanent
    assert re.fullmatch(TIMED_OUT[kind], result.error), result.error


# -- answers over HTTP -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A destination's answer, and what the channel must make of it."""

    status: int
    body: str = ""
    headers: dict[str, str] | None = None
    permanent: bool = False
    disable: bool = False
    retry_after: float | None = None


HERE = {"Location": "{url}"}  # a redirect back to the receiver itself
ANSWERS = [
    ("webhook", Answer(500)),
    ("webhook", Answer(503)),
    ("webhook", Answer(429)),
    ("webhook", Answer(408)),
    ("webhook", Answer(400, permanent=True)),
    ("webhook", Answer(404, permanent=True)),
    ("webhook", Answer(410, permanent=True, disable=True)),
    ("webhook", Answer(302, headers=HERE, permanent=True)),
    ("slack", Answer(200, "not ok")),
    ("slack", Answer(200, "")),
    ("slack", Answer(400, "invalid_payload", permanent=True)),
    ("slack", Answer(403, "action_prohibited", permanent=True)),
    ("slack", Answer(404, "channel_not_found", permanent=True, disable=True)),
    ("slack", Answer(404, "no_service", permanent=True, disable=True)),
    ("slack", Answer(410, "channel_is_archived", permanent=True, disable=True)),
    ("slack", Answer(429, "rate_limited", {"Retry-After": "7"}, retry_after=7.0)),
    ("slack", Answer(500, "rollup_error")),
    ("slack", Answer(503, "")),
    ("slack", Answer(302, "", {"Location": "https://elsewhere.example/"}, permanent=True)),
]


@pytest.mark.parametrize(
    ("kind", "answer"),
    ANSWERS,
    ids=[f"{kind}-{a.status}-{a.body or 'empty'}" for kind, a in ANSWERS],
)
def test_answers_over_http_are_classified(
    receiver: WebhookReceiver, kind: str, answer: Answer
) -> None:
    headers = {k: v.format(url=receiver.url) for k, v in (answer.headers or {}).items()}
    receiver.respond_with(answer.status, answer.body, headers or None)
    result = send(OVER_HTTP[kind](f"{receiver.url}/{CANARY}"))
    assert not result.ok
    assert result.status == answer.status
    assert result.permanent is answer.permanent
    assert result.disable is answer.disable
    assert result.retry_after == answer.retry_after
    if answer.body:
        assert answer.body in result.error
    assert CANARY not in repr(result)
    assert len(receiver.received) == 1  # a redirect is never followed


# -- the rendered examples under docs/ --------------------------------------------------------


def as_json(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def slack_message(payload: dict[str, Any]) -> str:
    (message,) = render_messages(payload)  # one message, as the docs show
    return as_json(message)


@dataclass(frozen=True)
class Example:
    """A file under docs/examples, the payload it shows, and how its channel renders it."""

    name: str
    payload: Callable[[], dict[str, Any]]
    render: Callable[[dict[str, Any]], str]


def changed() -> dict[str, Any]:
    return samples.models_changed().to_payload()


EXAMPLES_SHOWN = [
    # The webhook's body is the versioned payload itself.
    Example("webhook-models-changed.json", changed, as_json),
    Example("slack-models-changed.json", changed, slack_message),
    Example(
        "slack-token-failing.json", lambda: samples.token_failing().to_payload(), slack_message
    ),
    Example("slack-digest.json", lambda: digest(3, numbered=False), slack_message),
    Example(
        "slack-prices-changed.json", lambda: samples.prices_changed().to_payload(), slack_message
    ),
    Example(
        "email-prices-changed.txt",
        lambda: samples.prices_changed().to_payload(),
        lambda p: email_channel(25).render(p)[0],
    ),
    Example(
        "slack-token-expiring.json", lambda: samples.token_expiring().to_payload(), slack_message
    ),
    Example(
        "email-token-quota-low.txt",
        lambda: samples.token_quota_low().to_payload(),
        lambda p: email_channel(25).render(p)[0],
    ),
    Example(
        "email-token-quota-low.html",
        lambda: samples.token_quota_low().to_payload(),
        lambda p: email_channel(25).render(p)[1],
    ),
    Example("email-models-changed.txt", changed, lambda p: email_channel(25).render(p)[0]),
    Example("email-models-changed.html", changed, lambda p: email_channel(25).render(p)[1]),
]


@pytest.mark.parametrize("example", EXAMPLES_SHOWN, ids=[e.name for e in EXAMPLES_SHOWN])
def test_examples_in_docs_are_current(example: Example) -> None:
    """The docs show exactly what is sent; MODEL_MONITOR_UPDATE_EXAMPLES=1 rewrites them."""
    payload = example.payload()
    if payload["type"] != "digest":
        assert payload_errors(payload) == []
    text = example.render(payload)
    path = EXAMPLES / example.name
    if os.environ.get("MODEL_MONITOR_UPDATE_EXAMPLES") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, (
        f"{path} is stale: rerun with MODEL_MONITOR_UPDATE_EXAMPLES=1"
    )


def test_every_example_in_docs_is_checked() -> None:
    shown = {p.name for p in EXAMPLES.iterdir()}
    assert shown == {e.name for e in EXAMPLES_SHOWN}
