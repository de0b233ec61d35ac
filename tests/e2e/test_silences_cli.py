"""Silences as operators use them: `silence add` while checks run from cron stops the next
matching delivery (and only that), `history` shows it silenced, and `silence expire`
restores delivery; on both backends, against the simulator and a real webhook receiver."""

from __future__ import annotations

import json
import os
from pathlib import Path

from monitor.events import payload_errors
from monitor.sim import make_model
from tests.support.cli_world import GPT5, MODELS, world_at


def test_a_silence_stops_matching_deliveries_until_it_expires(tmp_path: Path, db_url: str) -> None:
    with world_at(tmp_path, db_url) as (gateway, receiver, cli):
        cli("-q", "check")  # the baseline
        silence_id = cli(
            "silence", "add", "--model", "gpt-5*", "--for", "2h", "--comment", "launch noise"
        ).stdout.strip()
        assert silence_id.startswith("sil_")

        gateway.set_group("default", [*MODELS, GPT5, make_model("o9")])
        cli("-q", "check")
        (request,) = receiver.received  # o9 only: gpt-5 is silenced
        payload = request.json()
        assert payload_errors(payload) == []
        assert [c["model"] for c in payload["changes"]] == ["o9"]
        assert "silenced" not in json.dumps(payload)

        history = cli("history").stdout
        assert f"silenced by {silence_id}" in history and "+ gpt-5" in history
        stored = json.loads(cli("history", "--format", "json").stdout)
        marked = [c for e in stored if "changes" in e for c in e["changes"] if "silenced" in c]
        assert [c["model"] for c in marked] == ["gpt-5"]

        listed = json.loads(cli("silence", "list", "--format", "json").stdout)
        assert [(s["id"], s["model"], s["active"]) for s in listed] == [
            (silence_id, "gpt-5*", True)
        ]
        assert f"silences: 1 active ({silence_id}" in cli("status").stdout
        assert f"silences: 1 active ({silence_id}" in cli("config", "check").stdout

        # Everything under the silence: nothing is delivered at all.
        gateway.set_group("default", [*MODELS, GPT5, make_model("o9"), make_model("gpt-5-mini")])
        cli("-q", "check")
        assert len(receiver.received) == 1

        assert cli("silence", "expire", silence_id).stdout.strip() == f"{silence_id} expired"
        assert json.loads(cli("silence", "list", "--format", "json").stdout) == []
        gateway.set_group(
            "default",
            [*MODELS, GPT5, make_model("o9"), make_model("gpt-5-mini"), make_model("gpt-5-nano")],
        )
        cli("-q", "check")
        assert [c["model"] for c in receiver.received[-1].json()["changes"]] == ["gpt-5-nano"]
        cli("silence", "expire", silence_id, code=78)  # already over


def test_silence_mistakes_are_usage_errors(tmp_path: Path, sqlite_url: str) -> None:
    with world_at(tmp_path, sqlite_url) as (_, _, cli):
        cli("-q", "check")
        for args in (
            ["--for", "1h"],  # no comment
            ["--comment", "x"],  # neither --for nor --until
            ["--comment", "x", "--for", "1h", "--until", "2030-01-01T00:00Z"],
            ["--comment", "x", "--until", "2000-01-01T00:00Z"],
            ["--comment", "x", "--until", "tomorrow"],
            ["--comment", "x", "--for", "1h", "--type", "nonsense"],
        ):
            done = cli("silence", "add", *args, code=78)  # usage errors, as everywhere
            assert "Traceback" not in done.stderr and done.stderr.strip()


def test_a_silence_added_while_the_daemon_runs_holds_until_it_expires(
    tmp_path: Path, db_url: str
) -> None:
    import subprocess
    import sys

    from monitor.sim import GatewaySimulator, WebhookReceiver
    from tests.support.daemon import start_daemon, stop_daemon, wait_until

    token = "sk-silence-daemon-0123456789abcdef"
    base = [make_model(f"m-{i}") for i in range(3)]
    with GatewaySimulator(seed=6) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", base)
        gateway.add_token(token)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[monitor]\ndatabase = "{db_url}"\ninterval = "1s"\njitter = "0s"\n\n'
            f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n'
            '[[tokens]]\nname = "t"\nsource = "gw"\ntoken_env = "SILENCE_TOKEN"\n\n'
            f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
        )

        def cli(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "monitor", "--config", str(config), *args],
                env={**os.environ, "SILENCE_TOKEN": token},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        daemon = start_daemon(config, {"SILENCE_TOKEN": token})
        try:
            wait_until(lambda: gateway.polls(token) >= 2, 20, "the baseline")
            silence_id = cli(
                "silence", "add", "--model", "quiet-*", "--for", "1h", "--comment", "t"
            )
            polls = gateway.polls(token)
            wait_until(lambda: gateway.polls(token) >= polls + 1, 20, "a check after it")
            gateway.set_group("default", [*base, make_model("quiet-1")])
            polls = gateway.polls(token)
            wait_until(lambda: gateway.polls(token) >= polls + 3, 20, "checks that saw it")
            assert receiver.received == []  # silenced: recorded, not delivered
            assert f"silenced by {silence_id}" in cli("history")

            cli("silence", "expire", silence_id)
            gateway.set_group("default", [*base, make_model("quiet-1"), make_model("quiet-2")])
            (request,) = receiver.wait_for(1, timeout=15)
            assert [c["model"] for c in request.json()["changes"]] == ["quiet-2"]
        finally:
            stopped = stop_daemon(daemon)
        assert stopped.returncode == 0, stopped.err
