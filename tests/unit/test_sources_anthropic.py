"""The anthropic flavor on plain data: its request, normalization of a real-shaped fixture,
pagination and error bodies. Walks over loopback: tests/integration/test_sources_anthropic.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.config.model import Secret
from monitor.core.records import (
    ModelRecord,
)
from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.base import InvalidResponse, Request
from tests.support.fixtures import load

FIXTURE = load("anthropic-models.json")
KEY = "sk-ant-api03-unit-test-key-0000"
REQUEST = AnthropicFlavor().first_request("https://api.anthropic.com/v1", Secret(KEY))

ALL_CAPABILITIES = [
    "batch",
    "citations",
    "code_execution",
    "context_management",
    "context_management.clear_thinking_20251015",
    "context_management.clear_tool_uses_20250919",
    "context_management.compact_20260112",
    "effort",
    "effort.high",
    "effort.low",
    "effort.max",
    "effort.medium",
    "image_input",
    "pdf_input",
    "structured_outputs",
    "thinking",
    "thinking.types.adaptive",
    "thinking.types.enabled",
]


def parse(body: object, request: Request = REQUEST) -> dict[str, ModelRecord]:
    page = AnthropicFlavor().parse(body, request)
    return {record.id: record for record in page.models}


def page_of(*models: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"data": list(models), "has_more": False, **envelope}


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://api.anthropic.com/v1", "https://api.anthropic.com/v1/"]
)
def test_first_request(base_url: str) -> None:
    request = AnthropicFlavor().first_request(base_url, Secret(KEY))
    assert request.url == "https://api.anthropic.com/v1/models"
    assert request.params == (("limit", "1000"),)
    # x-api-key and the version, and no Authorization header.
    assert request.wire_headers() == {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    assert KEY not in repr(request)
    assert KEY not in str(request.headers)


# -- normalization --------------------------------------------------------------------------


def test_fixture_normalization() -> None:
    models = parse(FIXTURE)
    assert sorted(models) == [
        "claude-3-haiku-20240307",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-6",
        "claude-sonnet-4-5-20250929",
    ]
    assert models["claude-opus-4-6"] == ModelRecord.build(
        "claude-opus-4-6",
        None,
        {
            "display_name": "Claude Opus 4.6",
            "context_window": 200000,
            "max_output_tokens": 128000,
            "capabilities": ALL_CAPABILITIES,
        },
    )
    assert models["claude-3-haiku-20240307"].field_map() == {
        "display_name": "Claude Haiku 3",
        "context_window": 200000,
        "max_output_tokens": 4096,
        "capabilities": ("batch", "image_input"),
    }
    for record in models.values():
        assert record.endpoint_types is None
        # Release dates, the object type and the model line are not diffed.
        assert set(record.field_map()) == {
            "display_name",
            "context_window",
            "max_output_tokens",
            "capabilities",
        }


def test_last_page_has_no_next() -> None:
    assert AnthropicFlavor().parse(FIXTURE, REQUEST).next is None


def test_capabilities_follow_supported_flags_only() -> None:
    sonnet = parse(FIXTURE)["claude-sonnet-4-5-20250929"].field_map()["capabilities"]
    assert "context_management.clear_tool_uses_20250919" in sonnet
    assert "context_management.compact_20260112" not in sonnet
    assert "effort" not in sonnet and "effort.high" not in sonnet
    assert "thinking.types.enabled" in sonnet and "thinking.types.adaptive" not in sonnet
    assert list(sonnet) == sorted(sonnet)


def test_a_gained_capability_is_a_field_change() -> None:
    before = parse(FIXTURE)["claude-sonnet-4-5-20250929"]
    body = json.loads(json.dumps(FIXTURE))
    body["data"][1]["capabilities"]["effort"]["supported"] = True
    after = parse(body)["claude-sonnet-4-5-20250929"]
    assert before != after
    assert set(after.field_map()["capabilities"]) - set(before.field_map()["capabilities"]) == {
        "effort"
    }


def test_created_at_and_line_changes_are_not_differences() -> None:
    body = json.loads(json.dumps(FIXTURE))
    for model in body["data"]:
        model["created_at"] = "1970-01-01T00:00:00Z"
        model["line"] = None
    assert parse(body) == parse(FIXTURE)


def test_minimal_model_info() -> None:
    # The ModelInfo of before capabilities and token limits existed.
    body = page_of(
        {
            "type": "model",
            "id": "claude-3-5-sonnet-20241022",
            "display_name": "Claude Sonnet 3.5 (New)",
            "created_at": "2024-10-22T00:00:00Z",
        }
    )
    record = parse(body)["claude-3-5-sonnet-20241022"]
    assert record.field_map() == {"display_name": "Claude Sonnet 3.5 (New)"}


def test_null_values_are_left_out() -> None:
    body = page_of({"id": "m", "display_name": "M", "max_input_tokens": None, "capabilities": None})
    assert parse(body)["m"].field_map() == {"display_name": "M"}


@pytest.mark.parametrize(
    ("deprecated", "retires"),
    [("deprecated_at", "retires_at"), ("deprecation_date", "retirement_date")],
)
def test_deprecation_and_retirement_dates_as_given(deprecated: str, retires: str) -> None:
    body = page_of(
        {
            "id": "claude-3-opus-20240229",
            "display_name": "Claude Opus 3",
            "lifecycle": "deprecated",
            deprecated: "2025-06-30",
            retires: "2026-01-05T00:00:00Z",
        }
    )
    assert parse(body)["claude-3-opus-20240229"].field_map() == {
        "display_name": "Claude Opus 3",
        "deprecation_date": "2025-06-30",
        "retirement_date": "2026-01-05T00:00:00Z",
    }


def test_active_models_have_null_dates() -> None:
    body = page_of({"id": "m", "lifecycle": "active", "deprecated_at": None, "retires_at": None})
    assert parse(body)["m"].fields == ()


def test_capabilities_as_a_list_of_names() -> None:
    body = page_of({"id": "m", "capabilities": ["vision", "batch", "vision"]})
    assert parse(body)["m"].field_map() == {"capabilities": ("batch", "vision")}


def test_capabilities_details_that_are_not_flags_are_skipped() -> None:
    body = page_of(
        {
            "id": "m",
            "capabilities": {
                "batch": {"supported": True, "max_requests": 100000},
                "image_input": {"supported": False, "formats": ["png"]},
                "future_note": "text",
                "tools": {"web_search": {"supported": True}},
            },
        }
    )
    assert parse(body)["m"].field_map() == {"capabilities": ("batch", "tools.web_search")}


def test_no_supported_capability_is_an_empty_list() -> None:
    body = page_of({"id": "m", "capabilities": {"batch": {"supported": False}}})
    assert parse(body)["m"].field_map() == {"capabilities": ()}


# -- pagination -----------------------------------------------------------------------------


def test_has_more_asks_for_the_page_after_last_id() -> None:
    body = page_of({"id": "a"}, {"id": "b"}, has_more=True, first_id="a", last_id="b")
    page = AnthropicFlavor().parse(body, REQUEST)
    assert page.next is not None
    assert page.next.url == REQUEST.url
    assert page.next.params == (("limit", "1000"), ("after_id", "b"))
    assert page.next.wire_headers() == REQUEST.wire_headers()


def test_page_size_is_a_class_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 2)
    request = AnthropicFlavor().first_request("https://x.example/v1", Secret(KEY))
    assert request.params == (("limit", "2"),)
    page = AnthropicFlavor().parse(page_of({"id": "a"}, has_more=True, last_id="a"), request)
    assert page.next is not None and page.next.params == (("limit", "2"), ("after_id", "a"))


def test_without_has_more_a_short_page_is_the_last() -> None:
    assert AnthropicFlavor().parse({"data": [{"id": "a"}]}, REQUEST).next is None


def test_without_has_more_a_full_page_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 2)
    with pytest.raises(InvalidResponse, match="full page of 2 models without has_more"):
        AnthropicFlavor().parse({"data": [{"id": "a"}, {"id": "b"}]}, REQUEST)


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({"has_more": True}, "has_more is true but the page has no last_id"),
        ({"has_more": True, "last_id": None}, "no last_id"),
        ({"has_more": True, "last_id": ""}, "no last_id"),
        ({"has_more": True, "last_id": 7}, "no last_id"),
        ({"has_more": "false"}, "has_more is a string, not a boolean"),
        ({"has_more": 1}, "has_more is a number, not a boolean"),
    ],
)
def test_broken_pagination_is_invalid(envelope: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        AnthropicFlavor().parse({"data": [{"id": "a"}], **envelope}, REQUEST)


# -- what is not a models list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "an array, not a JSON object"),
        (None, "null, not a JSON object"),
        (
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
            "is an error: api_error: Internal server error",
        ),
        ({"has_more": False}, "no data list"),
        ({"data": None, "has_more": False}, "data is null, not a list"),
        ({"data": {"id": "a"}}, "data is an object, not a list"),
        ({"data": ["claude-opus-4-6"]}, r"data\[0\] is a string, not a model object"),
        ({"data": [{"type": "model"}]}, r"data\[0\] has no id"),
        ({"data": [{"id": ""}]}, r"data\[0\] has an empty id"),
        ({"data": [{"id": 3}]}, r"data\[0\] has an id that is a number"),
        ({"data": [{"id": "a"}, {"id": "a"}]}, "model id 'a' appears twice"),
        (
            {"data": [{"id": "m", "max_input_tokens": "200000"}]},
            "model 'm': max_input_tokens is a string, not an integer",
        ),
        (
            {"data": [{"id": "m", "max_tokens": 8192.5}]},
            "model 'm': max_tokens is a number, not an integer",
        ),
        (
            {"data": [{"id": "m", "max_tokens": True}]},
            "model 'm': max_tokens is a boolean, not an integer",
        ),
        (
            {"data": [{"id": "m", "display_name": ["x"]}]},
            "model 'm': display_name is an array, not a string",
        ),
        (
            {"data": [{"id": "m", "retirement_date": 20260105}]},
            "model 'm': retirement_date is a number, not a string",
        ),
        (
            {"data": [{"id": "m", "deprecated_at": True}]},
            "model 'm': deprecated_at is a boolean, not a string",
        ),
        (
            {"data": [{"id": "m", "capabilities": "vision"}]},
            "model 'm': capabilities is a string, not an object",
        ),
        (
            {"data": [{"id": "m", "capabilities": ["vision", 3]}]},
            "model 'm': capabilities is a list, but not of capability names",
        ),
        (
            {"data": [{"id": "m", "capabilities": {"batch": {"supported": "yes"}}}]},
            "model 'm': capabilities.batch.supported is a string, not a boolean",
        ),
        (
            {
                "data": [
                    {"id": "m", "capabilities": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}
                ]
            },
            "capabilities nest too deeply",
        ),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        AnthropicFlavor().parse(body, REQUEST)


# -- error bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
            },
            "authentication_error: invalid x-api-key",
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error: Overloaded",
        ),
        ({"type": "error", "error": {"type": "not_found_error"}}, "not_found_error"),
        ({"error": {"message": "Invalid token (request id: 1)"}}, "Invalid token (request id: 1)"),
        ({"error": "plain"}, "plain"),
        ("text", None),
    ],
)
def test_error_message(body: object, message: str | None) -> None:
    assert AnthropicFlavor().error_message(body) == message


def test_error_kind_is_by_status() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert AnthropicFlavor().error_kind(529, body) is None
