"""Probes as operators use them: the installed command from cron and the daemon, on both
backends, against the simulator's call routes and a real webhook receiver. A listed model
without a channel is reported unavailable once, with its status and code, and available
once when it answers again; skipped types are never called and no token goes over its
budget, by the simulator's own counts; without `probe = true` nothing is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from monitor.events import payload_errors
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from tests.support.daemon import start_daemon, stop_daemon, wait_until
from tests.support.ports import free_port

TOKENS = {"team-a": "sk-probe-e2e-a-0123456789abcdef", "team-b": "sk-probe-e2e-b-0123456789abcd"}
MODELS = [
    make_model("gpt-4o"),
    make_model("gpt-4o-mini"),
    make_model("text-embedding-3-small", ["embeddings"]),
    make_model("dall-e-3", ["image-generation"]),
    make_model("bge-reranker", ["jina-rerank"]),
]
SKIPPED = {"dall-e-3", "bge-reranker"}
BUDGET = 9


def _env(name: str) -> str:
    return name.upper().replace("-", "_")


ENV = {_env(name): value for name, value in TOKENS.items()}


def _config(
    path: Path,
    db_url: str,
    gateway: GatewaySimulator,
    receiver: WebhookReceiver,
    *,
    probe: bool = True,
    monitor: str = "",
) -> Path:
    probing = (
        f'probe = true\nprobe_delay = "0s"\nprobe_recheck = "0s"\nprobe_budget = {BUDGET}\n'
        if probe
        else ""
    )
    tokens = "".join(
        f'[[tokens]]\nname = "{name}"\nsource = "gw"\ntoken_env = "{_env(name)}"\n\n'
        for name in TOKENS
    )
    path.write_text(
        f'[monitor]\ndatabase = "{db_url}"\n{monitor}\n'
        f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n{probing}\n'
        f"{tokens}"
        f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
    )
    return path


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        env={"PATH": os.environ.get("PATH", ""), **ENV},  # a cron-like environment
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _probe_changes(receiver: WebhookReceiver) -> list[dict]:
    found = []
    for request in receiver.received:
        payload = request.json()
        assert payload_errors(payload) == [], payload
        found += [c for c in payload["changes"] if c["type"] in ("unavailable", "available")]
    return found


def _within_budget(gateway: GatewaySimulator) -> None:
    calls = gateway.calls()
    assert not {c.model for c in calls} & SKIPPED
    per_token = Counter(c.token for c in calls)
    assert per_token and max(per_token.values()) <= BUDGET, per_token


def test_from_cron_unavailable_once_then_available_once(tmp_path: Path, db_url: str) -> None:
    with GatewaySimulator(seed=17) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        for value in TOKENS.values():
            gateway.add_token(value)
        gateway.set_verdict("gpt-4o", "no_channel")
        config = _config(tmp_path / "config.toml", db_url, gateway, receiver)

        plan = _cli(config, "config", "check").stdout
        assert "probes: every listed model every 1d" in plan and f"{BUDGET} per token" in plan

        for _ in range(3):  # a probe, its confirmation, and one more: said once
            done = _cli(config, "-q", "check")
            assert done.stdout == "" and done.stderr == ""  # cron mails nothing
        said = _probe_changes(receiver)
        assert len(said) == 1, said
        (change,) = said
        assert change["type"] == "unavailable" and change["model"] == "gpt-4o"
        assert change["tokens"] == ["team-a", "team-b"]
        assert change["error"]["status"] == 503 and change["error"]["code"] == "model_not_found"
        assert "request id" not in change["error"]["message"]

        assert "listed but not callable" in _cli(config, "history").stdout
        assert "probes: 1 listed model not callable" in _cli(config, "status").stdout
        status = json.loads(_cli(config, "status", "--format", "json").stdout)
        assert {(u["token"], u["model"]) for u in status["unavailable"]} == {
            ("team-a", "gpt-4o"),
            ("team-b", "gpt-4o"),
        }
        uncallable = json.loads(_cli(config, "probes", "--unavailable", "--format", "json").stdout)
        assert [u["error"]["code"] for u in uncallable] == ["model_not_found"] * 2
        sent = json.loads(_cli(config, "probes", "--format", "json").stdout)
        assert len(sent) == len(gateway.calls())
        assert {s["result"] for s in sent} == {"ok", "unavailable"}
        assert {s["status"] for s in sent} == {200, 503}

        gateway.set_verdict("gpt-4o", None)
        for _ in range(3):
            _cli(config, "-q", "check")
        said = _probe_changes(receiver)
        assert [(c["type"], c["model"]) for c in said] == [
            ("unavailable", "gpt-4o"),
            ("available", "gpt-4o"),
        ]
        assert said[1]["tokens"] == ["team-a", "team-b"]
        assert "probes:" not in _cli(config, "status").stdout
        _within_budget(gateway)


def test_the_budget_holds_across_cron_runs(tmp_path: Path, db_url: str) -> None:
    with GatewaySimulator(seed=20) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", [make_model(f"chat-{i:02}") for i in range(30)])
        for value in TOKENS.values():
            gateway.add_token(value)
        config = _config(tmp_path / "config.toml", db_url, gateway, receiver)
        for _ in range(3):
            _cli(config, "-q", "check")
        assert Counter(c.token for c in gateway.calls()) == dict.fromkeys(TOKENS.values(), BUDGET)
        assert receiver.received == []  # every model answers: nothing to say
        listed = _cli(config, "probes").stdout
        assert f"team-a: {BUDGET} of {BUDGET} probes in the last 24 hours" in listed
        assert f"team-b: {BUDGET} of {BUDGET} probes" in listed


def test_probes_are_off_unless_asked_for(tmp_path: Path, sqlite_url: str) -> None:
    with GatewaySimulator(seed=18) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        for value in TOKENS.values():
            gateway.add_token(value)
        config = _config(tmp_path / "config.toml", sqlite_url, gateway, receiver, probe=False)
        for _ in range(2):
            _cli(config, "-q", "check")
        assert gateway.calls() == []
        assert gateway.polls() == 4
        assert _cli(config, "probes").stdout.startswith("no probes sent since")
        assert "probes:" not in _cli(config, "config", "check").stdout


def test_the_daemon_reports_each_verdict_once_and_counts_its_probes(
    tmp_path: Path, db_url: str
) -> None:
    port = free_port()
    with GatewaySimulator(seed=19) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        for value in TOKENS.values():
            gateway.add_token(value)
        gateway.set_verdict("text-embedding-3-small", "no_channel")
        monitor = f'interval = "1s"\njitter = "0s"\nlisten = "127.0.0.1:{port}"\n'
        config = _config(tmp_path / "config.toml", db_url, gateway, receiver, monitor=monitor)
        daemon = start_daemon(config, ENV, stdout=subprocess.DEVNULL)
        try:
            wait_until(lambda: _probe_changes(receiver), 30, "the unavailable change")
            gateway.set_verdict("text-embedding-3-small", None)
            wait_until(lambda: len(_probe_changes(receiver)) >= 2, 30, "the available change")
            polls = gateway.polls()
            wait_until(lambda: gateway.polls() >= polls + 4, 30, "more checks")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                metrics = page.read().decode()
        finally:
            stopped = stop_daemon(daemon)
        assert stopped.returncode == 0, stopped.err
        said = _probe_changes(receiver)
        assert [(c["type"], c["model"]) for c in said] == [
            ("unavailable", "text-embedding-3-small"),
            ("available", "text-embedding-3-small"),
        ]
        assert said[0]["error"]["code"] == "model_not_found"
        _within_budget(gateway)
        counted = {
            line.split("result=")[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("model_monitor_probes_total{")
        }
        assert counted.get("unavailable", 0) >= 2 and counted.get("ok", 0) >= 1
        assert sum(counted.values()) <= len(gateway.calls())
        assert "sk-probe-e2e" not in stopped.err
