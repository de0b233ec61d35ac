"""Ollama's OpenAI-compatible `GET /v1/models`: no auth, local models by modification time.

`created` is when the model was last pulled or changed (so it moves on a re-pull),
`owned_by` is the namespace of the name (`library` for official models). Ollama builds
`data` from a nil Go slice, so with no models it sends `"data":null`, not `[]`.
Errors are a plain `{"error":"..."}`; an unknown path is Go's text/plain 404.
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
    json_response,
    newest_first,
)


class OllamaWire(WireFormat[tuple[bytes, ...]]):
    name = "ollama"

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        return None  # no auth: a Bearer header, if any, is ignored

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[bytes, ...]:
        return tuple(encode(ollama_model(model)) for model in newest_first(models))

    def list_response(
        self, request: WireRequest, prepared: tuple[bytes, ...], rng: Random
    ) -> WireResponse:
        if not prepared:
            return WireResponse(200, b'{"object":"list","data":null}')
        return WireResponse(200, b'{"object":"list","data":[' + b",".join(prepared) + b"]}")

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return self.error(401, "unauthorized")

    def not_found(self, request: WireRequest) -> WireResponse:
        return WireResponse(404, b"404 page not found", "text/plain")

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        return json_response(status, {"error": message})


def ollama_model(model: Mapping[str, Any]) -> dict[str, Any]:
    name = model["id"]
    path = name.split(":", 1)[0].split("/")
    return {
        "id": name,
        "object": "model",
        "created": model.get("created", CREATED),
        "owned_by": path[-2] if len(path) >= 2 else "library",
    }
