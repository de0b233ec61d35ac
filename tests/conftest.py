"""Shared fixtures: real databases (SQLite files, PostgreSQL schemas), a gateway simulator,
a webhook receiver and SMTP servers on loopback, and a writer for config files. Helpers
that are not fixtures live in tests/support/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from monitor.sim import GatewaySimulator, WebhookReceiver
from tests.support.ports import free_port
from tests.support.postgres import postgres_schema
from tests.support.smtp_sink import Collector

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests about SQLite itself; everything else takes `db_url` and runs on both."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture
def gateway() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=1) as sim:
        yield sim


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a TOML config file and return its path."""

    def write(body: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Collector, int]]]:
    """Start aiosmtpd servers on loopback: start(handler, **kwargs) -> (handler, port), the
    kwargs going to aiosmtpd's Controller (TLS contexts, authenticators)."""
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
