"""What the command line promises scripts and cron, checked on every command it has.

Every command with `--format json` is found in the click command tree, so a command added
later is held to the same rules without touching this file: run against a database made
by real checks of the gateway simulator (a baseline, a change, a failure, deliveries to a
webhook and to a stdout channel), its standard output is exactly one strict RFC 8259
document (no NaN or Infinity, nothing before or after it), whatever stdout channels print
meanwhile. And `check -q` says nothing when there is nothing to tell, so cron mails only
when something changed or failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from monitor.cli.commands import cli
from tests.support.cli_world import GPT5, MODELS, TOKEN_B, world_at
from tests.support.json_check import strict

pytestmark = pytest.mark.slow

# Arguments for each run of a command with `--format json`, `{delivery}` standing for a
# delivery id of the stdout channel. A command not named here is run once with none; one
# that needs some fails below until it is given them here. (`check --format json` and
# `deliveries --format json` run before, to make the history these commands show.)
VARIANTS: dict[str, list[list[str]]] = {
    "check": [["--dry-run"]],
    "models": [["--token", "team-a", "--token", "team-b"]],
    "diff": [["--token", "team-a"]],
    "deliveries": [["--id", "{delivery}"], ["--retry", "{delivery}"]],
}


def json_commands() -> list[str]:
    """Every command (`db prune`, by its words) that offers `--format json`."""
    found = []

    def walk(command: click.Command, words: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*words, name])
            return
        for param in command.params:
            if "--format" in getattr(param, "opts", ()) and "json" in getattr(
                param.type, "choices", ()
            ):
                found.append(" ".join(words))

    walk(cli, [])
    return found


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[tuple]:
    with world_at(tmp_path, db_url) as found:
        yield found


@pytest.fixture
def sqlite_world(tmp_path: Path, sqlite_url: str) -> Iterator[tuple]:
    """For what does not depend on the database: fewer runs."""
    with world_at(tmp_path, sqlite_url) as found:
        yield found


def test_every_json_command_prints_one_strict_document(world) -> None:
    gateway, receiver, run = world
    commands = json_commands()
    assert {"check", "models", "history", "diff", "status", "deliveries"} <= set(commands)

    run("check")  # the baseline
    gateway.set_group("default", [*MODELS, GPT5])
    changed = run("check", "--format", "json")
    summary = strict(changed.stdout)
    assert [e["type"] for e in summary["events"]] == ["models.changed"]
    assert "[model-monitor] 1 added on gw" in changed.stderr  # the stdout channel's alert
    gateway.expire_token(TOKEN_B)
    failed = run("check", "--format", "json", code=3)
    assert [e["type"] for e in strict(failed.stdout)["events"]] == ["token.failing"]
    assert "[model-monitor]" in failed.stderr
    assert len(receiver.received) == 2

    listed = strict(run("deliveries", "--format", "json").stdout)
    console = next(d["id"] for d in listed if d["channel"] == "console")
    runs = [
        [*command.split(), *(a.format(delivery=console) for a in extra)]
        for command in commands
        for extra in VARIANTS.get(command, [[]])
    ]

    def document(args: list[str]) -> object:
        code = 3 if args[0] == "check" else 0  # team-b is still failing
        return strict(run(*args, "--format", "json", code=code).stdout)  # one, nothing else

    # Readers at once (it is quicker), then what writes, one at a time.
    writes = [args for args in runs if args[0] == "check" or "--retry" in args]
    with ThreadPoolExecutor(4) as pool:
        reads = [args for args in runs if args not in writes]
        documents = dict(zip(map(" ".join, reads), pool.map(document, reads), strict=True))
    documents |= {" ".join(args): document(args) for args in writes}
    assert len(documents) == len(runs) >= len(commands)

    # What scripts rely on in those documents.
    both = documents["models --token team-a --token team-b"]
    assert {m["token"] for m in both} == {"team-a", "team-b"}
    counts = documents["status"]["deliveries"]
    assert counts == {"pending": 0, "held": 0, "sent": 4, "dead": 0, "batched": 0}
    history = documents["history"]
    assert [(e["type"], e["tokens"]) for e in history if e["type"] == "baseline"] == [
        ("baseline", ["team-a"]),
        ("baseline", ["team-b"]),
    ]
    diff = documents["diff --token team-a"]
    assert diff["summary"] == "1 added"
    assert [(c["type"], c["model"]) for c in diff["changes"]] == [("added", "gpt-5")]
    assert documents[f"deliveries --retry {console}"] == {
        "requeued": 1,
        "sent": 1,
        "retrying": 0,
        "dead": 0,
    }


def test_quiet_check_prints_only_what_changed_or_failed(sqlite_world) -> None:
    gateway, _, run = sqlite_world
    for _ in range(2):  # the baseline is silent, and so is a check that finds no change
        done = run("-q", "check")
        assert (done.stdout, done.stderr) == ("", "")

    gateway.set_group("default", [*MODELS, GPT5])
    changed = run("-q", "check").stdout
    assert "[model-monitor] 1 added on gw" in changed  # the stdout channel's alert
    lines = changed.splitlines()
    assert "gw/team-a: ok, 4 models, 1 added" in lines
    assert "gw/team-b: ok, 4 models, 1 added" in lines
    assert not [line for line in lines if "no changes" in line or line.startswith("deliveries")]

    gateway.expire_token(TOKEN_B)
    failed = run("-q", "check", code=3)
    lines = failed.stdout.splitlines()
    assert any(line.startswith("gw/team-b: FAILED auth") for line in lines)
    assert not [line for line in lines if line.startswith("gw/team-a")]
