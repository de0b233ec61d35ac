"""The ollama flavor over loopback: the simulator's Ollama, an empty one, and a pull and
a re-pull through the pipeline into a database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import ErrorKind, FetchError, FetchOk, FetchResult, ModelRecord
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import SIM_SETTINGS
from monitor.sources.fetch import fetch_models
from monitor.store.database import open_database

SIM_MODELS = [
    make_model("llama3.2:latest", None, created=1732612800),
    make_model("qwen2.5-coder:7b", None, created=1730390400),
    make_model("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", None, created=1735689600),
]


@pytest.fixture
def ollama() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="ollama", seed=5) as sim:
        sim.set_group("default", SIM_MODELS)
        yield sim


def source_of(sim: GatewaySimulator, flavor: str = "ollama") -> SourceConfig:
    return SourceConfig(name="box", base_url=sim.base_url, flavor=flavor)


def fetch(sim: GatewaySimulator, flavor: str = "ollama") -> FetchResult:
    token = TokenConfig("t", "box", Secret("unused-by-ollama"))
    return fetch_models(source_of(sim, flavor), token, MonitorSettings(**SIM_SETTINGS))  # type: ignore[arg-type]


def test_fetch_from_the_simulator(ollama: GatewaySimulator) -> None:
    result = fetch(ollama)
    assert isinstance(result, FetchOk)
    assert result.flavor == "ollama"
    assert dict(result.models) == {
        "llama3.2:latest": ModelRecord.build(
            "llama3.2:latest", None, {"modified_at": "2024-11-26T09:20:00Z"}
        ),
        "qwen2.5-coder:7b": ModelRecord.build(
            "qwen2.5-coder:7b", None, {"modified_at": "2024-10-31T16:00:00Z"}
        ),
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M": ModelRecord.build(
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            None,
            {"modified_at": "2025-01-01T00:00:00Z"},
        ),
    }
    auto = fetch(ollama, "auto")
    assert isinstance(auto, FetchOk)
    assert auto.models == result.models


def test_no_model_pulled(ollama: GatewaySimulator) -> None:
    ollama.set_group("default", [])
    result = fetch(ollama)
    assert isinstance(result, FetchOk)
    assert result.models == {}
    # auto cannot tell an empty Ollama from a broken list, and says what to do.
    auto = fetch(ollama, "auto")
    assert isinstance(auto, FetchError)
    assert auto.kind is ErrorKind.INVALID_RESPONSE
    assert 'set flavor = "ollama"' in auto.message


def test_pipeline_reports_a_pull_and_a_re_pull(ollama: GatewaySimulator, db_url: str) -> None:
    config = Config(
        path=None,
        monitor=MonitorSettings(**{**SIM_SETTINGS, "confirm_checks": 1}),  # type: ignore[arg-type]
        sources=(source_of(ollama),),
        tokens=(TokenConfig("a", "box", Secret("unused-by-ollama")),),
        channels=(),
    )
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        checker.check()
        ollama.set_group(
            "default",
            [
                make_model("llama3.2:latest", None, created=1764151200),  # pulled again
                *SIM_MODELS[1:],
                make_model("gpt-oss:20b", None, created=1764150000),
            ],
        )
        (report,) = checker.check()
        (event,) = report.events
        changes = event.to_payload()["changes"]
        assert [(c["type"], c["model"]) for c in changes] == [
            ("added", "gpt-oss:20b"),
            ("field_changed", "llama3.2:latest"),
        ]
        assert changes[0]["after"] == {"modified_at": "2025-11-26T09:40:00Z"}
        assert changes[1]["before"] == "2024-11-26T09:20:00Z"
        assert changes[1]["after"] == "2025-11-26T10:00:00Z"
        assert "percent" not in changes[1]
    finally:
        db.close()
