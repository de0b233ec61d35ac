"""A database filled by real checks against the gateway simulator, served by a real
listener: the world the status-page, feed and report tests look at.

Upstream strings are hostile here: model ids, an owner and an endpoint type that are
HTML, and the canary token value, which must never appear anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.runtime.cycle import Checker
from monitor.runtime.listener import HealthAnswer, Listener
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from monitor.web.app import StatusPages
from tests.support.canary import CANARY

XSS = "<img src=x onerror=alert(1)>"
QUOTES = "a\"b'&c</td>"
HOSTILE_TYPE = "<script>alert(2)</script>"
CONTROL = "bell\x07id"  # not text in HTML or XML: shown as U+FFFD
B_TOKEN = "sk-web-test-token-b-0000000000000"
C_TOKEN = "sk-web-test-token-c-1111111111111"

BASE = [
    make_model("gpt-4o", ("openai",)),
    make_model("claude-3-5-sonnet", ("anthropic", "openai"), owned_by="anthropic"),
    make_model("old-model", ("openai",)),
]
AFTER = [
    make_model("gpt-4o", ("openai",)),
    make_model("claude-3-5-sonnet", ("anthropic", "openai"), owned_by="anthropic"),
    make_model(XSS, ("openai", HOSTILE_TYPE), owned_by=QUOTES),
    make_model(QUOTES, ("openai",)),
    make_model(CONTROL, ("openai",)),
]


@dataclass
class World:
    db: Database
    listener: Listener
    gateway: GatewaySimulator
    checker: Checker

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(f"{self.listener.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def fill(gateway: GatewaySimulator, db: Database, receiver: WebhookReceiver) -> Checker:
    """Three tokens, a baseline, then one cycle with every kind of change and a failure;
    deliveries left dead (HTTP 400) and pending (nobody listening)."""
    gateway.add_token(CANARY, models=BASE)
    gateway.add_token(B_TOKEN, models=BASE)
    gateway.add_token(C_TOKEN, models=BASE)
    channels = [
        webhook_channel("hook-dead", receiver.url),
        webhook_channel("hook-down", "http://127.0.0.1:9/hook"),
    ]
    config = sim_config(
        gateway.base_url,
        {"team-a": CANARY, "team-b": B_TOKEN, "team-c": C_TOKEN},
        channels=channels,
        confirm_checks=1,
    )
    checker = Checker(config, db)
    checker.check()  # the silent baseline
    # team-a: old-model removed, two hostile models added, gpt-4o gains an endpoint type.
    gateway.set_models(CANARY, [make_model("gpt-4o", ("openai", "openai-response")), *AFTER[1:]])
    gateway.set_models(B_TOKEN, AFTER)
    gateway.expire_token(C_TOKEN)  # team-c: 401 -> token.failing at once
    checker.check()
    receiver.respond_with(400, body=b"no thanks", times=None)
    Dispatcher(config, db, build_channels(config)).run_once()
    return checker


@contextmanager
def served_world(
    db_url: str, gateway: GatewaySimulator, receiver: WebhookReceiver
) -> Iterator[World]:
    """`fill` a fresh database and serve its pages on a listener (port 0)."""
    db = open_database(db_url)
    try:
        checker = fill(gateway, db, receiver)
        pages = StatusPages(db, checker.config)
        with Listener(
            "127.0.0.1:0", health=lambda: HealthAnswer(True, {}), pages=pages
        ) as listener:
            yield World(db, listener, gateway, checker)
    finally:
        db.close()
