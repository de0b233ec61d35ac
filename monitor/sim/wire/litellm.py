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
