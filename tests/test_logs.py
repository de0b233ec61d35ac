"""Logs as a log shipper reads them: one JSON object per line, one line per check, no secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from monitor.sim import Fault, GatewaySimulator, make_model
from tests.conftest import CANARY


def test_json_lines_one_per_check_without_secrets(
    tmp_path: Path, db_url: str, gateway: GatewaySimulator
) -> None:
    gateway.set_group("default", [make_model("a"), make_model("b")])
    gateway.add_token(CANARY, group="default")
    gateway.add_token("sk-logs-other-token-000000", group="default")
    gateway.inject(Fault.panic(), token="sk-logs-other-token-000000")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ndatabase = "{db_url}"\n\n'
        f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n'
        '[[tokens]]\nname = "good"\nsource = "gw"\ntoken_env = "LOG_TOKEN"\n\n'
        '[[tokens]]\nname = "broken"\nsource = "gw"\ntoken = "sk-logs-other-token-000000"\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "-v",
            "--log-format",
            "json",
            "--config",
            str(config),
            "check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_TOKEN": CANARY},
    )
    assert done.returncode == 3
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    checks = [r["message"] for r in records if r["logger"] == "monitor.check"]
    assert any("token=good outcome=ok models=2" in m and "duration_ms=" in m for m in checks)
    assert any("token=broken outcome=server status=500" in m for m in checks)
    assert CANARY not in done.stderr + done.stdout
    assert "sk-logs-other-token-000000" not in done.stderr + done.stdout
