"""Channel types by name. Adding a channel: one module, one line here, one test file."""

from __future__ import annotations

from monitor.config.model import Config
from monitor.delivery.base import Channel
from monitor.delivery.stdout import StdoutChannel
from monitor.delivery.templates import Templates
from monitor.delivery.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    "stdout": StdoutChannel,
    "webhook": WebhookChannel,
}


def build_channels(config: Config) -> dict[str, Channel]:
    templates = Templates(config.monitor.templates)
    return {c.name: CHANNELS[c.type](c, templates) for c in config.channels}
