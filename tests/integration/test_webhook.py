"""The webhook channel on the wire: Standard Webhooks headers, signatures checked by the
reference verifier, and every payload valid against the published JSON Schema. Answers,
timeouts and the example under docs/, as for every channel: tests/contract/test_channels.py."""

from __future__ import annotations

import base64

import pytest
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.config import ChannelConfig, Secret
from monitor.delivery.base import Message
from monitor.delivery.webhook import WebhookChannel
from monitor.events import load_event_schema

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
