"""Normalization of OpenAI-style models lists (new-api, one-api, openai) on plain dicts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.model import Secret
from monitor.core.records import ModelRecord
from monitor.sources.base import Flavor, InvalidResponse, Request
from monitor.sources.interning import RecordTable
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor

REQUEST = Request(url="https://gw.example/v1/models")

NEW_API_BODY: dict[str, Any] = {
    "data": [
        {
            "id": "gpt-4o",
            "object": "model",
            "created": 1626777600,
            "owned_by": "openai",
            "supported_endpoint_types": ["openai", "openai-response"],
        },
        {
            "id": "claude-sonnet-4",
            "object": "model",
            "created": 1626777600,
            "owned_by": "claude",
            "supported_endpoint_types": ["anthropic", "openai", "anthropic"],
        },
        {
            "id": "jina-reranker-v2",
            "object": "model",
            "created": 1626777600,
            "owned_by": "custom",
            "supported_endpoint_types": [],
        },
    ],
    "object": "list",
    "success": True,
}

ONE_API_MODEL: dict[str, Any] = {
    "id": "gpt-3.5-turbo",
    "object": "model",
    "created": 1626777600,
    "owned_by": "openai",
    "permission": [
        {
            "id": "modelperm-LwHkVFn8AcMItP432fKKDIKJ",
            "object": "model_permission",
            "created": 1626777600,
            "allow_create_engine": True,
            "organization": "*",
            "group": None,
            "is_blocking": False,
        }
    ],
    "root": "gpt-3.5-turbo",
    "parent": None,
}


def parse(flavor: Flavor, body: object) -> dict[str, ModelRecord]:
    page = flavor.parse(body, REQUEST)
    assert page.next is None  # none of these paginate
    return {record.id: record for record in page.models}


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", [NewApiFlavor(), OneApiFlavor(), OpenAIFlavor()])
@pytest.mark.parametrize("base_url", ["https://gw.example/v1", "https://gw.example/v1/"])
def test_first_request_sends_only_a_bearer_token(flavor: Flavor, base_url: str) -> None:
    request = flavor.first_request(base_url, Secret("sk-secret-value"))
    assert request.url == "https://gw.example/v1/models"
    assert request.params == ()
    # Only Authorization: x-api-key would switch new-api to the Anthropic format.
    assert request.wire_headers() == {"Authorization": "Bearer sk-secret-value"}
    assert "sk-secret-value" not in repr(request)
    assert "sk-secret-value" not in str(request.headers)


# -- new-api --------------------------------------------------------------------------------


def test_new_api_normalization() -> None:
    models = parse(NewApiFlavor(), NEW_API_BODY)
    assert models == {
        "gpt-4o": ModelRecord.build(
            "gpt-4o", ["openai", "openai-response"], {"owned_by": "openai"}
        ),
        "claude-sonnet-4": ModelRecord.build(
            "claude-sonnet-4", ["anthropic", "openai"], {"owned_by": "claude"}
        ),
        "jina-reranker-v2": ModelRecord.build("jina-reranker-v2", [], {"owned_by": "custom"}),
    }
    # `created` and `object` never reach the record.
    assert models["gpt-4o"].field_map() == {"owned_by": "openai"}


def test_new_api_without_endpoint_types_is_unknown_not_empty() -> None:
    body = {"data": [{"id": "old", "object": "model", "owned_by": "openai"}], "success": True}
    record = parse(NewApiFlavor(), body)["old"]
    assert record.endpoint_types is None
    assert parse(NewApiFlavor(), NEW_API_BODY)["jina-reranker-v2"].endpoint_types == frozenset()


def test_new_api_endpoint_types_are_opaque_strings() -> None:
    body = {"data": [{"id": "m", "supported_endpoint_types": ["chat", "My-Fork Type", ""]}]}
    assert parse(NewApiFlavor(), body)["m"].endpoint_types == {"chat", "My-Fork Type", ""}


@pytest.mark.parametrize("types", [None, "openai", {"openai": True}, ["openai", 1], [None]])
def test_new_api_rejects_malformed_endpoint_types(types: object) -> None:
    body = {"data": [{"id": "m", "supported_endpoint_types": types}]}
    with pytest.raises(InvalidResponse, match="supported_endpoint_types"):
        parse(NewApiFlavor(), body)


def test_new_api_odd_owned_by_values_are_kept_as_data() -> None:
    body = {"data": [{"id": "a", "owned_by": None}, {"id": "b", "owned_by": ["x"]}, {"id": "c"}]}
    models = parse(NewApiFlavor(), body)
    assert models["a"].field_map() == {"owned_by": None}
    assert models["b"].field_map() == {"owned_by": ("x",)}
    assert models["c"].fields == ()


def test_fast_path_equals_build() -> None:
    record = parse(NewApiFlavor(), NEW_API_BODY)["gpt-4o"]
    built = ModelRecord.build("gpt-4o", ("openai-response", "openai"), {"owned_by": "openai"})
    assert record == built
    assert hash(record) == hash(built)
    assert record.to_json() == built.to_json()


def test_order_does_not_matter() -> None:
    shuffled = dict(NEW_API_BODY, data=list(NEW_API_BODY["data"]))
    random.Random(5).shuffle(shuffled["data"])
    first = NewApiFlavor().parse(NEW_API_BODY, REQUEST).models
    second = NewApiFlavor().parse(shuffled, REQUEST).models
    assert sorted(first, key=lambda r: r.id) == sorted(second, key=lambda r: r.id)


# -- one-api and openai ---------------------------------------------------------------------


def test_one_api_drops_permission_root_parent_created() -> None:
    body = {"object": "list", "data": [ONE_API_MODEL]}
    record = parse(OneApiFlavor(), body)["gpt-3.5-turbo"]
    assert record == ModelRecord.build("gpt-3.5-turbo", None, {"owned_by": "openai"})


def test_one_api_ignores_endpoint_types() -> None:
    body = {"data": [dict(ONE_API_MODEL, supported_endpoint_types=["openai"])]}
    assert parse(OneApiFlavor(), body)["gpt-3.5-turbo"].endpoint_types is None


def test_openai_is_presence_only() -> None:
    body = {
        "object": "list",
        "data": [
            {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
            {"id": "o3", "object": "model", "created": 1744225308, "owned_by": "system"},
        ],
    }
    assert parse(OpenAIFlavor(), body) == {"gpt-4o": ModelRecord("gpt-4o"), "o3": ModelRecord("o3")}


def test_empty_list_is_a_valid_answer() -> None:
    assert parse(NewApiFlavor(), {"data": [], "object": "list", "success": True}) == {}


# -- what is not a models list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "an array, not a JSON object"),
        ("ok", "a string, not a JSON object"),
        (None, "null, not a JSON object"),
        ({"success": False, "message": "获取用户分组失败"}, 'success": false: 获取用户分组失败'),
        ({"success": False}, '"success": false'),
        ({"error": {"message": "no access", "type": "new_api_error"}}, "is an error: no access"),
        ({"error": "model not loaded"}, "is an error: model not loaded"),
        ({"data": [], "error": {"type": "x"}}, "is an error: x"),
        ({"object": "list", "success": True}, "no data list"),
        ({"data": None, "success": True}, "data is null, not a list"),
        ({"data": {}, "success": True}, "data is an object, not a list"),
        ({"data": "gpt-4o"}, "data is a string, not a list"),
        ({"data": ["gpt-4o"]}, r"data\[0\] is a string, not a model object"),
        ({"data": [{"id": "a"}, None]}, r"data\[1\] is null, not a model object"),
        ({"data": [{"object": "model"}]}, r"data\[0\] has no id"),
        ({"data": [{"id": 42}]}, r"data\[0\] has an id that is a number"),
        ({"data": [{"id": ""}]}, r"data\[0\] has an empty id"),
        ({"data": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}, "model id 'a' appears twice"),
    ],
)
@pytest.mark.parametrize("flavor", [NewApiFlavor(), OneApiFlavor(), OpenAIFlavor()])
def test_invalid_bodies(flavor: Flavor, body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        flavor.parse(body, REQUEST)


def test_null_error_key_is_not_an_error() -> None:
    body = {"data": [{"id": "a"}], "error": None}
    assert list(parse(OpenAIFlavor(), body)) == ["a"]


# -- error bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # new-api / one-api / OpenAI / LiteLLM
        (
            {"error": {"message": "Invalid token (request id: 1)", "type": "new_api_error"}},
            "Invalid token (request id: 1)",
        ),
        # Anthropic
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "Overloaded",
        ),
        # Gemini, also wrapped in a list
        (
            {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}},
            "API key not valid.",
        ),
        ([{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}], "denied"),
        # vLLM, Ollama
        ({"error": "model 'x' not found"}, "model 'x' not found"),
        # new-api's handler failure
        ({"success": False, "message": "数据库错误"}, "数据库错误"),
        # no message: the most telling code
        ({"error": {"message": "", "type": "new_api_panic"}}, "new_api_panic"),
        ({"error": {"code": 429}}, "429"),
        ({"data": []}, None),
        ("plain", None),
        (None, None),
        ({"error": {"code": True}}, None),
    ],
)
def test_error_message(body: object, message: str | None) -> None:
    assert NewApiFlavor().error_message(body) == message


# -- robustness -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    models=st.lists(
        st.fixed_dictionaries(
            {"id": st.text(min_size=1, max_size=8)},
            optional={
                "owned_by": st.text(max_size=5),
                "supported_endpoint_types": st.lists(st.text(max_size=5), max_size=3),
            },
        ),
        max_size=10,
        unique_by=lambda m: m["id"],
    ),
    seed=st.integers(),
)
def test_records_are_independent_of_order(models: list[dict[str, Any]], seed: int) -> None:
    shuffled = list(models)
    random.Random(seed).shuffle(shuffled)
    first = parse(NewApiFlavor(), {"data": models, "success": True})
    second = parse(NewApiFlavor(), {"data": shuffled, "success": True})
    assert first == second
    for model in models:
        record = first[model["id"]]
        assert record == ModelRecord.build(
            model["id"],
            model.get("supported_endpoint_types"),
            {"owned_by": model["owned_by"]} if "owned_by" in model else {},
        )


# -- the intern-table fast path of new-api ---------------------------------------------------


def _seen_before(table: RecordTable, *items: dict[str, Any]) -> None:
    """Parse once so every item's record is in `table`."""
    parse(NewApiFlavor(table), {"data": list(items)})


def test_fast_path_still_rejects_a_string_of_types_it_has_seen_as_a_list() -> None:
    table = RecordTable()
    _seen_before(table, {"id": "fp-m", "owned_by": "o", "supported_endpoint_types": ["a", "b"]})
    body = {"data": [{"id": "fp-m", "owned_by": "o", "supported_endpoint_types": "ab"}]}
    with pytest.raises(InvalidResponse, match="supported_endpoint_types"):
        parse(NewApiFlavor(table), body)


def test_fast_path_still_rejects_duplicates_and_non_objects() -> None:
    table = RecordTable()
    item = {"id": "fp-d", "owned_by": "o", "supported_endpoint_types": ["x"]}
    _seen_before(table, item)
    with pytest.raises(InvalidResponse, match="appears twice"):
        parse(NewApiFlavor(table), {"data": [item, dict(item)]})
    with pytest.raises(InvalidResponse, match=r"data\[1\] is a string"):
        parse(NewApiFlavor(table), {"data": [item, "fp-d"]})


def test_fast_path_hands_out_the_interned_records() -> None:
    table = RecordTable()
    item = {"id": "fp-i", "owned_by": "o", "supported_endpoint_types": ["x", "y"]}
    first = NewApiFlavor(table).parse({"data": [item]}, REQUEST).models[0]
    again = NewApiFlavor(table).parse({"data": [dict(item, created=1)]}, REQUEST).models[0]
    assert again is first
    assert len(table) == 1
    # A change of any kept field is a different record, never the old one.
    moved = NewApiFlavor(table).parse({"data": [dict(item, owned_by="p")]}, REQUEST).models[0]
    assert moved is not first and moved.field_map() == {"owned_by": "p"}


def test_owners_of_separate_tables_never_share_a_record() -> None:
    item = {"id": "fp-s", "owned_by": "o", "supported_endpoint_types": ["x"]}
    first = NewApiFlavor(RecordTable()).parse({"data": [item]}, REQUEST).models[0]
    other = NewApiFlavor(RecordTable()).parse({"data": [item]}, REQUEST).models[0]
    assert other == first and other is not first


def test_a_full_table_starts_again_and_still_parses_exactly() -> None:
    table = RecordTable(limit=3)
    items = [{"id": f"fp-{i}", "owned_by": "o", "supported_endpoint_types": []} for i in range(7)]
    for item in items:
        parse(NewApiFlavor(table), {"data": [item]})
    assert len(table) <= 3
    again = parse(NewApiFlavor(table), {"data": items})
    assert sorted(again) == sorted(i["id"] for i in items)
