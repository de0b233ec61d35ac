"""Every JSON the command line prints is strict RFC 8259, whatever came in: a gateway (a
plain-socket server) sends NaN and -1e999 as values, and `check` and `models` show them by
name, inside strings, in documents a strict reader accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.json_check import strict
from tests.support.misbehaving import answer, misbehaving


def test_non_finite_numbers_from_upstream_are_shown_by_name(tmp_path: Path) -> None:
    body = b'{"success":true,"data":[{"id":"m","owned_by":NaN},{"id":"n","owned_by":-1e999}]}'
    with misbehaving({"/v1/models": answer(200, body)}) as server:
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "sqlite:///{tmp_path / "monitor.db"}"

[[sources]]
name = "gw"
base_url = "{server.url}/v1"
flavor = "one-api"

[[tokens]]
name = "t"
source = "gw"
token_env = "STRICT_TOKEN"
"""
        )

        def cli(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "monitor", "--config", str(config), *args],
                env={**os.environ, "STRICT_TOKEN": "sk-strict-0123456789"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        strict(cli("check", "--format", "json"))
    models = strict(cli("models", "--format", "json"))
    assert isinstance(models, list)
    owned = {m["model"] if "model" in m else m["id"]: m for m in models}
    assert "NaN" in json.dumps(owned["m"]) and "-Infinity" in json.dumps(owned["n"])
