"""The usage route's rate limit as cron meets it: 100 tokens on one new-api source, `check`
run again and again by the installed command; the simulator counts what it was asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from monitor.sim import GatewaySimulator, make_model

TOKENS = {f"T{i:03d}": f"sk-many-{i:03d}-{'z' * 24}" for i in range(100)}


def test_a_hundred_tokens_never_exceed_the_usage_routes_limit(tmp_path: Path, db_url: str) -> None:
    with GatewaySimulator(seed=5) as gateway:
        gateway.set_group("default", [make_model("gpt-4o")])
        for value in TOKENS.values():
            gateway.add_token(value)
        entries = "\n".join(
            f'[[tokens]]\nname = "{name.lower()}"\nsource = "gw"\ntoken_env = "{name}"\n'
            for name in TOKENS
        )
        config = tmp_path / "config.toml"
        config.write_text(
            f'[monitor]\ndatabase = "{db_url}"\nbudget_interval = "0s"\n\n'
            f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n{entries}'
        )
        env = {**os.environ, **TOKENS}
        for _ in range(3):
            done = subprocess.run(
                [sys.executable, "-m", "monitor", "--config", str(config), "-q", "check"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
        usage = [r for r in gateway.requests if r.path == "/api/usage/token/"]
        assert len(usage) == 18  # the allowance of 20 minutes, then nothing until it passes
        assert all(r.status == 200 for r in usage)
        assert gateway.max_usage_in_window(1200.0) == 18
        assert gateway.polls() == 300  # every models check went out
        assert not any(value in done.stdout + done.stderr for value in TOKENS.values())
