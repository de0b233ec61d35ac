"""Channel types by name. Adding a channel: one module, one line here, one test file."""

from __future__ import annotations

from monitor.delivery.base import Channel
from monitor.delivery.stdout import StdoutChannel
from monitor.delivery.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    "stdout": StdoutChannel,
    "webhook": WebhookChannel,
}
