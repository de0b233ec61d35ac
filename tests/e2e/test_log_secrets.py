"""Channel URLs and secrets stay out of `-v` logs, in every spelling, text and JSON alike.

urllib3 logs each request line at `-v`: for a Slack webhook the path is the credential,
and a webhook URL may carry `?token=...`. Receivers here also answer with error bodies
that quote the URL back (the whole URL, the path, the query, JSON-escaped), which the
dispatcher logs. The CLI runs as a subprocess, so the real logging setup is what is tested.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from monitor.runtime import logs
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from tests.support.canary import CANARY

pytestmark = pytest.mark.slow

HOOK_PATH = "hookpath-canary-5e1d7c"
HOOK_QUERY = 'qv-canary"3f\\9b0a'  # a `"` and a `\`: JSON escapes both
SLACK_TEAM, SLACK_BOT, SLACK_KEY = "T0CANARY1", "B0CANARY2", "slackkey-canary-24chars01"
SIGNING = "whsec_Y2FuYXJ5LXNpZ25pbmcta2V5LTAx"
MODELS = [make_model(f"model-{i}") for i in range(3)]


def spellings(secret: str) -> set[str]:
    """How a leaked secret would look in a log line."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret, safe="/:?=&@"),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
    }


def test_a_url_keeps_its_host_and_loses_the_rest() -> None:
    scrub = logs._Scrubber(
        [f"https://hooks.slack.com/services/{SLACK_TEAM}/{SLACK_BOT}/{SLACK_KEY}"]
    )
    line = (
        'https://hooks.slack.com:443 "POST /services/T0CANARY1/B0CANARY2/'
        f'{SLACK_KEY} HTTP/1.1" 200 2'
    )
    assert scrub(line) == 'https://hooks.slack.com:443 "POST /*** HTTP/1.1" 200 2'
    assert scrub(
        f"posting to https://hooks.slack.com/services/T0CANARY1/B0CANARY2/{SLACK_KEY}"
    ) == ("posting to https://hooks.slack.com/***")
    assert scrub(f"key {SLACK_KEY} ok") == "key *** ok"

    url = f"http://127.0.0.1:9/in/{HOOK_PATH}?token={HOOK_QUERY}&v=1"
    scrub = logs._Scrubber([url])
    for leaked, masked in [
        (url, "http://127.0.0.1:9/***"),
        (f"http://127.0.0.1:9/in/{HOOK_PATH}", "http://127.0.0.1:9/***"),
        (f"/in/{HOOK_PATH}?token={HOOK_QUERY}&v=1", "/***"),
        (f"/in/{HOOK_PATH}", "/***"),
        (f"?token={HOOK_QUERY}&v=1", "?***"),
        (f"token={HOOK_QUERY}&v=1", "***"),
        (HOOK_QUERY, "***"),
        (HOOK_PATH, "***"),
        (quote(url, safe=""), "http://127.0.0.1:9/***"),
        (json.dumps(HOOK_QUERY)[1:-1], "***"),
    ]:
        assert scrub(f"<{leaked}>") == f"<{masked}>", leaked


def test_config_secrets_cover_every_channel_secret() -> None:
    from monitor.config import ChannelConfig, Secret

    class Tokens:
        secret = Secret(CANARY)

    class Monitor:
        listen_password = Secret("listen-pw-canary")
        database = "postgresql://mm:db-pw-canary@db.example/mm"

    class Config:
        tokens = (Tokens,)
        monitor = Monitor
        channels = (
            ChannelConfig(
                "w",
                "webhook",
                options={
                    "url": Secret("http://h/x?k=v1"),
                    "secret": Secret(f"{SIGNING} whsec_b3RoZXI="),
                },
            ),
            ChannelConfig("a", "apprise", options={"urls": ["tgram://bot-token-canary/chat"]}),
            ChannelConfig(
                "m", "email", options={"password": Secret("smtp-pw-canary"), "to": ["a@b.example"]}
            ),
        )

    found = logs.config_secrets(Config)  # type: ignore[arg-type]
    assert {
        CANARY,
        CANARY.removeprefix("sk-"),
        "listen-pw-canary",
        "db-pw-canary",
        "http://h/x?k=v1",
        SIGNING,
        SIGNING.removeprefix("whsec_"),
        "whsec_b3RoZXI=",
        "tgram://bot-token-canary/chat",
        "smtp-pw-canary",
    } <= set(found)
    assert "a@b.example" not in found


def test_json_lines_scrub_before_encoding() -> None:
    formatter = logs.JsonFormatter(logs._Scrubber([HOOK_QUERY]))
    record = logging.LogRecord(
        "monitor.x", logging.WARNING, __file__, 1, "got %s", (HOOK_QUERY,), None
    )
    line = formatter.format(record)
    assert json.loads(line)["message"] == "got ***"
    assert all(form not in line for form in spellings(HOOK_QUERY))


def test_text_lines_show_control_characters_after_scrubbing() -> None:
    formatter = logs.TextFormatter(logs._Scrubber(["sec\x1bret-value"]))
    record = logging.LogRecord(
        "monitor.x",
        logging.INFO,
        __file__,
        1,
        "id %s and sec\x1bret-value\nFAKE: x",
        ("a\x1b[2J",),
        None,
    )
    line = formatter.format(record)
    assert line.endswith("monitor.x: id a\\x1b[2J and ***\\nFAKE: x")
    assert "\n" not in line and "\x1b" not in line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_delivery_at_debug_leaks_no_channel_secret(fmt: str, tmp_path: Path) -> None:
    with (
        GatewaySimulator(seed=7) as gateway,
        WebhookReceiver() as hook,
        WebhookReceiver() as slack,
    ):
        gateway.set_group("default", MODELS)
        gateway.add_token(CANARY, group="default")
        hook_path = f"/in/{HOOK_PATH}"
        hook_query = f"token={HOOK_QUERY}&v=1"
        hook_url = f"http://{hook.host}:{hook.port}{hook_path}?{hook_query}"
        slack_path = f"/services/{SLACK_TEAM}/{SLACK_BOT}/{SLACK_KEY}"
        slack_url = f"http://{slack.host}:{slack.port}{slack_path}"
        # Receivers that quote the URL back in their errors, each piece in turn.
        for echo in (
            f"no such hook {hook_url}",
            f"bad path {hook_path} query {hook_query}",
            f'bad token {json.dumps(HOOK_QUERY)} in "?{hook_query}"',
        ):
            hook.respond_with(500, echo)
        for echo in (f"no team at {slack_url}", f"invalid_token {SLACK_KEY}", slack_path):
            slack.respond_with(500, echo)

        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "sqlite:///{tmp_path / "monitor.db"}"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"
flavor = "new-api"

[[tokens]]
name = "team-a"
source = "gw"
token_env = "LOG_TOKEN"

[[channels]]
name = "hook"
type = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"

[[channels]]
name = "team-slack"
type = "slack"
url_env = "SLACK_URL"
"""
        )
        env = {
            **os.environ,
            "LOG_TOKEN": CANARY,
            "HOOK_URL": hook_url,
            "HOOK_SECRET": SIGNING,
            "SLACK_URL": slack_url,
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        }
        command = [sys.executable, "-m", "monitor", "-v", "--log-format", fmt]
        command += ["--config", str(config)]
        stderr = ""
        for cycle in range(4):  # a baseline, then a change per cycle: a delivery per channel
            gateway.set_group("default", [*MODELS, *(make_model(f"new-{i}") for i in range(cycle))])
            done = subprocess.run(
                [*command, "check"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            stderr += done.stderr
        assert len(hook.received) == 3 and len(slack.received) == 3

    if fmt == "json":
        messages = "\n".join(json.loads(line)["message"] for line in stderr.splitlines())
    else:
        messages = stderr
    # The requests were logged, and say where they went, but not the secret part.
    assert f'{hook.host}:{hook.port} "POST /*** HTTP/1.1" 500' in messages
    assert f'{slack.host}:{slack.port} "POST /*** HTTP/1.1" 500' in messages
    assert f"no such hook http://{hook.host}:{hook.port}/***" in messages
    assert "HTTP 500" in messages
    leaked = [
        form
        for secret in (
            CANARY,
            CANARY.removeprefix("sk-"),
            hook_url,
            HOOK_PATH,
            hook_query,
            HOOK_QUERY,
            SLACK_TEAM,
            SLACK_BOT,
            SLACK_KEY,
            SIGNING,
        )
        for form in spellings(secret)
        if form in stderr
    ]
    assert leaked == [], stderr
