"""`model-monitor` as a user runs it: a subprocess per command, a simulated gateway and a real
webhook receiver on loopback, each database backend, and a canary token that must never leak."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from monitor.events import load_event_schema
from monitor.sim import Fault, GatewaySimulator, WebhookReceiver, make_model
from monitor.store.database import open_database
from monitor.store.schema import Snapshot
from tests.support.canary import CANARY, database_contents

pytestmark = pytest.mark.slow

OTHER = "sk-e2e-other-token-55555555555555"
MODELS = [make_model(f"model-{i}", ("openai",)) for i in range(20)]


class Cli:
    def __init__(self, tmp: Path, config: Path, database: str) -> None:
        self.tmp = tmp
        self.config = config
        self.database = database
        self.env = {
            **os.environ,
            "E2E_TOKEN_A": CANARY,
            "E2E_TOKEN_B": OTHER,
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_CONFIG_HOME": str(tmp / "xdg"),
        }
        self.output: list[str] = []

    def __call__(self, *args: str, check_exit: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "-v", "--config", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.output += [done.stdout, done.stderr]
        if check_exit is not None:
            assert done.returncode == check_exit, done.stdout + done.stderr
        return done


@pytest.fixture
def world(tmp_path: Path, db_url: str):
    with GatewaySimulator(seed=3) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        gateway.add_token(CANARY, group="default")
        gateway.add_token(OTHER, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{db_url}"
failure_threshold = 5

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"
flavor = "new-api"

[[tokens]]
name = "team-a"
source = "gw"
token_env = "E2E_TOKEN_A"

[[tokens]]
name = "team-b"
source = "gw"
token_env = "E2E_TOKEN_B"

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.url}"
"""
        )
        yield gateway, receiver, Cli(tmp_path, config, db_url)


def payloads(receiver: WebhookReceiver) -> list[dict]:
    return [r.json() for r in receiver.received]


def test_check_cycles_report_exactly_what_changed(world, tmp_path: Path) -> None:
    gateway, receiver, cli = world

    cli("check")  # baseline
    cli("check")  # same list, new order
    assert receiver.received == []

    gateway.set_group("default", [*MODELS, make_model("gpt-5", ("openai", "openai-response"))])
    assert cli("check", "--exit-code", check_exit=1).returncode == 1
    (added,) = payloads(receiver)
    assert added["type"] == "models.changed"
    assert [(c["type"], c["model"], c["tokens"]) for c in added["changes"]] == [
        ("added", "gpt-5", ["team-a", "team-b"])
    ]
    assert added["changes"][0]["after"]["endpoint_types"] == ["openai", "openai-response"]

    # Removal: held once by the flap guard, reported on the second absence.
    gateway.set_group("default", [*MODELS[1:], make_model("gpt-5", ("openai", "openai-response"))])
    cli("check")
    assert len(receiver.received) == 1
    cli("check")
    removed = payloads(receiver)[-1]
    assert [(c["type"], c["model"]) for c in removed["changes"]] == [("removed", "model-0")]

    # A broken gateway never turns into removals.
    for fault in (Fault.panic(), Fault.html(502), Fault.success_false("db error")):
        gateway.inject(fault, times=2)
        cli("check", check_exit=3)
    assert len(receiver.received) == 2

    # An expiring token: failing once (auth is immediate), recovered once.
    gateway.expire_token(CANARY)
    cli("check", check_exit=3)
    cli("check", check_exit=3)
    gateway.renew_token(CANARY)
    cli("check")
    cli("check")
    kinds = [p["type"] for p in payloads(receiver)]
    assert kinds == ["models.changed", "models.changed", "token.failing", "token.recovered"]
    failing = payloads(receiver)[2]
    assert failing["tokens"] == ["team-a"]
    assert failing["error"]["kind"] == "auth" and failing["error"]["status"] == 401

    validator = Draft202012Validator(load_event_schema())
    for payload in payloads(receiver):
        validator.validate(payload)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 4

    # The canary token appears nowhere: not in debug logs, the database, or what was sent.
    for text in cli.output:
        assert CANARY not in text
    assert CANARY.encode() not in database_contents(cli.database)
    for request in receiver.received:
        assert CANARY.encode() not in request.body
        assert CANARY not in str(request.headers)

    # The read-only views work on what was recorded.
    status = cli("status").stdout
    assert "team-a" in status and "team-b" in status and "20" in status
    models = cli("models", "--token", "team-a", "--format", "csv").stdout.splitlines()
    assert models[0] == "token,model,endpoint types,other fields" and len(models) == 21
    history = cli("history").stdout
    assert "1 added on gw" in history and "[baseline] gw/team-a" in history
    diff = cli("diff", "--token", "team-a").stdout
    assert "removed" in diff and "model-0" in diff
    deliveries = cli("deliveries", "--state", "sent").stdout
    assert deliveries.count("hook") == 4


def test_dry_run_stores_and_sends_nothing(world, tmp_path: Path) -> None:
    gateway, receiver, cli = world
    cli("check")
    gateway.set_group("default", [*MODELS, make_model("new")])
    out = cli("check", "--dry-run").stdout
    assert "dry run" in out
    assert receiver.received == []
    cli("check")
    assert [c["model"] for c in payloads(receiver)[0]["changes"]] == ["new"]


def test_json_summary(world) -> None:
    import json

    _, _, cli = world
    summary = json.loads(cli("check", "--format", "json").stdout)
    assert [t["token"] for t in summary["tokens"]] == ["team-a", "team-b"]
    assert all(
        t["baseline"] and t["outcome"] == "ok" and t["models"] == 20 for t in summary["tokens"]
    )


def test_bad_config_exits_78_naming_file_table_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\nflavour = "new-api"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert str(config) in done.stderr and "sources[0]" in done.stderr and "flavour" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_error_exits_78() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78


def test_a_token_echoed_as_a_model_id_is_never_stored_or_sent(world) -> None:
    gateway, receiver, cli = world
    cli("check")  # baseline
    # A gateway that puts bearer values into its lists: every token sees the canary as a
    # model id, and the canary's own list also holds it inside an id, without its sk-.
    gateway.set_group("default", [*MODELS, make_model(CANARY)])
    gateway.set_group("a", [*MODELS, make_model(CANARY), make_model(f"x-{CANARY[3:]}")])
    gateway.add_token(CANARY, group="a")
    cli("check")
    shown = cli("models", "--format", "json").stdout
    assert "***" in shown
    changes = [(c["model"], c["tokens"]) for p in payloads(receiver) for c in p["changes"]]
    assert sorted(changes) == [("***", ["team-a", "team-b"]), ("x-***", ["team-a"])]
    sent = b"".join(r.body for r in receiver.received)
    db = open_database(cli.database)
    with db.reader() as session:
        stored = b"".join(zlib.decompress(b) for b in session.scalars(select(Snapshot.body)))
    db.close()
    for place in (shown.encode(), sent, stored, database_contents(cli.database)):
        assert CANARY.encode() not in place and CANARY[3:].encode() not in place
    assert all(CANARY not in text for text in cli.output)
