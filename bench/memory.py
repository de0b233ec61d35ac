"""Peak memory (VmHWM) of the daemon polling N tokens x M models.

    .venv/bin/python bench/memory.py [--tokens 1000] [--models 1000] [--cycles 2]
                                     [--latency 0.05] [--interval 30]

Starts the simulated new-api gateway in a child process, writes a config with N literal
tokens (no channels) and runs `model-monitor run` as a subprocess against a fresh SQLite
file. Once --cycles full cycles are in the `checks` table (or --timeout passes) the
daemon gets SIGTERM; its peak resident set (VmHWM from /proc/<pid>/status) is printed.
Linux only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cycle import serve, token_values  # the same simulated gateway, in a child process


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def checks(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM checks").fetchone()[0])
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--interval", type=int, default=30, help="seconds between cycles")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(
        target=serve, args=(child, args.tokens, args.models, args.latency), daemon=True
    )
    server.start()
    try:
        base_url = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.toml"
            db = Path(tmp) / "monitor.db"
            lines = [
                "[monitor]",
                f'interval = "{args.interval}s"',
                'jitter = "0s"',
                "",
                "[[sources]]",
                'name = "gw"',
                f'base_url = "{base_url}"',
                'flavor = "new-api"',
            ]
            for name, value in token_values(args.tokens).items():
                lines += ["", "[[tokens]]", f'name = "{name}"', 'source = "gw"']
                lines.append(f'token = "{value}"')
            config.write_text("\n".join(lines) + "\n")
            command = [
                str(Path(sys.executable).with_name("model-monitor")),
                "--config",
                str(config),
                "--database",
                f"sqlite:///{db}",
                "-q",
                "run",
            ]
            started = time.monotonic()
            daemon = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            peak = rss = 0
            try:
                while time.monotonic() - started < args.timeout and daemon.poll() is None:
                    peak = status_kb(daemon.pid, "VmHWM")
                    rss = status_kb(daemon.pid, "VmRSS")
                    if checks(db) >= args.cycles * args.tokens:
                        break
                    time.sleep(0.5)
                done = checks(db)
            finally:
                if daemon.poll() is None:
                    daemon.send_signal(signal.SIGTERM)
                    daemon.wait(30)
            print(
                f"{args.tokens} tokens x {args.models} models: {done / args.tokens:.1f} cycles "
                f"in {time.monotonic() - started:.0f} s; peak RSS (VmHWM) {peak / 1024:.1f} MB, "
                f"RSS at the end {rss / 1024:.1f} MB (pid {daemon.pid}, exit {daemon.returncode})"
            )
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
