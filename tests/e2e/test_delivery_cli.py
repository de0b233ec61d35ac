"""Delivery as an operator sees it: channels that fail independently, `deliveries` to
inspect and replay, `status` warnings, and `notify-test`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitor.config import ChannelConfig, Secret
from monitor.core.clock import utcnow
from monitor.delivery import samples
from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.delivery.routing import enqueue
from monitor.sim import WebhookReceiver
from monitor.sim.config import sim_config
from monitor.store.database import open_database


def test_a_dead_slack_webhook_does_not_delay_email(db_url: str, smtp_server) -> None:
    mailbox, port = smtp_server()
    with WebhookReceiver() as slack:
        slack.respond_with(503, delay=3.0, times=None)  # a Slack that hangs, then fails
        channels = [
            ChannelConfig(
                "ops-slack", "slack", options={"url": Secret(slack.url), "timeout": 10.0}
            ),
            ChannelConfig(
                "ml-mail",
                "email",
                options={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "security": "none",
                    "from": "model-monitor <alerts@example.com>",
                    "to": ("ml@example.com",),
                    "timeout": 5.0,
                    "subject_prefix": "[model-monitor]",
                },
            ),
        ]
        config = sim_config("http://unused/v1", {"team-a": "x", "team-b": "y"}, channels=channels)
        db = open_database(db_url)
        with db.session() as session:
            enqueue(session, config, samples.models_changed(), utcnow())
        dispatcher = Dispatcher(config, db, build_channels(config))
        started = time.monotonic()
        worker = threading.Thread(target=dispatcher.run_once)
        worker.start()
        while not mailbox.received and time.monotonic() - started < 5:
            time.sleep(0.02)
        mail_after = time.monotonic() - started
        worker.join(timeout=15)
        db.close()
    assert len(mailbox.received) == 1
    assert mail_after < 1.5, f"email waited {mail_after:.1f}s for Slack"
    assert len(slack.received) == 1


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CLI_TOKEN": "sk-cli-token-1"},
    )


def write_config(tmp_path: Path, db_url: str, gateway_url: str, hook_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "{db_url}"

[[sources]]
name = "gw"
base_url = "{gateway_url}"

[[tokens]]
name = "t"
source = "gw"
token_env = "CLI_TOKEN"

[[channels]]
name = "hook"
type = "webhook"
url = "{hook_url}"
"""
    )
    return config


def test_dead_delivery_is_listed_and_replayed_after_the_fix(
    tmp_path: Path, db_url: str, gateway, receiver
) -> None:
    from monitor.sim import make_model

    gateway.set_group("default", [make_model("a"), make_model("b")])
    gateway.add_token("sk-cli-token-1", group="default")
    config = write_config(tmp_path, db_url, gateway.base_url, receiver.url)
    assert run(config, "check").returncode == 0
    gateway.set_group("default", [make_model("a"), make_model("b"), make_model("c")])
    receiver.respond_with(400, body="invalid_payload")
    assert run(config, "check").returncode == 0

    dead = run(config, "deliveries", "--state", "dead").stdout
    assert "hook" in dead and "HTTP 400" in dead
    delivery_id = dead.splitlines()[1].split()[0]
    attempts = run(config, "deliveries", "--id", delivery_id).stdout
    assert "failed" in attempts and "400" in attempts

    replay = run(config, "deliveries", "--retry", delivery_id)
    assert replay.returncode == 0, replay.stderr
    assert "1 sent" in replay.stdout
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id


def test_a_gone_channel_shows_up_in_status(tmp_path: Path, db_url: str, gateway, receiver) -> None:
    from monitor.sim import make_model

    gateway.set_group("default", [make_model("a")])
    gateway.add_token("sk-cli-token-1", group="default")
    config = write_config(tmp_path, db_url, gateway.base_url, receiver.url)
    run(config, "check")
    gateway.set_group("default", [make_model("a"), make_model("b")])
    receiver.respond_with(410, body="gone")
    run(config, "check")
    status = run(config, "status").stdout
    assert "WARNING: channel hook disabled" in status
    assert "HTTP 410" in status


def test_notify_test_reports_each_channel(tmp_path: Path, receiver) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[[channels]]
name = "good"
type = "webhook"
url = "{receiver.url}"

[[channels]]
name = "broken"
type = "webhook"
url = "http://127.0.0.1:9/nothing-listens-here"
"""
    )
    done = run(config, "notify-test")
    assert done.returncode == 3
    assert "good (webhook): ok" in done.stdout
    assert "broken (webhook): FAILED: connection failed" in done.stdout
    (request,) = receiver.received
    assert request.json()["type"] == "test"
    only = run(config, "notify-test", "--channel", "good")
    assert only.returncode == 0
    assert "broken" not in only.stdout
