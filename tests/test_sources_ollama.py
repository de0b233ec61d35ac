"""Ollama's OpenAI-compatible models list: presence and re-pulls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.diff import diff_models
from monitor.core.records import ErrorKind, FetchError, FetchOk, FetchResult, ModelRecord
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import SIM_SETTINGS
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.fetch import fetch_models
from monitor.sources.ollama import OllamaFlavor
from monitor.sources.registry import FLAVORS
from monitor.store.database import open_database

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "ollama-models.json").read_text()
)
REQUEST = Request(url="http://127.0.0.1:11434/v1/models")


def parse(body: object) -> dict[str, ModelRecord]:
    page = OllamaFlavor().parse(body, REQUEST)
    assert page.next is None
    return {record.id: record for record in page.models}


def test_registered() -> None:
    assert FLAVORS["ollama"] is OllamaFlavor


def test_first_request() -> None:
    request = OllamaFlavor().first_request("http://127.0.0.1:11434/v1", Secret("ollama"))
    assert request.url == "http://127.0.0.1:11434/v1/models"
    assert request.wire_headers() == {"Authorization": "Bearer ollama"}
    assert OllamaFlavor().first_request("http://h/v1", Secret("")).wire_headers() == {}


def test_fixture_normalization() -> None:
    assert parse(FIXTURE) == {
        "llama3.2:latest": ModelRecord.build(
            "llama3.2:latest", None, {"modified_at": "2024-11-26T09:20:00Z"}
        ),
        "qwen2.5-coder:7b": ModelRecord.build(
            "qwen2.5-coder:7b", None, {"modified_at": "2024-10-31T16:00:00Z"}
        ),
        "nomic-embed-text:latest": ModelRecord.build(
            "nomic-embed-text:latest", None, {"modified_at": "2024-06-10T06:13:20Z"}
        ),
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M": ModelRecord.build(
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            None,
            {"modified_at": "2025-01-01T00:00:00Z"},
        ),
    }


def test_owned_by_is_dropped() -> None:
    for record in parse(FIXTURE).values():
        assert set(record.field_map()) == {"modified_at"}
        assert record.endpoint_types is None


def test_a_re_pull_is_a_field_change() -> None:
    before = parse({"object": "list", "data": [{"id": "llama3.2:latest", "created": 1732612800}]})
    after = parse({"object": "list", "data": [{"id": "llama3.2:latest", "created": 1764151200}]})
    (change,) = diff_models(before, after)
    assert change.to_json() == {
        "type": "field_changed",
        "model": "llama3.2:latest",
        "tokens": [],
        "field": "modified_at",
        "before": "2024-11-26T09:20:00Z",
        "after": "2025-11-26T10:00:00Z",
    }


@pytest.mark.parametrize("created", [0, -62135596800, None])
def test_unknown_times_are_left_out(created: object) -> None:
    entry: dict[str, Any] = {"id": "m:latest", "owned_by": "library"}
    if created is not None:
        entry["created"] = created
    assert parse({"data": [entry]}) == {"m:latest": ModelRecord("m:latest")}


def test_fractional_seconds_are_cut() -> None:
    models = parse({"data": [{"id": "m", "created": 1732612800.9}]})
    assert models["m"].field_map() == {"modified_at": "2024-11-26T09:20:00Z"}


def test_no_model_pulled_is_null_data() -> None:
    # Go encodes an empty slice as null.
    assert parse({"object": "list", "data": None}) == {}
    assert parse({"object": "list", "data": []}) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [{"id": "m", "created": "yesterday"}]}, r"'m': created is a string"),
        ({"data": [{"id": "m", "created": True}]}, r"'m': created is a boolean"),
        ({"data": [{"id": "m", "created": 1e20}]}, r"'m': created \(1e\+20\) is not a possible"),
        ({"error": "model 'x' not found"}, "is an error: model 'x' not found"),
        ({"error": "boom", "data": None}, "is an error: boom"),
        ({"object": "list"}, "no data list"),
        ({"data": "llama3.2"}, "data is a string"),
        ({"models": [{"name": "llama3.2:latest"}]}, "no data list"),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse(body)


def test_plain_error_body_message() -> None:
    assert OllamaFlavor().error_message({"error": "unauthorized"}) == "unauthorized"


# -- against the simulator on loopback ------------------------------------------------------

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
