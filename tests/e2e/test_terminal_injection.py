"""Hostile model ids on a terminal: what a gateway sends is shown, never obeyed.

A gateway (the simulator on loopback) lists models whose ids carry terminal control
sequences (clear screen, an OSC 52 clipboard write, an OSC 8 link), CR, NUL, BEL, C1 and
bidi controls, and a newline followed by a line that imitates our own output. The CLI runs
under a pseudo-terminal, stdout and stderr both on it, as someone at a shell would run it:
`check` with a stdout channel, `models`, `diff`, `history`, `status`. No control byte may
reach the terminal, no forged line may start a line, and each sequence must be visible as
its escape. The text part of an email gets the same treatment; JSON and CSV keep the ids
exact.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.printable import json_text, printable, printable_data
from monitor.delivery import samples
from monitor.sim import Fault, GatewaySimulator, make_model
from tests.support.smtp_sink import bodies, deliver, email_channel

pytestmark = pytest.mark.slow

FORGED = "FAKE: gw/team-a: ok, 0 models"
HOSTILE = [
    "clear\x1b[2J\x1b[Hscreen",
    "clip\x1b]52;c;cm0gLXJmIH4=\x07board",
    "link\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "over\rwrite",
    "nul\x00byte",
    f"fake\n{FORGED}",
    "csi\x9b2Jc1",
    "rev\u202egnp.exe",
    "line\u2028sep",
]
PLAIN = [make_model(f"model-{i}") for i in range(3)]
TOKEN = "sk-pty-token-0123456789abcdef"
BROKEN = "sk-pty-broken-0123456789abcdef"


def test_printable_rules() -> None:
    assert printable("gpt-4o") == "gpt-4o"
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("\x00\x07\x7f\x85\x9b") == "\\x00\\x07\\x7f\\x85\\x9b"
    assert printable("rev\u202eabc\u2028\u2029\u200b\ufeff") == (
        "rev\\u202eabc\\u2028\\u2029\\u200b\\ufeff"
    )
    assert printable("tag\U000e0041") == "tag\\U000e0041"
    assert printable("caf\u00e9 \u6a21\u578b a\\b") == "caf\u00e9 \u6a21\u578b a\\b"  # kept
    assert printable_data({"k\n": ["v\x1b", 1, None]}) == {"k\\n": ["v\\x1b", 1, None]}
    value = {"id": "x\x9b\u202e\x7f\U000e0041\x1b"}
    encoded = json_text(json.dumps(value, ensure_ascii=False))
    assert encoded.isascii() and json.loads(encoded) == value


class Terminal:
    """Runs the CLI with stdout and stderr on a pseudo-terminal; returns what it showed."""

    def __init__(self, tmp: Path, config: Path) -> None:
        self.config = config
        self.env = {
            **os.environ,
            "PTY_TOKEN": TOKEN,
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_CONFIG_HOME": str(tmp / "xdg"),
            "TERM": "xterm-256color",
            "COLUMNS": "200",
        }

    def __call__(self, *args: str, exit_code: int = 0, logs: bool = True) -> bytes:
        """`logs=False` sends stderr elsewhere: the terminal then shows stdout alone."""
        master, slave = pty.openpty()
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "monitor", "-v", "--config", str(self.config), *args],
                stdin=subprocess.DEVNULL,
                stdout=slave,
                stderr=slave if logs else subprocess.DEVNULL,
                env=self.env,
            )
        finally:
            os.close(slave)
        shown = bytearray()
        try:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(master)
        assert child.wait(timeout=60) == exit_code, shown.decode(errors="replace")
        return bytes(shown)


def assert_inert(shown: bytes) -> None:
    text = shown.decode("utf-8")  # also: nothing undecodable reached the terminal
    for byte, name in ((b"\x1b", "ESC"), (b"\x00", "NUL"), (b"\x07", "BEL")):
        assert byte not in shown, f"{name} reached the terminal:\n{text}"
    assert not re.search(rb"\r(?!\n)", shown), f"a bare CR reached the terminal:\n{text}"
    for char in ("\x9b", "\x7f", "\u202e", "\u2028"):
        assert char not in text, f"{char!r} reached the terminal"
    lines = text.replace("\r\n", "\n").split("\n")
    assert not [line for line in lines if line.lstrip().startswith("FAKE:")], text


@pytest.fixture
def terminal(tmp_path: Path, sqlite_url: str):
    with GatewaySimulator(seed=5) as gateway:
        gateway.set_group("default", PLAIN)
        gateway.add_token(TOKEN, group="default")
        gateway.add_token(BROKEN, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{sqlite_url}"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"
flavor = "new-api"

[[tokens]]
name = "team-a"
source = "gw"
token_env = "PTY_TOKEN"

[[tokens]]
name = "team-b"
source = "gw"
token = "{BROKEN}"

[[channels]]
name = "terminal"
type = "stdout"
"""
        )
        yield gateway, Terminal(tmp_path, config)


def test_hostile_ids_are_shown_not_obeyed_on_a_terminal(terminal) -> None:
    gateway, run = terminal
    assert_inert(run("check"))  # the baseline
    gateway.set_group("default", [*PLAIN, *(make_model(i) for i in HOSTILE)])
    # team-b fails with a hostile message: error text reaches the summary, logs and status.
    gateway.inject(Fault.success_false("db \x1b[2J error\nFAKE: x"), token=BROKEN)

    shown = {
        "check": run("check", exit_code=3),
        "models": run("models"),
        "diff": run("diff", "--token", "team-a"),
        "history": run("history"),
        "status": run("status"),
    }
    for command, output in shown.items():
        try:
            assert_inert(output)
        except AssertionError as exc:
            raise AssertionError(f"`{command}`: {exc}") from None

    # Every id is there, as its visible escape: in the stdout channel's event, in the table,
    # in the diff, in the history.
    for command in ("check", "models", "diff", "history"):
        text = shown[command].decode()
        for model_id in HOSTILE:
            assert printable(model_id) in text, (command, model_id, text)
    assert "clear\\x1b[2J\\x1b[Hscreen" in shown["models"].decode()
    assert f"fake\\n{FORGED}" in shown["check"].decode()
    assert "rev\\u202egnp.exe" in shown["history"].decode()
    assert "team-b" in shown["status"].decode()


def test_json_and_csv_keep_the_exact_ids(terminal) -> None:
    gateway, run = terminal
    gateway.set_group("default", [*PLAIN, *(make_model(i) for i in HOSTILE)])
    run("check")
    shown = run("models", "--format", "json", logs=False)
    assert_inert(shown)  # JSON escapes every control character it carries
    listed = json.loads(shown.decode().replace("\r\n", "\n"))
    assert {m["id"] for m in listed} >= set(HOSTILE)

    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(run.config), "models", "--format", "csv"],
        capture_output=True,
        env=run.env,
        timeout=60,
        check=True,
    )
    rows = list(csv.reader(io.StringIO(done.stdout.decode(), newline="")))
    assert {row[1] for row in rows[1:]} >= set(HOSTILE)  # CSV is data: exact values


def test_the_email_text_part_shows_control_characters(smtp_server) -> None:
    server, port = smtp_server()
    payload = samples.models_changed(model_id=f"fake\x1b[2J\x07\n{FORGED}\r").to_payload()
    payload["summary"] = "1 added on gw\u202e\x00"
    assert deliver(email_channel(port), payload).ok
    (got,) = server.received
    text = bodies(got.mail)[0].replace("\r\n", "\n")  # SMTP's line ends
    for char in ("\x1b", "\x07", "\x00", "\r", "\u202e"):
        assert char not in text
    assert not [line for line in text.split("\n") if line.lstrip().startswith("FAKE:")]
    assert f"fake\\x1b[2J\\x07\\n{FORGED}\\r" in text
    assert "1 added on gw\\u202e\\x00" in text
