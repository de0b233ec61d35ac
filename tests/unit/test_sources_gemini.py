"""The gemini flavor on plain data: its request, normalization of a real-shaped fixture,
pagination and error bodies. Walks over loopback: tests/integration/test_sources_gemini.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.config.model import Secret
from monitor.core.records import (
    ErrorKind,
    ModelRecord,
)
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.gemini import GeminiFlavor
from tests.support.fixtures import load

FIXTURE = load("gemini-models.json")
KEY = "AIzaSyUnitTestKey000000000000000000000"
BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
REQUEST = GeminiFlavor().first_request(BASE_URL, Secret(KEY))

# What the API answers for a wrong key: HTTP 400, not 401.
API_KEY_INVALID = load("gemini-api-key-invalid.json")


def parse(body: object, request: Request = REQUEST) -> dict[str, ModelRecord]:
    page = GeminiFlavor().parse(body, request)
    return {record.id: record for record in page.models}


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", [BASE_URL, BASE_URL + "/"])
def test_first_request(base_url: str) -> None:
    request = GeminiFlavor().first_request(base_url, Secret(KEY))
    assert request.url == f"{BASE_URL}/models"
    # pageSize always: the default of 50 would cut the list.
    assert request.params == (("pageSize", "1000"),)
    assert request.wire_headers() == {"x-goog-api-key": KEY}
    # The key is never in the URL or the query string: those get logged.
    assert KEY not in request.url
    assert all(KEY not in value for _, value in request.params)
    assert KEY not in repr(request)


# -- normalization --------------------------------------------------------------------------


def test_fixture_normalization() -> None:
    models = parse(FIXTURE)
    assert sorted(models) == [
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-embedding-001",
        "imagen-4.0-generate-001",
        "veo-3.0-generate-001",
    ]
    assert models["gemini-2.5-flash"] == ModelRecord.build(
        "gemini-2.5-flash",
        ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        {
            "display_name": "Gemini 2.5 Flash",
            "context_window": 1048576,
            "max_output_tokens": 65536,
            "version": "001",
        },
    )
    assert models["gemini-embedding-001"].endpoint_types == {
        "embedContent",
        "countTextTokens",
        "countTokens",
        "asyncBatchEmbedContent",
    }
    assert models["veo-3.0-generate-001"].endpoint_types == {"predictLongRunning"}
    for record in models.values():
        # description, sampling defaults and `thinking` are not diffed.
        assert set(record.field_map()) == {
            "display_name",
            "context_window",
            "max_output_tokens",
            "version",
        }


def test_fields_not_diffed() -> None:
    body = json.loads(json.dumps(FIXTURE))
    for model in body["models"]:
        model.update(description="new words", temperature=0.5, topP=0.5, topK=1)
        model.update(maxTemperature=1, thinking=False, baseModelId="x")
    assert parse(body) == parse(FIXTURE)


def test_generation_methods_are_a_set() -> None:
    body = {"models": [{"name": "models/m", "supportedGenerationMethods": ["b", "a", "b"]}]}
    assert parse(body)["m"].endpoint_types == {"a", "b"}


def test_proto3_leaves_out_empty_values() -> None:
    # No methods: none supported (an empty set, diffed); no limits: nothing to diff.
    record = parse({"models": [{"name": "models/m", "version": "001"}]})["m"]
    assert record.endpoint_types == frozenset()
    assert record.field_map() == {"version": "001"}
    assert parse({}) == {}
    assert parse({"models": []}) == {}


def test_a_name_without_the_prefix_is_kept() -> None:
    assert list(parse({"models": [{"name": "gemini-pro"}]})) == ["gemini-pro"]


def test_the_prefix_is_stripped_only_once() -> None:
    assert list(parse({"models": [{"name": "models/models/x"}]})) == ["models/x"]


# -- pagination -----------------------------------------------------------------------------


def test_next_page_token_asks_for_the_next_page() -> None:
    page = GeminiFlavor().parse(FIXTURE, REQUEST)
    assert page.next is not None
    assert page.next.url == REQUEST.url
    assert page.next.params == (
        ("pageSize", "1000"),
        ("pageToken", "Chxtb2RlbHMvdmVvLTMuMC1nZW5lcmF0ZS0wMDE="),
    )
    assert page.next.wire_headers() == {"x-goog-api-key": KEY}


@pytest.mark.parametrize("envelope", [{}, {"nextPageToken": ""}, {"nextPageToken": None}])
def test_no_token_is_the_last_page(envelope: dict[str, Any]) -> None:
    body = {"models": [{"name": "models/m"}], **envelope}
    assert GeminiFlavor().parse(body, REQUEST).next is None


def test_page_size_is_a_class_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GeminiFlavor, "page_size", 2)
    request = GeminiFlavor().first_request(BASE_URL, Secret(KEY))
    assert request.params == (("pageSize", "2"),)
    page = GeminiFlavor().parse({"nextPageToken": "t"}, request)
    assert page.models == []
    assert page.next is not None and page.next.params == (("pageSize", "2"), ("pageToken", "t"))


# -- what is not a models list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "an array, not a JSON object"),
        ("ok", "a string, not a JSON object"),
        (
            API_KEY_INVALID,
            r"is an error: API key not valid. Please pass a valid API key. \(API_KEY_INVALID\)",
        ),
        ({"data": []}, "no models list"),
        ({"models": None}, "models is null, not a list"),
        ({"models": {"name": "models/m"}}, "models is an object, not a list"),
        ({"models": ["models/m"]}, r"models\[0\] is a string, not a model object"),
        ({"models": [{"displayName": "M"}]}, r"models\[0\] has no name"),
        ({"models": [{"name": ""}]}, r"models\[0\] has an empty name"),
        ({"models": [{"name": 1}]}, r"models\[0\] has a name that is a number"),
        ({"models": [{"name": "models/"}]}, "with no model after it"),
        (
            {"models": [{"name": "models/a"}, {"name": "a"}]},
            "model id 'a' appears twice",
        ),
        (
            {"models": [{"name": "models/m", "supportedGenerationMethods": "generateContent"}]},
            "model 'm': supportedGenerationMethods is a string, not a list of strings",
        ),
        (
            {"models": [{"name": "models/m", "supportedGenerationMethods": [None]}]},
            "supportedGenerationMethods is an array, not a list of strings",
        ),
        (
            {"models": [{"name": "models/m", "inputTokenLimit": "1048576"}]},
            "model 'm': inputTokenLimit is a string, not an integer",
        ),
        (
            {"models": [{"name": "models/m", "outputTokenLimit": 1.5}]},
            "model 'm': outputTokenLimit is a number, not an integer",
        ),
        (
            {"models": [{"name": "models/m", "version": 1}]},
            "model 'm': version is a number, not a string",
        ),
        ({"models": [], "nextPageToken": 5}, "nextPageToken is a number, not a string"),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        GeminiFlavor().parse(body, REQUEST)


# -- errors ---------------------------------------------------------------------------------


def test_api_key_invalid_is_auth() -> None:
    flavor = GeminiFlavor()
    assert flavor.error_kind(400, API_KEY_INVALID) is ErrorKind.AUTH
    assert flavor.error_kind(400, [API_KEY_INVALID]) is ErrorKind.AUTH  # wrapped in a list


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "User location is not supported for the API use.",
                    "status": "FAILED_PRECONDITION",
                    "details": [{"reason": "LOCATION_NOT_SUPPORTED"}],
                }
            },
        ),
        (403, {"error": {"code": 403, "details": [{"reason": "API_KEY_SERVICE_BLOCKED"}]}}),
        (500, API_KEY_INVALID),  # a 5xx stays a server error whatever it says
        (400, None),
        (400, "API_KEY_INVALID"),
        (400, {"error": {"details": "API_KEY_INVALID"}}),
        (400, {"error": {"details": [None, 3, {"reason": 1}]}}),
    ],
)
def test_other_errors_are_classified_by_status(status: int, body: object) -> None:
    assert GeminiFlavor().error_kind(status, body) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (API_KEY_INVALID, "API key not valid. Please pass a valid API key. (API_KEY_INVALID)"),
        ([API_KEY_INVALID], "API key not valid. Please pass a valid API key. (API_KEY_INVALID)"),
        (
            {
                "error": {
                    "code": 404,
                    "message": "models/nope is not found for API version v1beta",
                    "status": "NOT_FOUND",
                }
            },
            "models/nope is not found for API version v1beta (NOT_FOUND)",
        ),
        (
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            "quota (RESOURCE_EXHAUSTED)",
        ),
        (
            {"error": {"code": 503, "message": "The model is overloaded."}},
            "The model is overloaded.",
        ),
        ({"error": {"code": 500, "status": "INTERNAL"}}, "INTERNAL"),
        ({"error": "plain"}, "plain"),
        (None, None),
    ],
)
def test_error_message(body: object, message: str | None) -> None:
    assert GeminiFlavor().error_message(body) == message
