"""`flavor = "auto"`: detection by host and by body, and delegation to the chosen flavor."""

from __future__ import annotations

import random
from typing import Any

import pytest

from monitor.config import Secret
from monitor.core.records import ErrorKind, ModelRecord
from monitor.sources import registry
from monitor.sources.auto import AutoFlavor, detect, provider_for_host
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.litellm import LiteLLMFlavor
from monitor.sources.ollama import OllamaFlavor
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor
from monitor.sources.openrouter import OpenRouterFlavor
from tests.support.fixtures import load

SECRET = Secret("sk-auto-secret")


NEW_API = {
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
            "supported_endpoint_types": ["anthropic", "openai"],
        },
    ],
    "object": "list",
    "success": True,
}
ONE_API = {
    "object": "list",
    "data": [
        {
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
    ],
}
OPENAI = {
    "object": "list",
    "data": [
        # gpt-3.5-turbo really has LiteLLM's constant: one such entry is not LiteLLM.
        {"id": "gpt-3.5-turbo", "object": "model", "created": 1677610602, "owned_by": "openai"},
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "o3", "object": "model", "created": 1744225308, "owned_by": "system"},
        {"id": "dall-e-3", "object": "model", "created": 1698785189, "owned_by": "system"},
    ],
}
VLLM = {
    "object": "list",
    "data": [
        {
            "id": "meta-llama/Llama-3.1-8B-Instruct",
            "object": "model",
            "created": 1764151200,
            "owned_by": "vllm",
            "root": "meta-llama/Llama-3.1-8B-Instruct",
            "parent": None,
            "max_model_len": 131072,
            "permission": [{"id": "modelperm-1", "object": "model_permission"}],
        }
    ],
}

BODIES: dict[str, tuple[dict[str, Any], type]] = {
    "new-api": (NEW_API, NewApiFlavor),
    "one-api": (ONE_API, OneApiFlavor),
    "openai": (OPENAI, OpenAIFlavor),
    "openrouter": (load("openrouter-models.json"), OpenRouterFlavor),
    "litellm": (load("litellm-models.json"), LiteLLMFlavor),
    "ollama": (load("ollama-models.json"), OllamaFlavor),
}


def run(base_url: str, body: object) -> tuple[AutoFlavor, list[ModelRecord]]:
    """A walk as the fetcher makes it, with the server answering `body` to every request."""
    flavor = AutoFlavor(registry.FLAVORS)
    request: Request | None = flavor.first_request(base_url, SECRET)
    models: list[ModelRecord] = []
    seen = set()
    while request is not None:
        assert request.key not in seen
        seen.add(request.key)
        page = flavor.parse(body, request)
        models += page.models
        request = page.next
    return flavor, models


@pytest.mark.parametrize("name", sorted(BODIES))
def test_detects_every_openai_style_flavor(name: str) -> None:
    body, flavor_class = BODIES[name]
    flavor, models = run("https://gw.example/v1", body)
    assert flavor.detected == name
    assert isinstance(flavor.delegate, flavor_class)
    assert flavor.reason
    # The records are exactly what the chosen flavor makes of the body.
    own = flavor_class()
    expected = own.parse(body, own.first_request("https://gw.example/v1", SECRET)).models
    assert models == expected
    assert detect(body)[0] == name


@pytest.mark.parametrize("name", sorted(BODIES))
def test_detection_does_not_depend_on_order(name: str) -> None:
    body, _ = BODIES[name]
    for seed in range(5):
        data = list(body["data"])
        random.Random(seed).shuffle(data)
        assert detect({**body, "data": data})[0] == name


@pytest.mark.parametrize(
    ("body", "name"),
    [
        # new-api before endpoint types, and with an empty list
        ({"data": [{"id": "a", "owned_by": "openai"}], "success": True}, "new-api"),
        ({"data": [], "success": True}, "new-api"),
        # new-api's and one-api's constant `created` alone says nothing: OpenAI-style
        ({"data": [{"id": "a", "created": 1626777600, "owned_by": "x"}]}, "openai"),
        # LiteLLM without model info, by its constant on every entry
        ({"data": [{"id": "a", "created": 1677610602, "owned_by": "openai"}]}, "litellm"),
        # LiteLLM with model info on one entry only
        (
            {"data": [{"id": "a", "created": 5}, {"id": "b", "created": 6, "mode": "chat"}]},
            "litellm",
        ),
        # Ollama with no library model: tagged ids whose namespace is owned_by
        (
            {
                "data": [
                    {"id": "hf.co/bartowski/Qwen3-GGUF:Q4_K_M", "owned_by": "bartowski"},
                    {"id": "huihui_ai/deepseek-r1-abliterated:8b", "owned_by": "huihui_ai"},
                ]
            },
            "ollama",
        ),
        # ... but an untagged id is not Ollama-shaped
        ({"data": [{"id": "bartowski/x", "owned_by": "bartowski"}]}, "openai"),
        # vLLM: presence only while no vllm flavor is registered
        (VLLM, "openai"),
        # nothing to tell formats apart
        ({"object": "list", "data": []}, "openai"),
        ({"data": [{"id": "a"}, {"id": "b", "owned_by": "me"}]}, "openai"),
    ],
)
def test_detection_rules(body: dict[str, Any], name: str) -> None:
    assert detect(body)[0] == name


def test_vllm_flavor_is_used_once_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    class VllmFlavor(OpenAIFlavor):
        name = "vllm"

    monkeypatch.setitem(registry.FLAVORS, "vllm", VllmFlavor)
    flavor, _ = run("http://127.0.0.1:8000/v1", VLLM)
    assert flavor.detected == "vllm"
    assert isinstance(flavor.delegate, VllmFlavor)


# -- by host --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://api.anthropic.com/v1", "anthropic"),
        ("https://API.Anthropic.com./v1", "anthropic"),
        ("https://generativelanguage.googleapis.com/v1beta", "gemini"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://eu.openrouter.ai/api/v1", "openrouter"),
        ("https://notopenrouter.ai/api/v1", None),
        ("https://openrouter.ai.evil.example/v1", None),
        ("https://gw.example/v1", None),
        ("http://[::1/v1", None),
    ],
)
def test_provider_for_host(base_url: str, provider: str | None) -> None:
    assert provider_for_host(base_url) == provider


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.anthropic.com/v1",
        "https://generativelanguage.googleapis.com/v1beta",
        "https://openrouter.ai/api/v1",
    ],
)
def test_host_delegates_to_the_registered_flavor(base_url: str) -> None:
    provider = provider_for_host(base_url)
    assert provider is not None
    if provider not in registry.FLAVORS:
        pytest.skip(f"{provider} is not registered")
    flavor = AutoFlavor()
    request = flavor.first_request(base_url, SECRET)
    assert flavor.detected == provider
    own = registry.FLAVORS[provider]()
    assert isinstance(flavor.delegate, type(own))
    assert request == own.first_request(base_url, SECRET)
    assert flavor.max_pages == own.max_pages


def test_openrouter_found_by_body_is_asked_again_for_every_modality() -> None:
    body = load("openrouter-models.json")
    flavor = AutoFlavor()
    first = flavor.first_request("https://mirror.example/api/v1", SECRET)
    page = flavor.parse(body, first)
    # What came back was read without output_modalities=all: only text models. Not used.
    assert page.models == []
    assert page.next == Request(
        url="https://mirror.example/api/v1/models",
        headers=first.headers,
        params=(("output_modalities", "all"),),
    )
    assert flavor.detected == "openrouter"
    second = flavor.parse(body, page.next)
    assert len(second.models) == len(body["data"])
    assert second.next is None


def test_openrouter_host_and_body() -> None:
    body = load("openrouter-models.json")
    flavor, models = run("https://openrouter.ai/api/v1", body)
    assert flavor.detected == "openrouter"
    assert {m.id for m in models} == {m["id"] for m in body["data"]}


def test_unregistered_provider_falls_back_to_the_openai_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without = {k: v for k, v in registry.FLAVORS.items() if k != "anthropic"}
    flavor = AutoFlavor(without)
    request = flavor.first_request("https://api.anthropic.com/v1", SECRET)
    assert flavor.detected is None
    assert request.wire_headers() == {"Authorization": "Bearer sk-auto-secret"}


# -- the OpenAI-style request and what is not a models list ----------------------------------


def test_openai_style_request_is_bearer_only() -> None:
    flavor = AutoFlavor()
    request = flavor.first_request("https://gw.example/v1/", SECRET)
    assert request.url == "https://gw.example/v1/models"
    assert request.params == ()
    # Only Authorization: x-api-key would switch new-api to the Anthropic format.
    assert request.wire_headers() == {"Authorization": "Bearer sk-auto-secret"}
    assert flavor.detected is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"success": False, "message": "获取用户分组失败"}, '"success": false'),
        ({"error": {"message": "Invalid token", "type": "new_api_error"}}, "Invalid token"),
        ({"object": "list", "data": None}, 'set flavor = "ollama"'),
        ({"models": [{"name": "models/gemini-2.5-pro"}]}, "models list, not a data list"),
        ({"object": "list"}, "no data list"),
        ([], "not a JSON object"),
        ({"data": [{"id": "a"}, {"id": "a"}], "success": True}, "appears twice"),
        ({"data": [{"id": "m", "mode": 3}]}, "mode is a number"),
    ],
)
def test_invalid_bodies_choose_nothing(body: object, message: str) -> None:
    flavor = AutoFlavor()
    request = flavor.first_request("https://gw.example/v1", SECRET)
    with pytest.raises(InvalidResponse, match=message):
        flavor.parse(body, request)
    assert flavor.detected is None
    assert flavor.delegate is None


def test_the_first_successful_body_decides() -> None:
    flavor = AutoFlavor()
    request = flavor.first_request("https://gw.example/v1", SECRET)
    flavor.parse(NEW_API, request)
    assert flavor.detected == "new-api"
    # Later pages of the same walk are read by the chosen flavor, whatever they look like.
    models = flavor.parse({"data": [{"id": "x", "owned_by": "library"}]}, request).models
    assert models == [ModelRecord("x", None, (("owned_by", "library"),))]
    assert flavor.detected == "new-api"


# -- errors ---------------------------------------------------------------------------------


def test_error_kind_before_detection() -> None:
    no_db = {"error": {"message": "No connected db.", "type": "no_db_connection", "code": "400"}}
    assert AutoFlavor().error_kind(400, no_db) is ErrorKind.AUTH
    assert AutoFlavor().error_kind(400, {"error": {"message": "bad"}}) is None
    assert AutoFlavor().error_kind(401, None) is None


def test_error_kind_and_message_of_the_chosen_flavor() -> None:
    if "gemini" not in registry.FLAVORS:
        pytest.skip("gemini is not registered")
    flavor = AutoFlavor()
    flavor.first_request("https://generativelanguage.googleapis.com/v1beta", SECRET)
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
    own = registry.FLAVORS["gemini"]()
    assert flavor.error_kind(400, body) == own.error_kind(400, body)
    assert flavor.error_message(body) == own.error_message(body)
