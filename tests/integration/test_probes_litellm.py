"""Probes against a real LiteLLM proxy (not our simulator): its models list, its answers to
the smallest chat completion, and a listed model whose upstream is down, reported once as
unavailable after the transient streak.

The proxy runs from its own virtual environment (it pins packages of its own): set
MODEL_MONITOR_TEST_LITELLM to its `litellm` executable; .ci/run installs it and sets
MODEL_MONITOR_REQUIRE_LITELLM=1 so that a missing proxy fails the run instead of skipping.
Its replies come from `mock_response` (no network); the broken model's upstream is a
closed loopback port.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.runtime.cycle import Checker
from monitor.sim.config import SIM_SETTINGS
from monitor.store.database import open_database
from monitor.store.probes import recent_probes, unavailable_pairs
from tests.support.clock import Clock
from tests.support.ports import free_port

KEY = "sk-litellm-master-0123456789abcdef"
PROXY_CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-upstream-fake
      mock_response: "H"
  - model_name: broken
    litellm_params:
      model: openai/broken
      api_key: sk-upstream-fake
      api_base: http://127.0.0.1:{dead}/v1
      max_retries: 0
router_settings:
  num_retries: 0
general_settings:
  master_key: {key}
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = os.environ.get("MODEL_MONITOR_TEST_LITELLM", "")
    if not executable or not Path(executable).exists():
        if os.environ.get("MODEL_MONITOR_REQUIRE_LITELLM") == "1":
            pytest.fail("MODEL_MONITOR_TEST_LITELLM does not name a litellm executable")
        pytest.skip("set MODEL_MONITOR_TEST_LITELLM to a LiteLLM proxy's litellm executable")
    directory = tmp_path_factory.mktemp("litellm")
    config = directory / "config.yaml"
    config.write_text(PROXY_CONFIG.format(dead=free_port(), key=KEY))
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "*"}
    with open(directory / "proxy.log", "w") as log:
        process = subprocess.Popen(
            [executable, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                said = (directory / "proxy.log").read_text()[-3000:]
                pytest.fail(f"the LiteLLM proxy did not start:\n{said}")
            time.sleep(0.2)
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(10)


def test_a_listed_model_whose_upstream_is_down_is_unavailable_once(
    proxy: str, tmp_path: Path
) -> None:
    source = SourceConfig(
        name="proxy",
        base_url=proxy,
        flavor="litellm",
        probe=True,
        probe_delay=0.0,
        probe_recheck=0.0,
    )
    settings = MonitorSettings(**{**SIM_SETTINGS, "timeout": 20.0})  # type: ignore[arg-type]
    config = Config(None, settings, (source,), (TokenConfig("t", "proxy", Secret(KEY)),), ())
    clock = Clock.whole_second()
    db = open_database(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        check = Checker(config, db, clock=clock)
        said = []
        for _ in range(4):
            (report,) = check.check()
            assert report.tokens[0].outcome == "ok", report.tokens[0].error
            assert report.tokens[0].model_count == 2
            said += [
                (change.type.value, change.model, change.error)
                for event in report.events
                for change in event.changes
            ]
            clock.advance(timedelta(minutes=10))
        with db.reader() as session:
            probes = recent_probes(session, limit=100)
            uncallable = unavailable_pairs(session)
    finally:
        db.close()
    by_model = {}
    for probe in probes:
        by_model.setdefault(probe.model, []).append((probe.result, probe.status))
    assert set(by_model["gpt-4o"]) == {("ok", 200)}  # probed once: callable, then left alone
    assert len(by_model["gpt-4o"]) == 1
    # LiteLLM answers an upstream that is down with a 500: transient, three in a row.
    assert by_model["broken"] == [("transient", 500)] * 4
    assert [(kind, model) for kind, model, _ in said] == [("unavailable", "broken")]
    error = said[0][2]
    assert error is not None and error.status == 500 and error.code == "500"
    assert KEY not in error.message
    assert set(uncallable) == {("t", "broken")}
