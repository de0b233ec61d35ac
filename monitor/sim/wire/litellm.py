"""The LiteLLM proxy's `GET /v1/models` (and `/models`): a Bearer virtual key.

Entries are OpenAI's four fields with `created` and `owned_by` constant, plus `mode`,
`max_input_tokens` and `max_output_tokens` on the entries that have them. The order is
the proxy's config order. Errors are OpenAI-shaped with string codes and `"param":
"None"`. Set `connected_db = False` (on `GatewaySimulator.wire` while this format is
active) to play a proxy without a database, where a wrong key gets HTTP 400
"No connected db." instead of a 401.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from random import Random
from typing import Any

from monitor.sim.wire.base import (
    Caller,
    WireFormat,
    WireRequest,
    WireResponse,
    bearer,
    encode,
    json_response,
)

CREATED = 1677610602  # what the proxy reports for every model
MODEL_INFO_PATHS = frozenset({"/model/info", "/v1/model/info"})

_ERROR_TYPES = {
    401: "auth_error",
    403: "auth_error",
    404: "not_found_error",
    429: "throttling_error",
}


class LiteLLMWire(WireFormat[tuple[bytes, ...]]):
    name = "litellm"
    models_paths = frozenset({"/v1/models", "/models"})

    def __init__(self) -> None:
        self.connected_db = True

    def respond(self, request: WireRequest, caller: Caller, rng: Random) -> WireResponse:
        if request.path not in MODEL_INFO_PATHS:
            return super().respond(request, caller, rng)
        refusal = self.refuse(request, caller)
        if refusal is not None:
            return refusal
        data = [model_info(model) for model in caller.models.models]
        # The proxy writes its costs as Python floats: 2.5e-06, not 0.0000025.
        return WireResponse(200, json.dumps({"data": data}).encode())

    def token(self, request: WireRequest) -> str | None:
        return bearer(request.header("Authorization")) or request.header("x-litellm-api-key")

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        if caller.token is None:
            return self.error(401, "Authentication Error, No api key passed in.")
        if caller.usable:
            return None
        if not self.connected_db:
            return self.error(400, "Authentication Error, No connected db.")
        if caller.known and caller.exhausted:
            message = "Budget has been exceeded! Current cost: 10.0, Max budget: 10.0"
            return self._body(400, message, "budget_exceeded")
        if caller.known and caller.expired:
            expired = datetime.fromtimestamp(caller.expires_at, UTC).isoformat()
            now = datetime.now(UTC).isoformat()
            message = (
                f"Authentication Error - Expired Key. Key Expiry time {expired} and "
                f"current time {now}"
            )
            return self.error(401, message)
        return self.unauthorized(request, caller)

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[bytes, ...]:
        return tuple(encode(litellm_model(model)) for model in models)

    def list_response(
        self, request: WireRequest, prepared: tuple[bytes, ...], rng: Random
    ) -> WireResponse:
        return WireResponse(200, b'{"data":[' + b",".join(prepared) + b'],"object":"list"}')

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        token = caller.token or ""
        # The proxy echoes the key abbreviated, and its hash: never the whole value.
        message = (
            "Authentication Error, Invalid proxy server token passed. Received API Key = "
            f"sk-...{token[-4:]}, Key Hash (Token) ={hashlib.sha256(token.encode()).hexdigest()}"
            ". Unable to find token in cache or `LiteLLM_VerificationTokenTable`"
        )
        return self.error(401, message)

    def not_found(self, request: WireRequest) -> WireResponse:
        return json_response(404, {"detail": "Not Found"})  # FastAPI's own 404

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        type = _ERROR_TYPES.get(status) or (
            "internal_server_error" if status >= 500 else "bad_request_error"
        )
        if status == 400 and "Authentication Error" in message:
            type = "auth_error"
        return self._body(status, message, type)

    def _body(self, status: int, message: str, type: str) -> WireResponse:
        body = {"error": {"message": message, "type": type, "param": "None", "code": str(status)}}
        return json_response(status, body)


def litellm_model(model: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model["id"],
        "object": "model",
        "created": CREATED,
        "owned_by": "openai",
    }
    if "mode" in model:
        entry["mode"] = model["mode"]
    if "context_window" in model:
        entry["max_input_tokens"] = model["context_window"]
    if "max_output_tokens" in model:
        entry["max_output_tokens"] = model["max_output_tokens"]
    return entry


def model_info(model: Mapping[str, Any]) -> dict[str, Any]:
    """One deployment as `GET /model/info` lists it: costs in USD per token, from the
    canonical model's `pricing` ("prompt", "completion", "input_cache_read")."""
    pricing = model.get("pricing") or {}
    info: dict[str, Any] = {
        "id": hashlib.sha256(str(model["id"]).encode()).hexdigest()[:16],
        "key": model["id"],
        "mode": model.get("mode", "chat"),
        "max_tokens": model.get("max_output_tokens"),
        "max_input_tokens": model.get("context_window"),
    }
    for key, name in (
        ("prompt", "input_cost_per_token"),
        ("completion", "output_cost_per_token"),
        ("input_cache_read", "cache_read_input_token_cost"),
    ):
        info[name] = float(pricing[key]) if key in pricing else None
    return {
        "model_name": model["id"],
        "litellm_params": {"model": f"openai/{model['id']}"},
        "model_info": info,
    }
