"""A world for the command line: a gateway simulator with two tokens (team-a, team-b) on
three models, a webhook receiver, and a config that adds a stdout channel and the webhook,
on a database of the test's choosing; `Cli` runs the installed command against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.sim import GatewaySimulator, WebhookReceiver, make_model

TOKEN_A = "sk-contract-a-1111111111111111111111"
TOKEN_B = "sk-contract-b-2222222222222222222222"
MODELS = [make_model(f"model-{i}") for i in range(3)]
GPT5 = make_model("gpt-5", ("openai", "openai-response"))


class Cli:
    """`model-monitor --config CONFIG ...` in a subprocess, asserting its exit code."""

    def __init__(self, tmp: Path, config: Path) -> None:
        self.config = config
        self.env = {
            **os.environ,
            "CONTRACT_TOKEN_A": TOKEN_A,
            "CONTRACT_TOKEN_B": TOKEN_B,
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_CONFIG_HOME": str(tmp / "xdg"),
        }

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done


@contextmanager
def world_at(tmp_path: Path, url: str) -> Iterator[tuple[GatewaySimulator, WebhookReceiver, Cli]]:
    """The gateway, the receiver and the command line of a world on the database at `url`."""
    with GatewaySimulator(seed=11) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN_A, group="default")
        gateway.add_token(TOKEN_B, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{url}"
failure_threshold = 1

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"
flavor = "new-api"

[[tokens]]
name = "team-a"
source = "gw"
token_env = "CONTRACT_TOKEN_A"

[[tokens]]
name = "team-b"
source = "gw"
token_env = "CONTRACT_TOKEN_B"

[[channels]]
name = "console"
type = "stdout"

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.url}"
"""
        )
        yield gateway, receiver, Cli(tmp_path, config)
