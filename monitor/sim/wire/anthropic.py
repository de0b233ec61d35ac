"""Anthropic's `GET /v1/models`: `x-api-key` plus a required `anthropic-version` header.

Pages are cut with `limit` (default 20, 1 to 1000) and an `after_id` or `before_id`
cursor; the answer says `has_more`, `first_id` and `last_id`. The order is stable
(newest release first, then id) because a cursor means nothing in a shuffled list.
Models are the SDK's `ModelInfo`: `display_name`, `created_at`, `lifecycle`,
`deprecated_at`/`retires_at`, `max_input_tokens`, `max_tokens` and a `capabilities`
object in which every known capability is present. `retired` models appear only when
asked for with `lifecycle=retired`, as on the real API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    parse_int,
    phrase,
    request_id,
    rfc3339,
)

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
LIFECYCLES = ("active", "deprecated", "retired")
# What a model gets when the test did not say: a current Claude model's usual matrix.
DEFAULT_CAPABILITIES = ("batch", "citations", "image_input", "pdf_input", "structured_outputs")
DEFAULT_MAX_INPUT_TOKENS = 200_000
DEFAULT_MAX_TOKENS = 64_000

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Capabilities with sub-entries; a sub-entry is named "parent.sub" in the canonical
# list, and without any such name it follows its parent.
_NESTED = {
    "context_management": (
        "clear_thinking_20251015",
        "clear_tool_uses_20250919",
        "compact_20260112",
    ),
    "effort": ("high", "low", "max", "medium"),
    "server_tools": ("code_execution", "web_search"),
}
_FLAT = ("batch", "citations", "code_execution", "image_input", "pdf_input", "structured_outputs")


class _Entry(NamedTuple):
    id: str
    lifecycle: str
    fragment: bytes


class AnthropicWire(WireFormat[tuple[_Entry, ...]]):
    name = "anthropic"

    def token(self, request: WireRequest) -> str | None:
        return request.header("x-api-key") or None

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        if caller.token is None:
            return self.error(401, "x-api-key header is required")
        if not caller.usable:
            return self.unauthorized(request, caller)
        if not request.header("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[_Entry, ...]:
        entries = []
        for model in newest_first(models):
            info = model_info(model)
            entries.append(_Entry(info["id"], info["lifecycle"], encode(info)))
        return tuple(entries)

    def list_response(
        self, request: WireRequest, prepared: tuple[_Entry, ...], rng: Random
    ) -> WireResponse:
        raw_limit = request.param("limit")
        limit = DEFAULT_LIMIT if raw_limit is None else parse_int(raw_limit)
        if limit is None:
            return self.error(400, "limit: Input should be a valid integer")
        if not 1 <= limit <= MAX_LIMIT:
            return self.error(400, f"limit: Input should be between 1 and {MAX_LIMIT}")
        wanted = _lifecycles(request)
        if wanted is None:
            return self.error(400, f"lifecycle: Input should be one of {', '.join(LIFECYCLES)}")
        after, before = request.param("after_id"), request.param("before_id")
        if after is not None and before is not None:
            return self.error(400, "after_id and before_id cannot both be set")
        visible = [entry for entry in prepared if entry.lifecycle in wanted]
        cursor = after if after is not None else before
        if cursor is None:
            start, end = 0, min(limit, len(visible))
            has_more = end < len(visible)
        else:
            position = next((i for i, e in enumerate(visible) if e.id == cursor), None)
            if position is None:
                name = "after_id" if after is not None else "before_id"
                return self.error(400, f"{name}: no model with id {cursor!r}")
            if after is not None:
                start, end = position + 1, min(position + 1 + limit, len(visible))
                has_more = end < len(visible)
            else:
                start, end = max(0, position - limit), position
                has_more = start > 0
        page = visible[start:end]
        first = encode([page[0].id if page else None])[1:-1]
        last = encode([page[-1].id if page else None])[1:-1]
        body = (
            b'{"data":['
            + b",".join(entry.fragment for entry in page)
            + b'],"has_more":'
            + (b"true" if has_more else b"false")
            + b',"first_id":'
            + first
            + b',"last_id":'
            + last
            + b"}"
        )
        return WireResponse(200, body, headers=(("request-id", _request_id()),))

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return self.error(401, "invalid x-api-key")

    def not_found(self, request: WireRequest) -> WireResponse:
        return self.error(404, "Not found")

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        type = _ERROR_TYPES.get(status) or (
            "api_error" if status >= 500 else "invalid_request_error"
        )
        rid = _request_id()
        body = {"type": "error", "error": {"type": type, "message": message}, "request_id": rid}
        return json_response(status, body, headers=(("request-id", rid),))

    def default_message(self, status: int) -> str:
        if status == 529:
            return "Overloaded"
        if status == 500:
            return "Internal server error"
        return phrase(status) or "error"


def model_info(model: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical model as Anthropic's `ModelInfo`, keys in the API's order."""
    model_id = model["id"]
    deprecated = model.get("deprecation_date")
    retires = model.get("retirement_date")
    lifecycle = model.get("lifecycle") or ("deprecated" if deprecated or retires else "active")
    line = next((name for name in ("opus", "sonnet", "haiku") if name in model_id), None)
    return {
        "type": "model",
        "id": model_id,
        "display_name": model.get("display_name") or model_id,
        "created_at": rfc3339(model.get("created", 0)),
        "lifecycle": lifecycle,
        "deprecated_at": None if deprecated is None else rfc3339(deprecated),
        "retires_at": None if retires is None else rfc3339(retires),
        "line": line,
        "max_input_tokens": model.get("context_window", DEFAULT_MAX_INPUT_TOKENS),
        "max_tokens": model.get("max_output_tokens", DEFAULT_MAX_TOKENS),
        "capabilities": capabilities(model.get("capabilities", DEFAULT_CAPABILITIES)),
    }


def capabilities(given: Iterable[str]) -> dict[str, Any]:
    """Anthropic's capability object from a list of names ("thinking", "effort.max", ...)."""
    names = set(given)

    def part(parent: str, sub: str) -> dict[str, bool]:
        explicit = any(name.startswith(f"{parent}.") for name in names)
        return {"supported": f"{parent}.{sub}" in names if explicit else parent in names}

    result: dict[str, Any] = {name: {"supported": name in names} for name in _FLAT}
    for parent, subs in _NESTED.items():
        result[parent] = {"supported": parent in names, **{sub: part(parent, sub) for sub in subs}}
    if "effort.xhigh" in names:
        result["effort"]["xhigh"] = {"supported": True}
    result["thinking"] = {
        "supported": "thinking" in names,
        "types": {
            "adaptive": part("thinking", "adaptive"),
            "between_tools": part("thinking", "between_tools"),
            "disabled": {"supported": True},  # true even without thinking
            "enabled": part("thinking", "enabled"),
        },
    }
    return dict(sorted(result.items()))


def _lifecycles(request: WireRequest) -> frozenset[str] | None:
    values = [*request.query.get("lifecycle", ()), *request.query.get("lifecycle[]", ())]
    if not values:
        return frozenset({"active", "deprecated"})
    wanted = frozenset(part.strip() for value in values for part in value.split(","))
    return wanted if wanted <= set(LIFECYCLES) else None


def _request_id() -> str:
    return f"req_sim{request_id()}"
