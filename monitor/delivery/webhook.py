"""The webhook channel: the version-1 JSON payload, with Standard Webhooks headers.

`webhook-id` is the delivery id, identical on every retry, so receivers can
deduplicate; `webhook-timestamp` is the time of this attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.config.model import ChannelConfig, Option, Secret
from monitor.core.clock import utcnow
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.post import USER_AGENT, Reply, classify, delivery_session, post
from monitor.delivery.signing import SigningSecretError, secret_key, sign
from monitor.delivery.templates import Templates


class WebhookChannel(Channel):
    OPTIONS: ClassVar = {
        "url": Option("secret", required=True, help="where to POST events"),
        "secret": Option(
            "secret", help="whsec_... signing secret(s), space-separated; enables webhook-signature"
        ),
        "timeout": Option("duration", default=10.0, help="for the whole request and answer"),
    }

    def __init__(self, config: ChannelConfig, templates: Templates | None = None) -> None:
        super().__init__(config, templates)
        url: Secret = config.options["url"]
        secret: Secret | None = config.options.get("secret")
        self._url = url.reveal()
        self._secrets = secret.reveal().split() if secret else []
        self._timeout = float(config.options.get("timeout") or 10.0)
        self._session = delivery_session()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        url = options.get("url")
        if url is not None and not url.reveal().startswith(("http://", "https://")):
            problems.append(("url", "must be an http:// or https:// URL"))
        secret = options.get("secret")
        for value in secret.reveal().split() if secret is not None else ():
            try:
                secret_key(value)
            except SigningSecretError as exc:
                problems.append(("secret", str(exc)))
        return problems

    def render(self, payload: Mapping[str, Any]) -> bytes:
        """The payload itself: receivers get the versioned JSON, not a template's output."""
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    def send(self, message: Message) -> SendResult:
        body = self.render(message.payload)
        timestamp = int(utcnow().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message.delivery_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secrets:
            headers["webhook-signature"] = sign(self._secrets, message.delivery_id, timestamp, body)
        reply = post(self._session, self._url, body, headers, self._timeout)
        return classify(reply) if isinstance(reply, Reply) else reply

    def close(self) -> None:
        self._session.close()
