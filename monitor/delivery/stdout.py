"""The stdout channel: a readable block per event, for cron mail and terminals.

Upstream strings reach the template through `printable_data`: a model id holding an ESC
or a newline prints as `\\x1b` or `\\n` instead of driving the terminal or forging a line.

The channel prints to the stream it is handed (`build_channels(config, console=...)`),
or, by default, to standard output as it is when the event is sent. A command whose own
standard output is a document for a program (`check --format json`) hands it standard
error, so the alerts still reach the terminal or the cron mail without breaking the
document.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, TextIO

from monitor.config.model import ChannelConfig
from monitor.core.printable import printable_data
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.templates import Templates

_write_lock = threading.Lock()  # several channels may print at once


class StdoutChannel(Channel):
    OPTIONS: ClassVar = {}

    def __init__(
        self,
        config: ChannelConfig,
        templates: Templates | None = None,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(config, templates)
        self._stream = stream

    def render(self, payload: Mapping[str, Any]) -> str:
        return self.templates.render("event.txt.j2", printable_data(payload))

    def send(self, message: Message) -> SendResult:
        text = self.render(message.payload)
        stream = self._stream or sys.stdout
        with _write_lock:
            stream.write(text.rstrip("\n") + "\n")
            stream.flush()
        return SendResult.success()
