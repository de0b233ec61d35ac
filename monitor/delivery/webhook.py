"""The webhook channel: the JSON payload of SPEC section 6 with Standard Webhooks headers."""

from __future__ import annotations

from typing import ClassVar

from monitor.config.model import Option
from monitor.delivery.base import Channel, Message, SendResult


class WebhookChannel(Channel):
    OPTIONS: ClassVar = {
        "url": Option("secret", required=True, help="where to POST events"),
        "secret": Option("secret", help="whsec_... signing secret; enables webhook-signature"),
        "timeout": Option("duration", default=10.0, help="per request"),
    }

    def send(self, message: Message) -> SendResult:
        raise NotImplementedError
