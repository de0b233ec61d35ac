"""What a command loads before it can answer: `--version` and `--help` answer without the
database, HTTP, template or plugin modules (each costs tens of milliseconds at every start),
and `config check` without the database (nor, for a config without channels, the channel
modules). Checked in a fresh interpreter, as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("sqlalchemy", "alembic", "requests", "jinja2", "urllib3", "apscheduler")
PLUGINS = ("monitor.sources.registry", "monitor.delivery.registry")


def _loaded(args: list[str], cwd: Path) -> set[str]:
    code = (
        "import sys\n"
        "from monitor.cli.commands import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    # No database from elsewhere on this machine: the default one lives under cwd.
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / "state")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )
    return set(done.stderr.split())


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["check", "--help"]])
def test_version_and_help_load_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    loaded = _loaded(args, tmp_path)
    assert "monitor.cli.commands" in loaded  # the probe itself worked
    assert not loaded & {*HEAVY, *PLUGINS}, sorted(loaded & {*HEAVY, *PLUGINS})


def test_config_check_loads_no_database_module(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "gw"\nbase_url = "http://127.0.0.1:9/v1"\n\n'
        '[[tokens]]\nname = "a"\nsource = "gw"\ntoken = "sk-startup-0000000000"\n'
    )
    loaded = _loaded(["--config", str(config), "config", "check"], tmp_path)
    assert "monitor.config.load" in loaded
    assert not loaded & {"sqlalchemy", "alembic", "apscheduler", "jinja2", "smtplib"}
