"""The stdout channel: a human-readable line per change, for cron mails and terminals."""

from __future__ import annotations

from typing import ClassVar

from monitor.config.model import Option
from monitor.delivery.base import Channel, Message, SendResult


class StdoutChannel(Channel):
    OPTIONS: ClassVar = {}

    def send(self, message: Message) -> SendResult:
        raise NotImplementedError
