"""`model-monitor run`: scheduled checks, deliveries, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.runtime.daemon import cron_trigger
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.store.database import open_database
from monitor.store.schema import Check
from tests.support.daemon import start_daemon, stop_daemon, wait_until

TOKEN = "sk-daemon-token-0123456789abcdef"
MODELS = [make_model(f"m-{i}") for i in range(5)]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # 2026-11-26 is a Thursday.
        (
            "0 9 * * 0",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
            datetime(2026, 11, 29, 9, tzinfo=UTC),
        ),
        (
            "0 9 * * 7",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
            datetime(2026, 11, 29, 9, tzinfo=UTC),
        ),
        (
            "0 9 * * 1-5",
            datetime(2026, 11, 27, 10, tzinfo=UTC),
            datetime(2026, 11, 30, 9, tzinfo=UTC),
        ),
        (
            "0 9 * * 0-2",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
            datetime(2026, 11, 29, 9, tzinfo=UTC),
        ),
        (
            "30 8 * * 5-7",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
            datetime(2026, 11, 27, 8, 30, tzinfo=UTC),
        ),
        (
            "*/10 * * * *",
            datetime(2026, 11, 26, 10, 1, tzinfo=UTC),
            datetime(2026, 11, 26, 10, 10, tzinfo=UTC),
        ),
    ],
)
def test_cron_weekdays_mean_what_cron_means(
    expression: str, after: datetime, expected: datetime
) -> None:
    assert cron_trigger(expression).get_next_fire_time(None, after) == expected


@pytest.mark.slow
def test_daemon_checks_on_schedule_delivers_and_stops_cleanly(tmp_path: Path, db_url: str) -> None:
    with GatewaySimulator(seed=5) as gateway, WebhookReceiver() as receiver:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{db_url}"
interval = "1s"
jitter = "0s"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

[[tokens]]
name = "t"
source = "gw"
token_env = "DAEMON_TOKEN"

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.url}"
"""
        )
        daemon = start_daemon(config, {"DAEMON_TOKEN": TOKEN})
        try:
            wait_until(lambda: gateway.polls(TOKEN) >= 2, 20, "two checks")
            gateway.set_group("default", [*MODELS, make_model("fresh")])
            (request,) = receiver.wait_for(1, timeout=15)
            assert [c["model"] for c in request.json()["changes"]] == ["fresh"]
        finally:
            stopped = stop_daemon(daemon)
        assert stopped.returncode == 0, stopped.err
        assert stopped.seconds < 5
        assert "daemon stopped" in stopped.err
        assert TOKEN not in stopped.out + stopped.err

    db = open_database(db_url)
    with db.reader() as session:
        checks = session.scalar(select(func.count()).select_from(Check))
    db.close()
    assert checks is not None and checks >= 3
    assert checks == gateway.polls(TOKEN)  # every poll recorded: none cut in half


@pytest.mark.slow
def test_status_reads_while_the_daemon_writes(tmp_path: Path, db_url: str) -> None:
    """Readers never wait for, nor block, the daemon's writes (SQLite in WAL mode)."""
    from concurrent.futures import ThreadPoolExecutor

    with GatewaySimulator(seed=6) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[monitor]\ndatabase = "{db_url}"\ninterval = "0.2s"\njitter = "0s"\n\n'
            f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\n\n'
            '[[tokens]]\nname = "t"\nsource = "gw"\ntoken_env = "DAEMON_TOKEN"\n'
        )
        env = {**os.environ, "DAEMON_TOKEN": TOKEN}
        daemon = start_daemon(config, env, stdout=subprocess.DEVNULL)
        try:
            wait_until(lambda: gateway.polls(TOKEN) >= 2, 20, "two checks")

            def status(_: int) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-m", "monitor", "--config", str(config), "status"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )

            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(status, range(8)))
            checks_meanwhile = gateway.polls(TOKEN)
        finally:
            stopped = stop_daemon(daemon)
        assert stopped.returncode == 0, stopped.err
    for done in results:
        assert done.returncode == 0, done.stderr
        assert "gw" in done.stdout and " t " in done.stdout
    assert checks_meanwhile >= 4  # the daemon kept writing while they read


def test_retention_prunes_old_history(db_url: str) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from monitor.core.clock import utcnow
    from monitor.delivery.outbox import Dispatcher
    from monitor.runtime.cycle import Checker
    from monitor.runtime.daemon import Daemon
    from monitor.sim.config import sim_config

    with GatewaySimulator(seed=2) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN, group="default")
        config = sim_config(gateway.base_url, {"t": TOKEN})
        config = replace(config, monitor=replace(config.monitor, retention=7 * 86400.0))
        db = open_database(db_url)
        old = utcnow() - timedelta(days=30)
        Checker(config, db, clock=lambda: old).check()
        gateway.set_group("default", MODELS[1:])
        Checker(config, db, clock=lambda: old).check()
        checker = Checker(config, db)
        checker.check()
        Daemon(config, checker, Dispatcher(config, db, {}))._prune()
        with db.reader() as session:
            remaining = session.scalars(select(Check.started_at)).all()
        db.close()
    assert len(remaining) == 1 and remaining[0] > old
