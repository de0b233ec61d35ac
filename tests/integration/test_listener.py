"""The daemon's HTTP listener: /metrics from real check cycles, /healthz by the schedule,
and `model-monitor run` with `listen` set, stopped by SIGTERM in the middle of a check."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from monitor import __version__
from monitor.config import ConfigError
from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.runtime.cycle import Checker
from monitor.runtime.daemon import Daemon
from monitor.runtime.listener import CycleWatch, HealthAnswer, Listener
from monitor.runtime.metrics import Metrics
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import open_database
from monitor.store.schema import Check
from tests.support.canary import CANARY
from tests.support.clock import Clock
from tests.support.daemon import start_daemon, stop_daemon
from tests.support.ports import free_port

MODELS = [make_model(f"m-{i}") for i in range(5)]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, dict[str, str], Samples]:
    """The /metrics text, each family's type, and every sample by (name, labels)."""
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, types, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def promtool_check(text: str) -> None:
    """`promtool check metrics`: Prometheus's own parser and linter (naming, units, help
    texts) on the exposition; skipped without promtool unless it is required."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("MODEL_MONITOR_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required (MODEL_MONITOR_REQUIRE_PROMTOOL) but not installed")
        return
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


# -- /metrics from real check cycles ------------------------------------------------------


@pytest.fixture
def served(gateway: GatewaySimulator, receiver: WebhookReceiver, db_url: str) -> Iterator:
    """A config with one token and one webhook channel, its Metrics, and a listener."""
    gateway.set_group("default", MODELS)
    gateway.add_token(CANARY, group="default")
    config = sim_config(
        gateway.base_url, {"t": CANARY}, channels=[webhook_channel("hook", receiver.url)]
    )
    db = open_database(db_url)
    metrics = Metrics(db)
    checker = Checker(config, db, metrics=metrics)
    dispatcher = Dispatcher(config, db, build_channels(config), metrics=metrics)
    with Listener(
        "127.0.0.1:0", health=lambda: HealthAnswer(True, {}), metrics=metrics
    ) as listener:
        yield checker, dispatcher, listener
    db.close()


def test_metrics_count_real_checks_events_and_deliveries(served, gateway) -> None:
    checker, dispatcher, listener = served
    assert listener.host == "127.0.0.1"
    checker.check()  # the baseline
    gateway.set_group("default", [*MODELS, make_model("fresh")])
    before = time.time()
    checker.check()  # one model added: one event, one delivery
    _, _, samples = scrape(listener.url)
    assert value(samples, "model_monitor_deliveries", state="pending") == 1
    assert value(samples, "model_monitor_deliveries", state="sent") == 0

    assert dispatcher.run_once().sent == 1
    text, types, samples = scrape(listener.url)
    promtool_check(text)
    assert types == {
        "process_virtual_memory_bytes": "gauge",
        "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds": "counter",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
        "python_info": "gauge",
        "model_monitor_build_info": "gauge",
        "model_monitor_token_failing": "gauge",
        "model_monitor_checks": "counter",
        "model_monitor_check_duration_seconds": "histogram",
        "model_monitor_models": "gauge",
        "model_monitor_last_success_timestamp_seconds": "gauge",
        "model_monitor_last_cycle_timestamp_seconds": "gauge",
        "model_monitor_cycle_failures": "counter",
        "model_monitor_events": "counter",
        "model_monitor_probes": "counter",
        "model_monitor_delivery_attempts": "counter",
        "model_monitor_database_up": "gauge",
        "model_monitor_deliveries": "gauge",
    }
    assert value(samples, "model_monitor_checks_total", source="gw", outcome="ok") == 2
    assert value(samples, "model_monitor_check_duration_seconds_count", source="gw") == 2
    assert value(samples, "model_monitor_models", source="gw", token="t") == len(MODELS) + 1
    success = value(samples, "model_monitor_last_success_timestamp_seconds", source="gw", token="t")
    assert success is not None and before - 1 <= success <= time.time() + 1
    assert value(samples, "model_monitor_events_total", source="gw", type="models.changed") == 1
    assert (
        value(samples, "model_monitor_delivery_attempts_total", channel="hook", result="sent") == 1
    )
    assert value(samples, "model_monitor_deliveries", state="pending") == 0
    assert value(samples, "model_monitor_deliveries", state="sent") == 1
    assert value(samples, "model_monitor_database_up") == 1
    version = {"version": __version__, "python": platform.python_version()}
    assert value(samples, "model_monitor_build_info", **version) == 1
    assert [k for k in samples if k[0] == "model_monitor_build_info"] == [
        ("model_monitor_build_info", frozenset(version.items()))
    ]
    assert value(samples, "process_start_time_seconds") > 0
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 0

    gateway.expire_token(CANARY)
    checker.check()  # a failed check: counted by outcome, the model gauge keeps its value
    text, _, samples = scrape(listener.url)
    promtool_check(text)
    assert value(samples, "model_monitor_checks_total", source="gw", outcome="auth") == 1
    assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 1
    assert value(samples, "model_monitor_models", source="gw", token="t") == len(MODELS) + 1
    assert (
        value(samples, "model_monitor_last_success_timestamp_seconds", source="gw", token="t")
        == success
    )
    assert CANARY not in text


def test_metrics_restore_token_gauges_from_the_database(served, gateway) -> None:
    checker, _, _ = served
    checker.check()
    fresh = Metrics(checker.db)
    fresh.restore(checker.db, checker.config)
    with Listener("127.0.0.1:0", health=lambda: HealthAnswer(True, {}), metrics=fresh) as listener:
        _, _, samples = scrape(listener.url)
    assert value(samples, "model_monitor_models", source="gw", token="t") == len(MODELS)
    assert value(samples, "model_monitor_last_success_timestamp_seconds", source="gw", token="t")
    assert value(samples, "model_monitor_checks_total", source="gw", outcome="ok") is None
    assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 0

    gateway.expire_token(CANARY)
    checker.check()  # 401: failing at once
    restarted = Metrics(checker.db)
    restarted.restore(checker.db, checker.config)
    counting = Checker(checker.config, checker.db, metrics=restarted)
    with Listener(
        "127.0.0.1:0", health=lambda: HealthAnswer(True, {}), metrics=restarted
    ) as listener:
        _, _, samples = scrape(listener.url)
        assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 1
        counting.check()  # still failing: no new token.failing event, the gauge stays 1
        _, _, samples = scrape(listener.url)
        assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 1
        gateway.renew_token(CANARY)
        counting.check()  # recovered
        _, _, samples = scrape(listener.url)
        assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 0


def test_only_get_and_head_on_two_paths(served) -> None:
    _, _, listener = served
    assert requests.get(f"{listener.url}/", timeout=5).status_code == 404
    assert requests.get(f"{listener.url}/metrics/extra", timeout=5).status_code == 404
    assert requests.get(f"{listener.url}/metrics?name[]=x", timeout=5).status_code == 200
    head = requests.head(f"{listener.url}/metrics", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) > 0
    refused = requests.post(f"{listener.url}/healthz", timeout=5)
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD"


# -- /healthz by the schedule -------------------------------------------------------------

T0 = datetime(2026, 11, 26, 10, 1, tzinfo=UTC)


def test_healthz_turns_503_when_a_source_is_overdue(gateway) -> None:
    # interval 600s, jitter 0, timeout 5s, one token: overdue 2 x 600 + 5 s after a cycle.
    config = sim_config(gateway.base_url, {"t": CANARY}, interval=600.0)
    clock = Clock(T0)
    watch = CycleWatch(config, clock=clock)
    with Listener("127.0.0.1:0", health=watch.report) as listener:

        def healthz() -> tuple[int, dict]:
            response = requests.get(f"{listener.url}/healthz", timeout=5)
            assert response.headers["Content-Type"] == "application/json"
            return response.status_code, response.json()

        clock.advance(1000)  # no cycle yet, but within the start-up grace period
        assert healthz() == (
            200,
            {
                "status": "ok",
                "sources": {
                    "gw": {"last_cycle": None, "due_by": "2026-11-26T10:21:05Z", "overdue": False}
                },
            },
        )
        watch.completed("gw")
        clock.advance(1205)
        status, body = healthz()
        assert status == 200
        assert body["sources"]["gw"] == {
            "last_cycle": "2026-11-26T10:17:40Z",
            "due_by": "2026-11-26T10:37:45Z",
            "overdue": False,
        }
        clock.advance(1)
        status, body = healthz()
        assert status == 503
        assert body["status"] == "unhealthy"
        assert body["reasons"] == [
            "source gw: no cycle since 2026-11-26T10:17:40Z (expected every 600s)"
        ]
        assert body["sources"]["gw"]["overdue"] is True
        watch.completed("gw")
        assert healthz()[0] == 200


def test_health_reasons_never_started_and_stopped_scheduler(gateway) -> None:
    config = sim_config(gateway.base_url, {"t": CANARY}, interval=60.0)
    clock = Clock(T0)
    watch = CycleWatch(config, clock=clock)
    assert watch.report(scheduler_running=False) == HealthAnswer(
        False,
        {
            "status": "unhealthy",
            "reasons": ["the scheduler is not running"],
            "sources": {
                "gw": {"last_cycle": None, "due_by": "2026-11-26T10:03:05Z", "overdue": False}
            },
        },
    )
    clock.advance(126)
    assert watch.report().body["reasons"] == [
        "source gw: no cycle since the daemon started at 2026-11-26T10:01:00Z (expected every 60s)"
    ]


def test_health_with_cron_allows_one_missed_fire_time(gateway) -> None:
    config = sim_config(gateway.base_url, {"t": CANARY})
    config = replace(config, monitor=replace(config.monitor, interval=None, cron="*/10 * * * *"))
    clock = Clock(T0)
    watch = CycleWatch(config, clock=clock)
    (source,) = config.sources
    assert watch.due_by(source) == datetime(2026, 11, 26, 10, 20, 5, tzinfo=UTC)
    clock.now = datetime(2026, 11, 26, 10, 10, 2, tzinfo=UTC)
    watch.completed("gw")
    assert watch.due_by(source) == datetime(2026, 11, 26, 10, 30, 5, tzinfo=UTC)
    clock.now = datetime(2026, 11, 26, 10, 30, 6, tzinfo=UTC)
    assert watch.report().body["reasons"] == [
        "source gw: no cycle since 2026-11-26T10:10:02Z "
        "(expected on the cron schedule */10 * * * *)"
    ]


def test_an_address_in_use_is_a_config_error(gateway, sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = sim_config(gateway.base_url, {"t": CANARY}, listen=address)
        db = open_database(sqlite_url)
        try:
            daemon = Daemon(config, Checker(config, db), Dispatcher(config, db, {}))
            with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:"):
                daemon.run()
            assert not daemon.scheduler.running
        finally:
            db.close()


# -- the acceptance test: `model-monitor run` with listen set -----------------------------


@pytest.mark.slow
def test_daemon_serves_metrics_and_health_and_stops_cleanly_mid_check(
    tmp_path: Path, db_url: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with GatewaySimulator(seed=7) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(CANARY, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{db_url}"
interval = "1s"
jitter = "0s"
listen = "127.0.0.1:{port}"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

[[tokens]]
name = "t"
source = "gw"
token_env = "LISTEN_TOKEN"
"""
        )
        daemon = start_daemon(config, {"LISTEN_TOKEN": CANARY})
        try:
            health = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # up, and the first cycle is done
                try:
                    health = requests.get(f"{url}/healthz", timeout=1)
                except requests.ConnectionError:
                    health = None
                if health is not None and health.json()["sources"]["gw"]["last_cycle"]:
                    break
                time.sleep(0.05)
            assert health is not None, "the listener never answered"
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            assert health.json()["sources"]["gw"]["overdue"] is False

            text, _, samples = scrape(url)
            ok = value(samples, "model_monitor_checks_total", source="gw", outcome="ok")
            assert ok is not None and ok >= 1
            assert value(samples, "model_monitor_models", source="gw", token="t") == len(MODELS)
            assert value(samples, "model_monitor_database_up") == 1
            assert value(samples, "model_monitor_deliveries", state="pending") == 0
            assert value(samples, "model_monitor_token_failing", source="gw", token="t") == 0
            assert value(samples, "process_open_fds") > 0  # the daemon's own process
            promtool_check(text)
            assert CANARY not in text

            # The status pages, served by the daemon itself from what it recorded.
            status = requests.get(f"{url}/", timeout=5)
            grid = requests.get(f"{url}/matrix", params={"source": "gw"}, timeout=5)
            feed = requests.get(f"{url}/changes.atom", timeout=5)
            assert [r.status_code for r in (status, grid, feed)] == [200, 200, 200]
            assert ">t<" in status.text.replace(" ", "")
            assert all(m["id"] in grid.text for m in MODELS)
            assert feed.headers["Content-Type"].startswith("application/atom+xml")
            assert all(CANARY not in r.text for r in (status, grid, feed))

            # Slow the gateway down, then stop the daemon while a request is in flight.
            gateway.latency = 1.0
            seen = len(gateway.requests)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                log = gateway.requests
                if len(log) > seen and log[-1].status is None:
                    break
                time.sleep(0.01)
            assert gateway.requests[-1].status is None, "no check was in flight"
        finally:
            stopped = stop_daemon(daemon)
        assert stopped.returncode == 0, stopped.err
        assert stopped.seconds < 5
        assert f"listening on {url} (/healthz, /metrics)" in stopped.err
        assert "daemon stopped" in stopped.err
        assert CANARY not in stopped.out + stopped.err
        # The in-flight check was cut off rather than waited for...
        requests_seen = gateway.polls(CANARY)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/healthz", timeout=1)  # ...and the listener is gone

    db = open_database(db_url)
    with db.reader() as session:
        checks = session.scalar(select(func.count()).select_from(Check))
    db.close()
    # ...and its cycle was abandoned, not recorded as a failure: no check cut in half.
    assert checks == requests_seen - 1
    # Besides the polls, only the token's budget (every 6 h) and the prices (every hour)
    # were asked for, once each.
    aside = [r for r in gateway.requests if r.path in ("/api/usage/token/", "/api/pricing")]
    assert sorted(r.path for r in aside) == ["/api/pricing", "/api/usage/token/"]
    assert all(r.path.endswith("/models") for r in gateway.requests if r not in aside)


def test_a_cycle_that_raised_is_reported_until_one_completes(gateway) -> None:
    config = sim_config(gateway.base_url, {"t": CANARY}, interval=600.0)
    clock = Clock(T0)
    watch = CycleWatch(config, clock=clock)
    watch.completed("gw")
    clock.advance(60)
    watch.failed("gw", "OperationalError")
    health = watch.report()
    assert not health.ok
    assert health.body["reasons"] == ["source gw: its last check cycle failed (OperationalError)"]
    assert health.body["sources"]["gw"]["failed_cycle"]["error"] == "OperationalError"
    clock.advance(60)
    watch.completed("gw")
    assert watch.report().ok
