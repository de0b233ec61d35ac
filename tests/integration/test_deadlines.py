"""`timeout` bounds a whole exchange, and SIGTERM stops the daemon whatever peers do.

The peers here drip bytes or stall at the socket level (tests/support/misbehaving.py): each
read returns in time, so only a deadline on the whole exchange can end them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from monitor.config.model import ChannelConfig, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import ErrorKind, FetchError
from monitor.delivery.base import Message
from monitor.delivery.email import EmailChannel
from monitor.delivery.samples import sample_test
from monitor.delivery.webhook import WebhookChannel
from monitor.sources.budget import explain_auth_failure
from monitor.sources.fetch import fetch_models
from tests.support.daemon import start_daemon, stop_daemon, wait_until
from tests.support.misbehaving import (
    OK_HEAD,
    answer,
    drip,
    greeting_first,
    headers_then,
    misbehaving,
    stall,
)

TOKEN = "sk-deadline-canary-0123456789"
LIST = b'{"success":true,"data":[' + b'{"id":"m","owned_by":"x"},' * 200 + b'{"id":"z"}]}'
DRIPPED_HEADERS = drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: yes\r\n" * 200, 0.2)
DRIPPED_BODY = headers_then(OK_HEAD, drip(LIST, 0.2))
UNAUTHORIZED = answer(401, b'{"success":false,"message":"Invalid token"}')
TIMEOUT = 1.0
SLACK = 2.0  # what a deadline may overrun by, scheduling included


def _source(url: str, timeout: float = TIMEOUT) -> SourceConfig:
    return SourceConfig("gw", f"{url}/v1", "new-api", timeout=timeout)


def _token() -> TokenConfig:
    return TokenConfig("t", "gw", Secret(TOKEN))


@contextmanager
def _bounded(limit: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < limit


@pytest.mark.parametrize("behaviour", [DRIPPED_HEADERS, DRIPPED_BODY], ids=["headers", "body"])
def test_a_dripping_gateway_is_cut_off_at_the_timeout(behaviour) -> None:
    with misbehaving({"/v1/models": behaviour}) as server, _bounded(TIMEOUT + SLACK):
        result = fetch_models(_source(server.url), _token(), MonitorSettings())
    assert isinstance(result, FetchError) and result.kind is ErrorKind.TIMEOUT
    assert f"within {TIMEOUT:g} s" in result.message


def test_a_stalled_usage_lookup_costs_the_explanation_not_the_time() -> None:
    routes = {"/api/usage/token": headers_then(OK_HEAD + b'{"data": {', stall())}
    with misbehaving(routes) as server, _bounded(TIMEOUT + SLACK):
        assert explain_auth_failure(_source(server.url), _token(), MonitorSettings()) is None
    assert server.hits == ["/api/usage/token/"]


def test_a_broken_usage_body_costs_only_the_explanation() -> None:
    # Headers, then the connection closes in the middle of the body.
    broken = answer(200, b'{"data": {"expires_at"', {"Content-Length": "500"})
    with misbehaving({"/api/usage/token": broken}) as server:
        assert explain_auth_failure(_source(server.url), _token(), MonitorSettings()) is None


def _message() -> Message:
    event = sample_test("deadline")
    return Message("dlv_1", event.id, event.to_payload())


@pytest.mark.parametrize(
    "behaviour",
    [
        DRIPPED_HEADERS,
        headers_then(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", drip(b"o" * 100, 0.2)),
    ],
    ids=["headers", "body"],
)
def test_a_dripping_webhook_receiver_is_cut_off(behaviour) -> None:
    with misbehaving({"/hook": behaviour}) as server:
        channel = WebhookChannel(
            ChannelConfig(
                "hook", "webhook", options={"url": Secret(f"{server.url}/hook"), "timeout": TIMEOUT}
            )
        )
        with _bounded(TIMEOUT + SLACK):
            result = channel.send(_message())
        channel.close()
    # A status line that arrived is the answer; one that never did is a timeout.
    assert result.ok if behaviour is not DRIPPED_HEADERS else result.error == "timed out after 1s"


def test_a_dripping_smtp_server_is_cut_off() -> None:
    banner = drip(b"220 " + b"slow " * 200 + b"\r\n", 0.2)
    with greeting_first(banner) as port:
        options = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": "none",
            "from": "mm@example.com",
            "to": ["ops@example.com"],
            "timeout": TIMEOUT,
        }
        channel = EmailChannel(ChannelConfig("mail", "email", options=options))
        with _bounded(TIMEOUT + SLACK):
            result = channel.send(_message())
    assert not result.ok and not result.permanent
    assert result.error and result.error.startswith("timed out after 1s")


# -- the daemon stops within 5 s of SIGTERM, whatever its peers are doing -------------------


def _daemon_config(tmp_path: Path, gateway: str, channel: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "sqlite:///{tmp_path / "monitor.db"}"
interval = "1s"
jitter = "0s"
timeout = "60s"

[[sources]]
name = "gw"
base_url = "{gateway}/v1"
flavor = "new-api"

[[tokens]]
name = "t"
source = "gw"
token_env = "DEADLINE_TOKEN"
{channel}
"""
    )
    return config


def _webhook(url: str) -> str:
    return f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{url}/hook"\ntimeout = "60s"\n'


SCENARIOS = {
    # what the gateway does, what the channel does, the path that must be reached first
    "models-headers-drip": ({"/v1/models": DRIPPED_HEADERS}, None, "/v1/models"),
    "models-body-drip": ({"/v1/models": DRIPPED_BODY}, None, "/v1/models"),
    "usage-stall": (
        {"/v1/models": UNAUTHORIZED, "/api/usage/token": headers_then(OK_HEAD, stall())},
        None,
        "/api/usage/token/",
    ),
    "webhook-reply-drip": (
        {"/v1/models": UNAUTHORIZED, "/hook": DRIPPED_HEADERS},
        "webhook",
        "/hook",
    ),
    "smtp-drip": ({"/v1/models": UNAUTHORIZED}, "smtp", "/v1/models"),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_daemon_stops_within_5_s_of_sigterm(tmp_path: Path, scenario: str) -> None:
    routes, channel_kind, reached = SCENARIOS[scenario]
    with ExitStack() as stack:
        server = stack.enter_context(misbehaving(routes))
        channel = ""
        smtp_hits: list[float] = []
        if channel_kind == "webhook":
            channel = _webhook(server.url)
        elif channel_kind == "smtp":
            banner = drip(b"220 " + b"slow " * 2000 + b"\r\n", 0.2)

            def counted(conn, banner=banner) -> None:
                smtp_hits.append(time.monotonic())
                banner(conn)

            port = stack.enter_context(greeting_first(counted))
            channel = (
                '[[channels]]\nname = "mail"\ntype = "email"\nsmtp_host = "127.0.0.1"\n'
                f'smtp_port = {port}\nsecurity = "none"\nfrom = "mm@example.com"\n'
                'to = ["ops@example.com"]\ntimeout = "60s"\n'
            )
        config = _daemon_config(tmp_path, server.url, channel)
        daemon = start_daemon(config, {"DEADLINE_TOKEN": TOKEN})
        try:
            wait_until(
                lambda: smtp_hits if channel_kind == "smtp" else reached in server.hits,
                20,
                f"the daemon to reach {reached}",
            )
            time.sleep(0.5)  # well inside the exchange
        finally:
            stopped = stop_daemon(daemon, timeout=30)
        assert stopped.seconds < 5, stopped.err
        assert stopped.returncode == 0, stopped.err
        assert "daemon stopped" in stopped.err
        assert TOKEN not in stopped.out + stopped.err
