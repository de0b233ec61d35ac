"""Logs as a log shipper and as journald read them: one JSON object per line with the
check's and the delivery's fields as keys, one line per check, no secret; under systemd,
sd-daemon priority prefixes and no timestamp of their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from monitor.sim import Fault, GatewaySimulator, WebhookReceiver, make_model
from tests.support.canary import CANARY

OTHER = "sk-logs-other-token-000000"
REVOKED = "sk-logs-revoked-token-1111111"
SIGNING = "whsec_bG9nLWZpZWxkLXNlY3JldC0wMTIzNDU2Nzg5YWJjZA=="
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def write_config(
    tmp_path: Path, db_url: str, gateway: GatewaySimulator, receiver: WebhookReceiver | None
) -> Path:
    """Three tokens: good, broken (HTTP 500) and revoked (HTTP 401: token.failing at
    once, delivered to the webhook when there is one)."""
    gateway.set_group("default", [make_model("a"), make_model("b")])
    gateway.add_token(CANARY, group="default")
    gateway.add_token(OTHER, group="default")
    gateway.add_token(REVOKED, group="default")
    gateway.inject(Fault.panic(), token=OTHER)
    gateway.expire_token(REVOKED)
    channel = (
        f'\n[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
        if receiver
        else ""
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ndatabase = "{db_url}"\n\n'
        f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n'
        '[[tokens]]\nname = "good"\nsource = "gw"\ntoken_env = "LOG_TOKEN"\n\n'
        f'[[tokens]]\nname = "broken"\nsource = "gw"\ntoken = "{OTHER}"\n\n'
        f'[[tokens]]\nname = "revoked"\nsource = "gw"\ntoken = "{REVOKED}"\n{channel}'
    )
    return config


def check(config: Path, *options: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *options, "--config", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_TOKEN": CANARY, **kwargs.pop("env", {})},  # type: ignore[dict-item]
        **kwargs,  # type: ignore[arg-type]
    )


def check_into_pipe(config: Path, *options: str, journal: str | None) -> tuple[int, str]:
    """`check` with its stderr on a pipe of ours; JOURNAL_STREAM set to `journal`, where
    "pipe" means the pipe's own device:inode, as systemd sets it for the journal's stream."""
    read, write = os.pipe()
    stat = os.fstat(write)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal is not None:
        env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}" if journal == "pipe" else journal
    env["LOG_TOKEN"] = CANARY
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", *options, "--config", str(config), "check"],
        stdout=subprocess.DEVNULL,
        stderr=write,
        env=env,
    ) as process:
        os.close(write)
        with os.fdopen(read, encoding="utf-8") as pipe:
            err = pipe.read()
        code = process.wait(timeout=60)
    return code, err


def test_json_lines_carry_the_fields_as_keys_without_secrets(
    tmp_path: Path, db_url: str, gateway: GatewaySimulator, receiver: WebhookReceiver
) -> None:
    config = write_config(tmp_path, db_url, gateway, receiver)
    done = check(config, "-v", "--log-format", "json")
    assert done.returncode == 3
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    checks = {r["token"]: r for r in records if r["logger"] == "monitor.check" and "token" in r}
    assert set(checks) == {"good", "broken", "revoked"}
    good, broken, revoked = checks["good"], checks["broken"], checks["revoked"]
    # The message says what it always said; the same facts are keys of their own.
    assert good["message"].startswith("check source=gw token=good outcome=ok models=2 ")
    assert {k: good[k] for k in ("source", "outcome", "models", "changes", "baseline")} == {
        "source": "gw",
        "outcome": "ok",
        "models": 2,
        "changes": 0,
        "baseline": True,
    }
    assert isinstance(good["duration_ms"], int) and good["level"] == "info"
    assert "token=broken outcome=server status=500" in broken["message"]
    assert (broken["outcome"], broken["status"], broken["level"]) == ("server", 500, "warning")
    assert (revoked["outcome"], revoked["status"]) == ("auth", 401)
    assert "Invalid token" in revoked["error"]
    # The delivery of the token.failing event, with its own fields.
    (sent,) = [r for r in records if r.get("result") == "sent"]
    assert sent["logger"] == "monitor.delivery" and sent["message"].startswith("delivery ")
    assert (sent["channel"], sent["attempt"], sent["status"]) == ("hook", 1, 200)
    assert sent["delivery"] in sent["message"]
    assert len(receiver.received) == 1
    assert CANARY not in done.stderr + done.stdout
    assert OTHER not in done.stderr + done.stdout
    assert REVOKED not in done.stderr + done.stdout
    assert receiver.url not in done.stderr


def test_a_secret_in_a_field_is_masked_before_encoding(
    tmp_path: Path, sqlite_url: str, gateway: GatewaySimulator, receiver: WebhookReceiver
) -> None:
    """A gateway's error message holding a configured secret (here the webhook's signing
    secret, which nothing upstream should know): the `error` field is masked, as the
    message is."""
    config = write_config(tmp_path, sqlite_url, gateway, receiver)
    config.write_text(config.read_text() + f'secret = "{SIGNING}"\n')
    gateway.inject(Fault.http(500, message=f"bad request {SIGNING}"), token=CANARY)
    done = check(config, "--log-format", "json")
    records = [json.loads(line) for line in done.stderr.splitlines()]
    (good,) = [r for r in records if r.get("token") == "good"]
    assert good["outcome"] == "server"
    assert "bad request *** (request id: " in good["error"]
    assert "bad request *** (request id: " in good["message"]
    assert SIGNING.removeprefix("whsec_") not in done.stderr


def test_under_the_journal_lines_carry_priorities_and_no_timestamp(
    tmp_path: Path, sqlite_url: str, gateway: GatewaySimulator
) -> None:
    config = write_config(tmp_path, sqlite_url, gateway, None)
    code, err = check_into_pipe(config, journal="pipe")
    assert code == 3
    lines = err.splitlines()
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert not any(TIMESTAMP.match(line[3:]) for line in lines)  # journald stamps them
    assert "<6>INFO    monitor.check: check source=gw token=good outcome=ok models=2 " in err
    assert "<4>WARNING monitor.check: check source=gw token=broken outcome=server" in err
    assert CANARY not in err

    # JSON lines too: the prefix is what journald strips; the rest is the JSON object.
    code, err = check_into_pipe(config, "--log-format", "json", journal="pipe")
    for line in err.splitlines():
        prefix, body = line[:3], line[3:]
        record = json.loads(body)
        assert prefix == {"info": "<6>", "warning": "<4>", "error": "<3>"}[record["level"]]
    assert '<4>{"time"' in err


def test_without_the_journal_the_usual_lines(
    tmp_path: Path, sqlite_url: str, gateway: GatewaySimulator
) -> None:
    """No JOURNAL_STREAM, or one naming another file (inherited by a process whose stderr
    was redirected): timestamps, no prefixes."""
    config = write_config(tmp_path, sqlite_url, gateway, None)
    other = os.stat(config)  # some other file
    for journal in (None, f"{other.st_dev}:{other.st_ino}", "garbage"):
        code, err = check_into_pipe(config, journal=journal)
        assert code == 3
        lines = err.splitlines()
        assert lines and all(TIMESTAMP.match(line) for line in lines), (journal, lines)
        assert not any(line.startswith("<") for line in lines)
        assert " INFO    monitor.check: check source=gw token=good outcome=ok" in err
