"""The LiteLLM proxy's models list and its error bodies."""

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
from monitor.sources.litellm import LiteLLMFlavor
from monitor.sources.registry import FLAVORS
from monitor.store.database import open_database

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "litellm-models.json").read_text()
)
REQUEST = Request(url="http://litellm.internal:4000/v1/models")


def parse(body: object) -> dict[str, ModelRecord]:
    page = LiteLLMFlavor().parse(body, REQUEST)
    assert page.next is None
    return {record.id: record for record in page.models}


def test_registered() -> None:
    assert FLAVORS["litellm"] is LiteLLMFlavor


def test_first_request_sends_the_virtual_key_as_bearer() -> None:
    request = LiteLLMFlavor().first_request("http://litellm.internal:4000/v1/", Secret("sk-1234"))
    assert request.url == "http://litellm.internal:4000/v1/models"
    assert request.params == ()
    assert request.wire_headers() == {"Authorization": "Bearer sk-1234"}


def test_fixture_normalization() -> None:
    assert parse(FIXTURE) == {
        "gpt-4o": ModelRecord.build(
            "gpt-4o",
            None,
            {"mode": "chat", "context_window": 128000, "max_output_tokens": 16384},
        ),
        "claude-sonnet-4": ModelRecord.build(
            "claude-sonnet-4",
            None,
            {"mode": "chat", "context_window": 200000, "max_output_tokens": 64000},
        ),
        # max_output_tokens null: left out
        "text-embedding-3-small": ModelRecord.build(
            "text-embedding-3-small", None, {"mode": "embedding", "context_window": 8191}
        ),
        # entries without model info: presence only
        "my-local-llama": ModelRecord("my-local-llama"),
        "xai/grok-3-mini-beta": ModelRecord("xai/grok-3-mini-beta"),
    }


def test_created_and_owned_by_are_dropped() -> None:
    for record in parse(FIXTURE).values():
        assert not {"created", "owned_by", "object"} & set(record.field_map())
    body = {"data": [{"id": "m", "created": 1, "owned_by": "azure", "object": "model"}]}
    assert parse(body) == {"m": ModelRecord("m")}


def test_limit_change_is_a_field_change() -> None:
    before = parse({"data": [{"id": "m", "mode": "chat", "max_input_tokens": 128000}]})
    after = parse({"data": [{"id": "m", "mode": "chat", "max_input_tokens": 200000}]})
    (change,) = diff_models(before, after)
    assert change.to_json()["field"] == "context_window"
    assert change.to_json()["percent"] == 56.25


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "m", "mode": 1}, r"model 'm': mode is a number, not a string"),
        ({"id": "m", "mode": ["chat"]}, r"model 'm': mode is an array, not a string"),
        ({"id": "m", "max_input_tokens": "128k"}, r"max_input_tokens is a string, not a number"),
        ({"id": "m", "max_output_tokens": True}, r"max_output_tokens is a boolean, not a number"),
        ({"id": "m", "max_output_tokens": {}}, r"max_output_tokens is an object, not a number"),
    ],
)
def test_malformed_entries(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse({"data": [entry]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "error": {
                    "message": "Invalid proxy server token",
                    "type": "auth_error",
                    "code": "401",
                }
            },
            "is an error: Invalid proxy server token",
        ),
        ({"data": None, "object": "list"}, "data is null"),
        ({"object": "list"}, "no data list"),
        ({"data": [{"id": ""}]}, "empty id"),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse(body)


# -- errors ---------------------------------------------------------------------------------

NO_DB = {"error": {"message": "No connected db.", "type": "no_db_connection", "code": "400"}}
NO_DB_OLD = {
    "error": {
        "message": "Authentication Error, No connected db.",
        "type": "auth_error",
        "param": "None",
        "code": "400",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, NO_DB, ErrorKind.AUTH),
        (400, NO_DB_OLD, ErrorKind.AUTH),
        (400, {"error": {"message": "No connected db.", "type": None}}, ErrorKind.AUTH),
        # anything else keeps the classification by status
        (400, {"error": {"message": "Invalid model", "type": "invalid_request_error"}}, None),
        (401, NO_DB, None),
        (500, NO_DB, None),
        (400, None, None),
        (400, {"error": "No connected db."}, None),
        (400, ["No connected db."], None),
    ],
)
def test_error_kind(status: int, body: object, kind: ErrorKind | None) -> None:
    assert LiteLLMFlavor().error_kind(status, body) is kind


def test_error_message_with_string_codes() -> None:
    assert LiteLLMFlavor().error_message(NO_DB) == "No connected db."
    body = {"error": {"message": "", "type": "budget_exceeded", "param": None, "code": "400"}}
    assert LiteLLMFlavor().error_message(body) == "budget_exceeded"


# -- against the simulator on loopback ------------------------------------------------------

KEY = "sk-litellm-virtual-0123456789"
SIM_MODELS = [
    make_model("gpt-4o", mode="chat", context_window=128000, max_output_tokens=16384),
    make_model("text-embedding-3-small", mode="embedding", context_window=8191),
    make_model("my-local-llama"),
]


@pytest.fixture
def litellm() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="litellm", seed=4) as sim:
        sim.set_group("default", SIM_MODELS)
        sim.add_token(KEY)
        yield sim


def source_of(sim: GatewaySimulator, flavor: str = "litellm") -> SourceConfig:
    return SourceConfig(name="proxy", base_url=sim.base_url, flavor=flavor)


def fetch(sim: GatewaySimulator, flavor: str = "litellm", key: str = KEY) -> FetchResult:
    token = TokenConfig("t", "proxy", Secret(key))
    return fetch_models(source_of(sim, flavor), token, MonitorSettings(**SIM_SETTINGS))  # type: ignore[arg-type]


def test_fetch_from_the_simulator(litellm: GatewaySimulator) -> None:
    result = fetch(litellm)
    assert isinstance(result, FetchOk)
    assert result.flavor == "litellm"
    assert dict(result.models) == {
        "gpt-4o": ModelRecord.build(
            "gpt-4o", None, {"mode": "chat", "context_window": 128000, "max_output_tokens": 16384}
        ),
        "text-embedding-3-small": ModelRecord.build(
            "text-embedding-3-small", None, {"mode": "embedding", "context_window": 8191}
        ),
        "my-local-llama": ModelRecord("my-local-llama"),
    }
    auto = fetch(litellm, "auto")
    assert isinstance(auto, FetchOk)
    assert auto.models == result.models


def test_wrong_key_on_a_proxy_with_a_database_is_auth(litellm: GatewaySimulator) -> None:
    result = fetch(litellm, key="sk-wrong-key-000000000000")
    assert isinstance(result, FetchError)
    assert (result.kind, result.status) == (ErrorKind.AUTH, 401)
    assert "sk-wrong-key-000000000000" not in result.message


@pytest.mark.parametrize("flavor", ["litellm", "auto"])
def test_no_connected_db_is_an_auth_failure(litellm: GatewaySimulator, flavor: str) -> None:
    litellm.wire.connected_db = False  # type: ignore[attr-defined]
    result = fetch(litellm, flavor, key="sk-wrong-key-000000000000")
    assert isinstance(result, FetchError)
    assert result.status == 400
    assert result.kind is ErrorKind.AUTH
    assert result.kind.immediate  # reported at once, like a 401
    assert "No connected db." in result.message
    # The right key still works.
    assert isinstance(fetch(litellm, flavor), FetchOk)


def test_pipeline_reports_an_added_model_and_a_limit_change(
    litellm: GatewaySimulator, db_url: str
) -> None:
    config = Config(
        path=None,
        monitor=MonitorSettings(**{**SIM_SETTINGS, "confirm_checks": 1}),  # type: ignore[arg-type]
        sources=(source_of(litellm),),
        tokens=(TokenConfig("a", "proxy", Secret(KEY)),),
        channels=(),
    )
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        checker.check()
        litellm.set_group(
            "default",
            [
                make_model("gpt-4o", mode="chat", context_window=200000, max_output_tokens=16384),
                *SIM_MODELS[1:],
                make_model("claude-sonnet-4", mode="chat", context_window=200000),
            ],
        )
        (report,) = checker.check()
        (event,) = report.events
        changes = event.to_payload()["changes"]
        assert [(c["type"], c["model"]) for c in changes] == [
            ("added", "claude-sonnet-4"),
            ("field_changed", "gpt-4o"),
        ]
        assert changes[0]["after"] == {"mode": "chat", "context_window": 200000}
        assert changes[1]["field"] == "context_window"
        assert changes[1]["percent"] == 56.25
    finally:
        db.close()
