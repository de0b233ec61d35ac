"""The LiteLLM proxy's models list: OpenAI-style, with a few limits on some entries.

`GET {base_url}/models` with `Authorization: Bearer <virtual key>`, one page of
`{"data": [...], "object": "list"}`. Every entry carries the same `created`
(1677610602) and `owned_by` ("openai"), so both are dropped. Entries of deployments
whose model info is known may add:

- `mode` (`chat`, `embedding`, `image_generation`, ...) -> field `mode`;
- `max_input_tokens` -> field `context_window`;
- `max_output_tokens` -> field `max_output_tokens`.

Null or absent values are left out. endpoint_types is None.

Errors look like OpenAI's with string codes. A proxy without a database answers a key
that is not the master key with HTTP 400 `{"error": {"message": "No connected db.",
"type": "no_db_connection", "code": "400"}}` (older versions: "Authentication Error, No
connected db." with type `auth_error`). That is a credential problem, not a client
error: `error_kind` says so (used by the fetcher through the Flavor `error_kind` hook).
"""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.core.records import ErrorKind, ModelRecord
from monitor.sources.base import InvalidResponse, json_type
from monitor.sources.openai_compat import OpenAIFlavor
from monitor.sources.side_routes import PriceRoute

# What LiteLLM reports for every model; used by auto-detection.
LITELLM_CREATED = 1677610602

# LiteLLM's additions to an OpenAI-style model entry, and the fields they become.
LIMIT_FIELDS: tuple[tuple[str, str], ...] = (
    ("max_input_tokens", "context_window"),
    ("max_output_tokens", "max_output_tokens"),
)

# `error.type` values that mean "this key is not accepted".
_AUTH_TYPES = frozenset({"no_db_connection", "auth_error"})


class LiteLLMFlavor(OpenAIFlavor):
    """LiteLLM proxy: `mode` and token limits where the proxy knows them."""

    name: ClassVar[str] = "litellm"
    price_route: ClassVar[PriceRoute | None] = "model_info"

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        fields: dict[str, Any] = {}
        mode = item.get("mode")
        if mode is not None:
            if not isinstance(mode, str):
                raise InvalidResponse(
                    f"model {model_id!r}: mode is {json_type(mode)}, not a string"
                )
            fields["mode"] = mode
        for key, field in LIMIT_FIELDS:
            value = item.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidResponse(
                    f"model {model_id!r}: {key} is {json_type(value)}, not a number"
                )
            fields[field] = value
        if not fields:
            return ModelRecord(model_id)
        return ModelRecord.build(model_id, None, fields)

    def error_kind(self, status: int, body: object) -> ErrorKind | None:
        """AUTH for LiteLLM's "No connected db." 400 (a key other than the master key on a
        proxy without a database); None (classification by status) otherwise.

        `body` is the decoded JSON error body, or None.
        """
        if status != 400 or not isinstance(body, dict):
            return None
        error = body.get("error")
        if not isinstance(error, dict):
            return None
        kind = error.get("type")
        if isinstance(kind, str) and kind in _AUTH_TYPES:  # any JSON value may stand here
            return ErrorKind.AUTH
        message = error.get("message")
        if isinstance(message, str) and "no connected db" in message.lower():
            return ErrorKind.AUTH
        return None
