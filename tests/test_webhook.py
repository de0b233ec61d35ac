"""The webhook channel on the wire: Standard Webhooks headers, signatures checked by the
reference verifier, and every payload valid against the published JSON Schema."""

from __future__ import annotations

import base64
import json

import pytest
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.config import ChannelConfig, Secret
from monitor.delivery.base import Message
from monitor.delivery.webhook import WebhookChannel
from monitor.events import load_event_schema, payload_errors

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"old-secret-old-secret-old-secret").decode()

PAYLOAD = {
    "version": "1",
    "id": "evt_0000000000001",
    "type": "models.changed",
    "occurred_at": "2026-11-26T10:00:00Z",
    "source": {"name": "gw", "base_url": "https://gw.example/v1"},
    "tokens": ["team-a"],
    "summary": "1 added on gw",
    "changes": [
        {
            "type": "added",
            "model": "gpt-5",
            "tokens": ["team-a"],
            "after": {"endpoint_types": ["openai"]},
        }
    ],
}


def channel(url: str, secret: str | None = None) -> WebhookChannel:
    options: dict[str, object] = {"url": Secret(url), "timeout": 5.0}
    if secret:
        options["secret"] = Secret(secret)
    return WebhookChannel(ChannelConfig("hook", "webhook", options=options))


def test_headers_and_body(receiver) -> None:
    result = channel(receiver.url).send(Message("msg_abc", "evt_0000000000001", PAYLOAD))
    assert result.ok and result.status == 200
    (request,) = receiver.received
    assert request.headers["webhook-id"] == "msg_abc"
    assert request.headers["webhook-timestamp"].isdigit()
    assert "webhook-signature" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("llm-model-monitor/")
    assert request.json() == PAYLOAD
    Draft202012Validator(load_event_schema()).validate(request.json())


def test_signature_verifies_with_the_reference_implementation(receiver) -> None:
    channel(receiver.url, SECRET).send(Message("msg_sig", "evt_0000000000001", PAYLOAD))
    (request,) = receiver.received
    assert Webhook(SECRET).verify(request.body, request.headers) == PAYLOAD
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(request.body, request.headers)
    tampered = request.body.replace(b"gpt-5", b"gpt-6")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)


def test_several_secrets_sign_for_rotation(receiver) -> None:
    channel(receiver.url, f"{SECRET} {OLD_SECRET}").send(Message("msg_rot", "evt_1", PAYLOAD))
    (request,) = receiver.received
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (429, False),
        (408, False),
        (400, True),
        (404, True),
        (410, True),
        (302, True),
    ],
)
def test_status_classification(receiver, status: int, permanent: bool) -> None:
    receiver.respond_with(status, headers={"Location": receiver.url} if status == 302 else None)
    result = channel(receiver.url).send(Message("msg_x", "evt_1", PAYLOAD))
    assert not result.ok
    assert result.status == status
    assert result.permanent is permanent
    assert len(receiver.received) == 1  # a redirect is never followed


def test_timeout_is_a_retryable_failure(receiver) -> None:
    receiver.respond_with(200, delay=2.0)
    hook = WebhookChannel(
        ChannelConfig("hook", "webhook", options={"url": Secret(receiver.url), "timeout": 0.3})
    )
    result = hook.send(Message("msg_t", "evt_1", PAYLOAD))
    assert not result.ok and not result.permanent and result.error == "timed out after 0.3s"


def test_the_url_never_appears_in_errors() -> None:
    secret_url = "http://127.0.0.1:9/hooks/T000/B000/secret-path-canary"
    result = channel(secret_url).send(Message("msg_u", "evt_1", PAYLOAD))
    assert not result.ok
    assert "secret-path-canary" not in json.dumps(result.error)


def test_example_in_docs_is_current() -> None:
    """docs/examples shows the exact body; MODEL_MONITOR_UPDATE_EXAMPLES=1 rewrites it."""
    import os
    from pathlib import Path

    from monitor.delivery import samples

    payload = samples.models_changed().to_payload()
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    path = (
        Path(__file__).resolve().parent.parent / "docs" / "examples" / "webhook-models-changed.json"
    )
    if os.environ.get("MODEL_MONITOR_UPDATE_EXAMPLES") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale"
    assert payload_errors(payload) == []
