"""The LiteLLM proxy's models list and its error bodies."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import Secret
from monitor.core.diff import diff_models
from monitor.core.records import ErrorKind, ModelRecord
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.litellm import LiteLLMFlavor
from tests.support.fixtures import load

FIXTURE = load("litellm-models.json")
REQUEST = Request(url="http://litellm.internal:4000/v1/models")


def parse(body: object) -> dict[str, ModelRecord]:
    page = LiteLLMFlavor().parse(body, REQUEST)
    assert page.next is None
    return {record.id: record for record in page.models}


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
