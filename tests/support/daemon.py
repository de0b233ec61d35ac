"""`model-monitor run` as a subprocess, as an operator starts it, and the waiting around it.

One harness for every test that runs the daemon: it is started with the venv's Python
(`-m monitor`, the console script's code), stopped with a signal, and its output and the
time it took to stop are handed back for the test to judge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


def start_daemon(
    config: Path, env: Mapping[str, str], *, stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """`model-monitor --config CONFIG run`, with `env` on top of this process's environment.

    Standard error is always a pipe (the daemon logs there); pass stdout=DEVNULL when
    nobody reads standard output."""
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        env={**os.environ, **env},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Stopped:
    """How a daemon ended: its exit code, what it wrote, and seconds from signal to exit."""

    returncode: int
    out: str
    err: str
    seconds: float


def stop_daemon(
    daemon: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> Stopped:
    """Send `sig` and wait for the exit, reading both pipes so a chatty daemon never blocks."""
    daemon.send_signal(sig)
    sent = time.monotonic()
    out, err = daemon.communicate(timeout=timeout)
    return Stopped(daemon.returncode, out or "", err or "", time.monotonic() - sent)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail naming `what` if it is not true within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
