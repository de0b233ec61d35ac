"""Ollama's OpenAI-compatible models list: presence and re-pulls."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import Secret
from monitor.core.diff import diff_models
from monitor.core.records import ModelRecord
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.ollama import OllamaFlavor
from tests.support.fixtures import load

FIXTURE = load("ollama-models.json")
REQUEST = Request(url="http://127.0.0.1:11434/v1/models")


def parse(body: object) -> dict[str, ModelRecord]:
    page = OllamaFlavor().parse(body, REQUEST)
    assert page.next is None
    return {record.id: record for record in page.models}


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
