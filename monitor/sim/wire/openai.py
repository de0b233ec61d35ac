"""OpenAI's `GET /v1/models`: Bearer auth, one unpaginated page in random order.

The bare list every OpenAI-compatible server descends from: only `id`, `object`,
`created` and `owned_by`, so presence is the only thing worth diffing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from monitor.sim.wire.base import (
    CREATED,
    Caller,
    WireFormat,
    WireRequest,
    WireResponse,
    encode,
    gateway_error,
    json_response,
    request_id,
)

GATEWAY_PATHS = frozenset({"/v1/models", "/v1/models/"})


def openai_entry(model: Mapping[str, Any]) -> dict[str, Any]:
    """The four fields of an OpenAI model object."""
    return {
        "id": model["id"],
        "object": "model",
        "created": model.get("created", CREATED),
        "owned_by": model.get("owned_by", "openai"),
    }


def invalid_url(request: WireRequest) -> WireResponse:
    """The 404 of new-api and its relatives for a path they do not serve."""
    message = f"Invalid URL ({request.method} {request.path})"
    return json_response(404, gateway_error(message, "invalid_request_error"))


class OpenAIWire(WireFormat[tuple[bytes, ...]]):
    """Plain OpenAI. Its 401 keeps the gateway-style body the simulator always sent."""

    name = "openai"
    models_paths = GATEWAY_PATHS

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[bytes, ...]:
        return tuple(encode(openai_entry(model)) for model in models)

    def list_response(
        self, request: WireRequest, prepared: tuple[bytes, ...], rng: Random
    ) -> WireResponse:
        fragments = list(prepared)
        rng.shuffle(fragments)
        return WireResponse(200, b'{"object":"list","data":[' + b",".join(fragments) + b"]}")

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        message = f"Invalid token (request id: {request_id()})"
        return json_response(401, gateway_error(message, "invalid_request_error"))

    def not_found(self, request: WireRequest) -> WireResponse:
        return invalid_url(request)

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        # OpenAI's own shape: `param` and `code` are null when they do not apply.
        if status >= 500:
            type = "server_error"
        elif status == 429:
            type = "requests"
        else:
            type = "invalid_request_error"
        body = {"error": {"message": message, "type": type, "param": None, "code": code or None}}
        return json_response(status, body)
