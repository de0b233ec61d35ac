"""OpenRouter's models list: normalization on a real-shaped fixture."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from monitor.config import Secret
from monitor.core.diff import diff_models
from monitor.core.records import ModelRecord
from monitor.events.thresholds import FieldPolicy
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.openrouter import OpenRouterFlavor, normalize_decimal
from tests.support.fixtures import load

FIXTURE = load("openrouter-models.json")
REQUEST = OpenRouterFlavor().first_request("https://openrouter.ai/api/v1", Secret("sk-or-v1-x"))


def parse(body: object) -> dict[str, ModelRecord]:
    page = OpenRouterFlavor().parse(body, REQUEST)
    assert page.next is None
    return {record.id: record for record in page.models}


def one(**changes: Any) -> dict[str, Any]:
    """The fixture's first model with some keys replaced (None: removed)."""
    model = copy.deepcopy(FIXTURE["data"][0])
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value
    return model


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/"]
)
def test_first_request_asks_for_every_output_modality(base_url: str) -> None:
    request = OpenRouterFlavor().first_request(base_url, Secret("sk-or-v1-secret"))
    assert request.url == "https://openrouter.ai/api/v1/models"
    # Without it OpenRouter returns only text-output models.
    assert request.params == (("output_modalities", "all"),)
    assert request.wire_headers() == {"Authorization": "Bearer sk-or-v1-secret"}
    assert "sk-or-v1-secret" not in repr(request)


def test_no_token_no_header() -> None:
    request = OpenRouterFlavor().first_request("https://openrouter.ai/api/v1", Secret(" "))
    assert request.wire_headers() == {}


# -- normalization --------------------------------------------------------------------------


def test_fixture_normalization() -> None:
    models = parse(FIXTURE)
    assert sorted(models) == [
        "anthropic/claude-sonnet-4",
        "deepseek/deepseek-r1:free",
        "google/gemini-2.5-flash-image",
        "openai/gpt-4o",
        "openrouter/auto",
    ]
    assert models["openai/gpt-4o"] == ModelRecord.build(
        "openai/gpt-4o",
        None,
        {
            "display_name": "OpenAI: GPT-4o",
            "context_window": 128000,
            "max_output_tokens": 16384,
            "top_provider.context_length": 128000,
            "top_provider.is_moderated": True,
            "pricing.prompt": "0.0000025",
            "pricing.completion": "0.00001",
            "pricing.request": "0",
            "pricing.image": "0.003613",
            "pricing.web_search": "0",
            "pricing.internal_reasoning": "0",
            "pricing.input_cache_read": "0.00000125",
            "input_modalities": ["file", "image", "text"],
            "output_modalities": ["text"],
            "supported_parameters": sorted(FIXTURE["data"][0]["supported_parameters"]),
        },
    )
    assert all(record.endpoint_types is None for record in models.values())


def test_every_pricing_key_becomes_a_field() -> None:
    fields = parse(FIXTURE)["anthropic/claude-sonnet-4"].field_map()
    assert {k: v for k, v in fields.items() if k.startswith("pricing.")} == {
        "pricing.prompt": "0.000003",
        "pricing.completion": "0.000015",
        "pricing.request": "0",
        "pricing.image": "0.0048",
        "pricing.web_search": "0.01",
        "pricing.internal_reasoning": "0",
        "pricing.input_cache_read": "0.0000003",
        "pricing.input_cache_write": "0.00000375",
    }


def test_image_output_models_keep_their_modalities() -> None:
    fields = parse(FIXTURE)["google/gemini-2.5-flash-image"].field_map()
    assert fields["output_modalities"] == ("image", "text")
    assert fields["input_modalities"] == ("image", "text")


def test_variable_price_and_null_limits() -> None:
    fields = parse(FIXTURE)["openrouter/auto"].field_map()
    assert fields["pricing.prompt"] == "-1"  # kept as given: "the price varies"
    assert fields["pricing.completion"] == "-1"
    # Nulls are left out, never stored as None.
    assert "max_output_tokens" not in fields
    assert "top_provider.context_length" not in fields
    assert fields["supported_parameters"] == ()
    assert fields["context_window"] == 2000000


def test_expiration_date() -> None:
    models = parse(FIXTURE)
    assert models["deepseek/deepseek-r1:free"].field_map()["expiration_date"] == "2026-12-31"
    assert "expiration_date" not in models["openai/gpt-4o"].field_map()


NOT_DIFFED = {
    "created",
    "description",
    "canonical_slug",
    "hugging_face_id",
    "per_request_limits",
    "default_parameters",
    "architecture.tokenizer",
    "architecture.instruct_type",
    "architecture.modality",
    "tokenizer",
    "instruct_type",
    "modality",
    "name",
    "context_length",
    "top_provider.max_completion_tokens",
}


def test_volatile_and_descriptive_fields_are_dropped() -> None:
    for record in parse(FIXTURE).values():
        assert not NOT_DIFFED & set(record.field_map())
    changed = one(
        created=1,
        description="new words",
        canonical_slug="openai/gpt-4o-2024-05-13",
        hugging_face_id="x",
        per_request_limits={"prompt_tokens": "1"},
        default_parameters={"temperature": 1},
        architecture={
            **FIXTURE["data"][0]["architecture"],
            "tokenizer": "Other",
            "instruct_type": "chatml",
            "modality": "text->text",
        },
        links={"details": "/api/v1/models/openai/gpt-4o/endpoints"},
        knowledge_cutoff="2023-10-01",
    )
    before = parse({"data": [FIXTURE["data"][0]]})
    after = parse({"data": [changed]})
    assert diff_models(before, after) == []


def test_list_order_and_duplicates_do_not_matter() -> None:
    shuffled = one(
        supported_parameters=["top_p", "tools", "top_p"],
        architecture={"input_modalities": ["text", "image", "text"], "output_modalities": []},
    )
    fields = parse({"data": [shuffled]})["openai/gpt-4o"].field_map()
    assert fields["supported_parameters"] == ("tools", "top_p")
    assert fields["input_modalities"] == ("image", "text")
    assert fields["output_modalities"] == ()


# -- prices as decimals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0.0000030", "0.000003"),
        ("0.000003", "0.000003"),
        ("3e-6", "0.000003"),
        ("3E-6", "0.000003"),
        (" 0.0000030 ", "0.000003"),
        ("0.00", "0"),
        ("-0", "0"),
        ("1.50", "1.5"),
        ("10", "10"),
        ("1E+2", "100"),
        ("0.0000003", "0.0000003"),
        ("0.123456789012345678901234567890123", "0.123456789012345678901234567890123"),
        # kept exactly as given
        ("-1", "-1"),
        ("-1.0", "-1.0"),
        ("free", "free"),
        ("", ""),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("1e999999", "1e999999"),
    ],
)
def test_normalize_decimal(given: str, stored: str) -> None:
    assert normalize_decimal(given) == stored


def test_price_spellings_are_no_change() -> None:
    pricing = dict(FIXTURE["data"][0]["pricing"])
    respelled = {**pricing, "prompt": "0.00000250", "completion": "1E-5", "request": "0.0"}
    before = parse({"data": [one()]})
    after = parse({"data": [one(pricing=respelled)]})
    assert before == after
    assert diff_models(before, after) == []


def test_numeric_and_null_prices() -> None:
    fields = parse({"data": [one(pricing={"prompt": 0.0000025, "completion": None, "x": 0})]})[
        "openai/gpt-4o"
    ].field_map()
    assert fields["pricing.prompt"] == "0.0000025"
    assert fields["pricing.x"] == "0"
    assert "pricing.completion" not in fields


def test_price_change_is_a_field_change_with_percent() -> None:
    before = parse({"data": [one()]})
    after = parse({"data": [one(pricing={**FIXTURE["data"][0]["pricing"], "prompt": "0.000003"})]})
    (change,) = diff_models(before, after)
    assert change.to_json() == {
        "type": "field_changed",
        "model": "openai/gpt-4o",
        "tokens": [],
        "field": "pricing.prompt",
        "before": "0.0000025",
        "after": "0.000003",
        "percent": 20.0,
    }


def test_pricing_threshold_applies_to_field_names() -> None:
    policy = FieldPolicy(thresholds=(("pricing.*", 0.01),))
    confirmed = parse({"data": [one()]})
    small = parse(
        {"data": [one(pricing={**FIXTURE["data"][0]["pricing"], "prompt": "0.0000025125"})]}
    )
    assert policy.settle(confirmed, small) == confirmed  # a 0.5% move is settled
    large = parse({"data": [one(pricing={**FIXTURE["data"][0]["pricing"], "prompt": "0.0000026"})]})
    assert policy.settle(confirmed, large) == large


# -- what is not a models list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pricing": ["0.1"]}, r"'openai/gpt-4o': pricing is an array, not an object"),
        ({"pricing": {"prompt": {"usd": 1}}}, r"pricing.prompt is an object, not a decimal string"),
        ({"pricing": {"prompt": True}}, r"pricing.prompt is a boolean, not a decimal string"),
        ({"architecture": "text->text"}, r"architecture is a string, not an object"),
        (
            {"architecture": {"input_modalities": ["text", 1]}},
            r"architecture.input_modalities is an array, not a list of strings",
        ),
        (
            {"architecture": {"output_modalities": "text"}},
            r"architecture.output_modalities is a string, not a list of strings",
        ),
        ({"supported_parameters": "tools"}, r"supported_parameters is a string, not a list"),
        ({"context_length": "128000"}, r"context_length is a string, not a number"),
        ({"context_length": True}, r"context_length is a boolean, not a number"),
        ({"top_provider": [128000]}, r"top_provider is an array, not an object"),
        (
            {"top_provider": {"max_completion_tokens": "16k"}},
            r"top_provider.max_completion_tokens is a string, not a number",
        ),
        ({"top_provider": {"is_moderated": {}}}, r"top_provider.is_moderated is an object"),
        ({"name": ["GPT"]}, r"name is an array, not a single value"),
        ({"expiration_date": {"at": "2026"}}, r"expiration_date is an object"),
    ],
)
def test_malformed_entries(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse({"data": [one(**changes)]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"code": 401, "message": "No auth credentials found"}}, "No auth credentials"),
        ({"data": {"id": "x"}}, "data is an object, not a list"),
        ({"models": []}, "no data list"),
        ({"data": [{"id": "a"}, {"id": "a"}]}, "appears twice"),
        ([], "not a JSON object"),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse(body)


def test_error_message_with_an_integer_code() -> None:
    body = {"error": {"code": 402, "message": "Insufficient credits"}}
    assert OpenRouterFlavor().error_message(body) == "Insufficient credits"
    assert OpenRouterFlavor().error_message({"error": {"code": 429}}) == "429"


def test_minimal_entry() -> None:
    assert parse({"data": [{"id": "x/y"}]}) == {"x/y": ModelRecord("x/y")}


# -- pagination, should OpenRouter page the list ---------------------------------------------


def test_links_next_is_followed_on_the_same_url() -> None:
    body = {
        "data": [one()],
        "links": {"next": "https://elsewhere.example/api/v1/models?offset=500&limit=500"},
    }
    page = OpenRouterFlavor().parse(body, REQUEST)
    assert page.next == Request(
        url="https://openrouter.ai/api/v1/models",
        headers=REQUEST.headers,
        params=(("output_modalities", "all"), ("offset", "500"), ("limit", "500")),
    )
    # An empty page ends the walk whatever its links say; so does a link without a query.
    assert OpenRouterFlavor().parse({**body, "data": []}, REQUEST).next is None
    assert OpenRouterFlavor().parse({**body, "links": {"next": "/x"}}, REQUEST).next is None
    assert OpenRouterFlavor().parse({**body, "links": {"next": None}}, REQUEST).next is None
