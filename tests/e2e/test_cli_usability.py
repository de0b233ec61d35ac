"""The command line as users meet it: `diff` in words, repeatable and checked --token and
--source, `init` on an existing file, the starter config, `config check`'s lists, and the
help and shell completion. Real runs of the CLI against the gateway simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.sim import make_model
from monitor.sources.registry import FLAVORS
from tests.support.cli_world import GPT5, MODELS, TOKEN_B, world_at

pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_diff_reads_as_text_and_as_one_json_document(tmp_path: Path, sqlite_url: str) -> None:
    with world_at(tmp_path, sqlite_url) as (gateway, _, cli):
        cli("check")
        gateway.set_group(
            "default",
            [
                make_model("model-0", owned_by="azure"),
                make_model("model-1", ("openai", "anthropic")),
                GPT5,
            ],
        )
        cli("check")
        text = cli("diff", "--token", "team-a").stdout.splitlines()
    assert text[1].endswith(
        "(3 models): 1 added, 1 removed, 1 endpoint types changed, 1 field changed"
    )
    assert text[2:] == [
        "  + gpt-5 [openai, openai-response]",
        "  ~ model-0 owned_by: openai -> azure",
        "  ~ model-1 endpoint types: +anthropic",
        "  - model-2",
    ]
    assert not [line for line in text if "{" in line or "'" in line]  # no Python reprs


def test_tokens_and_sources_are_repeatable_and_checked(tmp_path: Path, sqlite_url: str) -> None:
    with world_at(tmp_path, sqlite_url) as (gateway, _, cli):
        cli("check")
        gateway.set_group("default", [*MODELS, GPT5])
        gateway.expire_token(TOKEN_B)
        cli("check", code=3)

        both = cli("models", "--token", "team-a", "--token", "team-b", "--format", "csv").stdout
        assert {row.split(",")[0] for row in both.splitlines()[1:]} == {"team-a", "team-b"}
        history = cli("history", "--token", "team-b", "--token", "team-a").stdout
        assert "[baseline] gw/team-a" in history and "[baseline] gw/team-b" in history
        assert "team-b failing on gw" in history
        only_b = cli("history", "--token", "team-b", "--source", "gw").stdout
        assert "[baseline] gw/team-a" not in only_b and "[baseline] gw/team-b" in only_b

        for args in (
            ("models", "--token", "team-a", "--token", "nope"),
            ("history", "--token", "nope"),
            ("diff", "--token", "nope"),
            ("check", "--token", "nope"),
        ):
            done = cli(*args, code=78)
            assert done.stderr == "error: no token named nope (configured: team-a, team-b)\n"
            assert done.stdout == ""
        done = cli("history", "--source", "nope", "--source", "gone", code=78)
        assert done.stderr == "error: no sources named nope, gone (configured: gw)\n"

        # Without a config, the names the database recorded are what exists.
        bare = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "MODEL_MONITOR_CONFIG": ""}
        done = run("--database", sqlite_url, "history", "--token", "nope", env=bare)
        assert done.returncode == 78, done.stderr
        assert done.stderr == (
            "error: no token named nope in the database (recorded: team-a, team-b)\n"
        )


def test_a_second_init_says_plainly_that_the_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert run("init", str(path)).returncode == 0
    again = run("init", str(path))
    assert again.returncode == 78
    assert again.stderr == (
        f"error: {path} already exists; not overwriting it (remove it or give another path)\n"
    )

    text = path.read_text()
    start = text.index("flavor =")
    flavor_lines = text[start : text.index("[[tokens]]", start)]
    assert all(flavor in flavor_lines for flavor in FLAVORS), flavor_lines
    assert "model-monitor init --example" in text
    assert "source repository" not in text


def test_config_check_lists_events_and_globs_as_text(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "https://hooks.example/x"\n'
        'events = ["models.changed", "token.failing"]\nmodels = ["gpt-*", "claude-*"]\n'
    )
    done = run("--config", str(path), "config", "check")
    assert done.returncode == 0, done.stderr
    assert "  hook: webhook events=models.changed,token.failing models=gpt-*,claude-*" in (
        done.stdout.splitlines()
    )
    assert "[" not in done.stdout.split("channels (1):")[1]


def test_help_names_the_config_lookup_and_completion_works(tmp_path: Path) -> None:
    shown = run("--help").stdout
    for place in (
        "--config PATH",
        "$MODEL_MONITOR_CONFIG",
        "$CONFIGURATION_DIRECTORY/config.toml",
        "$XDG_CONFIG_HOME/model-monitor/config.toml",
        "/etc/model-monitor/config.toml",
        "_MODEL_MONITOR_COMPLETE=bash_source model-monitor",
    ):
        assert place in shown, place
    lookup = [shown.index(p) for p in ("--config PATH", "$MODEL_MONITOR_CONFIG", "/etc/")]
    assert lookup == sorted(lookup)

    script = run(env={"_MODEL_MONITOR_COMPLETE": "bash_source"})
    assert script.returncode == 0
    assert "complete -o nosort -F _model_monitor_completion model-monitor" in script.stdout

    config = tmp_path / "config.toml"
    config.write_text(
        '[[tokens]]\nname = "team-a"\nsource = "gw"\ntoken_env = "UNSET_FOR_COMPLETION"\n\n'
        '[[tokens]]\nname = "team-b"\nsource = "gw"\ntoken_env = "UNSET_FOR_COMPLETION"\n'
    )
    words = f"model-monitor --config {config} models --token team"
    offered = run(
        env={
            "_MODEL_MONITOR_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
    )
    assert offered.stdout.splitlines() == ["plain,team-a", "plain,team-b"]
