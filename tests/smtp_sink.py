"""A real SMTP server for tests: aiosmtpd on loopback, keeping every message it accepts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller


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


def free_port() -> int:
    """aiosmtpd 1.4.6 cannot listen on port 0: ask the kernel for a free port first."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start aiosmtpd servers on loopback: start(**Controller kwargs) -> (handler, port)."""
    controllers: list[Controller] = []

    def start(handler: Collector | None = None, **kwargs: Any) -> tuple[Collector, int]:
        handler = handler or Collector()
        port = free_port()
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs
        )
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()
