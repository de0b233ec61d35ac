"""OpenRouter's `GET /api/v1/models`: public, no auth, text models only unless asked.

Without `output_modalities` only models that output text come back; `all` (or a comma
list such as `image,embeddings`) widens it, so a client that omits it misses models. The
order is stable (newest first) so the optional `offset`/`limit` slicing pages cleanly;
the answer carries no "more" flag, so a page shorter than `limit` is the last.
`/api/v1/models/user` is the same list behind a Bearer key, and gives the format's 401.
Prices are decimal strings; errors are `{"error":{"message","code"}}` with an integer code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from random import Random
from typing import Any, NamedTuple

from monitor.sim.wire.base import (
    Caller,
    WireFormat,
    WireRequest,
    WireResponse,
    encode,
    json_response,
    newest_first,
    output_modalities,
    parse_int,
)

USER_PATH = "/api/v1/models/user"
DEFAULT_CONTEXT_LENGTH = 128_000
DEFAULT_SUPPORTED_PARAMETERS = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
)
_PRICE_KEYS = ("prompt", "completion", "request", "image", "web_search", "internal_reasoning")


class _Entry(NamedTuple):
    outputs: frozenset[str]
    fragment: bytes


class OpenRouterWire(WireFormat[tuple[_Entry, ...]]):
    name = "openrouter"
    base_path = "/api/v1"
    models_paths = frozenset({"/api/v1/models", USER_PATH})

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        if request.path != USER_PATH:
            return None  # the public list ignores any key sent
        if caller.token is None:
            return self.error(401, "No auth credentials found")
        return None if caller.usable else self.unauthorized(request, caller)

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[_Entry, ...]:
        return tuple(
            _Entry(frozenset(output_modalities(model)), encode(openrouter_model(model)))
            for model in newest_first(models)
        )

    def list_response(
        self, request: WireRequest, prepared: tuple[_Entry, ...], rng: Random
    ) -> WireResponse:
        wanted = (request.param("output_modalities") or "text").lower()
        if wanted.strip() == "all":
            entries = list(prepared)
        else:
            modalities = {part.strip() for part in wanted.split(",") if part.strip()}
            entries = [entry for entry in prepared if entry.outputs & modalities]
        raw_offset, raw_limit = request.param("offset"), request.param("limit")
        offset = 0 if raw_offset is None else parse_int(raw_offset)
        limit = None if raw_limit is None else parse_int(raw_limit)
        if offset is None or offset < 0 or (raw_limit is not None and (limit is None or limit < 1)):
            return self.error(400, "offset and limit must be non-negative integers, limit >= 1")
        end = len(entries) if limit is None else offset + limit
        page = entries[offset:end]
        return WireResponse(200, b'{"data":[' + b",".join(e.fragment for e in page) + b"]}")

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return self.error(401, "User not found.")

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        return json_response(status, {"error": {"message": message, "code": status}})


def openrouter_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical model as an OpenRouter model object, keys in the API's order."""
    model_id = model["id"]
    inputs = list(model.get("input_modalities") or ["text"])
    outputs = output_modalities(model)
    context = model.get("context_window", DEFAULT_CONTEXT_LENGTH)
    pricing = dict.fromkeys(_PRICE_KEYS, "0")
    pricing.update({key: str(value) for key, value in (model.get("pricing") or {}).items()})
    top_provider = {
        "context_length": context,
        "max_completion_tokens": model.get("max_output_tokens"),
        "is_moderated": False,
    }
    top_provider.update(model.get("top_provider") or {})
    return {
        "id": model_id,
        "canonical_slug": model.get("canonical_slug") or model_id,
        "name": model.get("display_name") or model_id,
        "created": model.get("created", 0),
        "description": model.get("description", ""),
        "context_length": context,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": model.get("tokenizer", "Other"),
            "instruct_type": None,
        },
        "pricing": pricing,
        "top_provider": top_provider,
        "per_request_limits": None,
        "supported_parameters": list(
            model.get("supported_parameters", DEFAULT_SUPPORTED_PARAMETERS)
        ),
        "default_parameters": {},
        "expiration_date": model.get("expiration_date"),
    }
