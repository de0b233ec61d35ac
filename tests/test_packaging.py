"""What a user installs and runs: the README's commands, the demo, and the wheel's contents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(python3 -m venv .+?)\n```", README)


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    demo, tests = readme_commands()[:2]
    assert demo.endswith("model-monitor demo")
    assert tests.endswith(".venv/bin/pytest")
    assert tests in (ROOT / ".ci" / "run").read_text()  # CI runs exactly the README's command


@pytest.mark.slow
def test_demo_runs_offline_and_shows_what_it_detected() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    out = done.stdout
    assert "baseline recorded silently" in out
    assert "+ gpt-5" in out
    assert "- gpt-3.5-turbo" in out
    assert "gpt-4o endpoint types: +openai-response" in out
    assert "team-beta failing" in out and "team-beta recovered" in out
    assert "the webhook received 4 request(s)" in out
    assert "sk-demo-" not in out + done.stderr


@pytest.mark.slow
def test_the_wheel_ships_migrations_and_db_upgrade_works_from_it(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = tmp_path.glob("model_monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "monitor/_migrations/env.py" in names
        assert any(n.startswith("monitor/_migrations/versions/0001") for n in names)
        assert "monitor/schemas/event-v1.json" in names
        assert "monitor/config/starter.toml" in names
        assert "monitor/templates/event.txt.j2" in names
        archive.extractall(tmp_path / "site")
    database = tmp_path / "fresh.db"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from monitor.cli import main; main()",
            "--database",
            f"sqlite:///{database}",
            "db",
            "upgrade",
        ],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"schema at \d{4}", done.stdout), done.stdout
    assert (
        str(tmp_path / "site" / "monitor" / "_migrations")
        in subprocess.run(
            [
                sys.executable,
                "-c",
                "from monitor.store.database import migrations_dir; print(migrations_dir())",
            ],
            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
