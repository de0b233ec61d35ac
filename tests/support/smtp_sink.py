"""A real SMTP server for tests (aiosmtpd on loopback, keeping every message it accepts),
and the email channel as the tests point it at one. The `smtp_server` fixture that starts
servers is in tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from monitor.config import ChannelConfig
from monitor.delivery.base import Message, SendResult
from monitor.delivery.email import EmailChannel

RECIPIENTS = ("ml-team@example.com", "Ops Team <ops@example.com>")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail: EmailMessage
    raw: bytes


@dataclass
class Collector:
    """aiosmtpd handler: keeps every message; canned replies stand in for picky servers."""

    received: list[Received] = field(default_factory=list)
    data_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        mail = message_from_bytes(envelope.content, policy=default_policy)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), mail, envelope.content)
        self.received.append(received)
        return "250 Message accepted for delivery"


def email_channel(port: int, **options: Any) -> EmailChannel:
    """The email channel `ml-mail` to a server on loopback `port`, in plain text unless
    `options` say otherwise, to the two RECIPIENTS."""
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "security": "none",
        "from": "model-monitor <alerts@example.com>",
        "to": RECIPIENTS,
        "timeout": 5.0,
        "subject_prefix": "[model-monitor]",
        **options,
    }
    return EmailChannel(ChannelConfig("ml-mail", "email", options=values))


def deliver(channel: EmailChannel, payload: Any, delivery_id: str = "dlv_0001") -> SendResult:
    """One delivery of `payload`, as the dispatcher would make it."""
    return channel.send(Message(delivery_id, str(payload.get("id", "evt_x")), payload))


def bodies(mail: EmailMessage) -> tuple[str, str]:
    """The text and the HTML part of a received message."""
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()
