"""`check` draws a progress bar when polling many tokens on a terminal, and nothing else."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.sim import GatewaySimulator, make_model

pytestmark = pytest.mark.slow


def config_for(tmp_path: Path, gateway: GatewaySimulator, tokens: int) -> Path:
    lines = [
        f'[monitor]\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n',
        f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n',
    ]
    for i in range(tokens):
        value = f"sk-progress-{i:04d}-0000000000"
        gateway.add_token(value, group="default")
        lines.append(f'[[tokens]]\nname = "t{i}"\nsource = "gw"\ntoken = "{value}"\n')
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    return path


def test_progress_on_a_terminal_only(tmp_path: Path, gateway: GatewaySimulator) -> None:
    gateway.set_group("default", [make_model("m")])
    config = config_for(tmp_path, gateway, 12)
    argv = [sys.executable, "-m", "monitor", "--config", str(config), "check"]

    piped = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "checking" not in piped.stderr
    assert piped.stdout.count("baseline recorded") == 12

    # `script` gives the command a pseudo-terminal, as a person at a shell would have.
    done = subprocess.run(
        ["script", "-qec", shlex.join(argv), "/dev/null"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TERM": "xterm"},
    )
    assert done.returncode == 0, done.stdout
    assert "checking" in done.stdout
    assert "100%" in done.stdout
