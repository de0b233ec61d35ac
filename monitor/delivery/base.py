"""What every channel implements, and what the dispatcher hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from monitor.config.model import ChannelConfig, Option
from monitor.delivery.templates import Templates, default_templates


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery attempt: the payload of an event, addressed to one channel.

    `delivery_id` is the idempotency key receivers deduplicate on; it is the same on
    every retry (the webhook-id header, the email Message-ID).
    """

    delivery_id: str
    event_id: str
    payload: Mapping[str, Any]
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt did. A success carries nothing that only a failure can mean."""

    ok: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False  # no point retrying: straight to dead
    retry_after: float | None = None  # seconds the receiver asked us to wait
    disable: bool = False  # the destination is gone for good (410, Slack's 404): stop using it

    def __post_init__(self) -> None:
        if self.ok and (self.permanent or self.disable or self.error or self.retry_after):
            raise ValueError("a successful send has no error, retry or give-up")

    @classmethod
    def success(cls, status: int | None = None) -> SendResult:
        return cls(ok=True, status=status)


class Channel(ABC):
    """A destination for events. Subclasses declare their config keys in OPTIONS.

    `send` gets the version-1 payload of one event, or of a digest (`"type": "digest"`
    with the batched payloads in `events`), and renders it through `self.templates`.
    """

    OPTIONS: ClassVar[Mapping[str, Option]] = {}
    # Seconds to leave between two messages to the same destination (Slack: about 1/s).
    MIN_INTERVAL: ClassVar[float] = 0.0

    def __init__(self, config: ChannelConfig, templates: Templates | None = None) -> None:
        self.config = config
        self.name = config.name
        self.templates = templates or default_templates()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems with option values beyond their type, as (key, how to fix) pairs.

        Called by the config loader, so a bad value is reported with file, table and key.
        """
        return []

    @abstractmethod
    def send(self, message: Message) -> SendResult:
        """Deliver once. Never raises for delivery failures: returns a SendResult."""

    @abstractmethod
    def render(self, payload: Mapping[str, Any]) -> object:
        """What `send` would put on the wire for this payload, without sending it.

        `config check` renders sample events through every channel, so a broken user
        template is found at once rather than at the first real alert.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called when the dispatcher stops."""
