"""Sending, the stage between claim and record: one attempt at one delivery.

Paces each channel (Slack takes about one message a second) and turns whatever a channel
does, including raising, into a `SendResult`: a channel bug fails that delivery, which
is retried, and never the dispatcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.delivery.base import Channel, Message, SendResult

log = logging.getLogger("monitor.delivery")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process holds the lease on, with the payload its channel sees."""

    id: str
    event_id: str
    channel: str
    attempts: int  # made before this one
    payload: dict[str, Any]


class Sender:
    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self.channels = channels
        self._last_sent: dict[str, float] = {}
        self._lock = threading.Lock()

    def send(self, delivery: Claimed) -> SendResult:
        name = delivery.channel
        channel = self.channels.get(name)
        if channel is None:
            return SendResult(ok=False, error=f"channel {name!r} is not in the config")
        self._pace(name, channel.MIN_INTERVAL)
        message = Message(delivery.id, delivery.event_id, delivery.payload, delivery.attempts + 1)
        try:
            return channel.send(message)
        except Exception as exc:  # a channel bug must not stop the other deliveries
            log.exception("channel %s raised while sending %s", name, delivery.id)
            return SendResult(ok=False, error=f"internal error: {type(exc).__name__}")

    def _pace(self, name: str, interval: float) -> None:
        """Waits until `interval` seconds have passed since this channel's last message."""
        with self._lock:
            last = self._last_sent.get(name)
        if interval and last is not None:
            wait = last + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        with self._lock:
            self._last_sent[name] = time.monotonic()
