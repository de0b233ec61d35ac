"""Gemini's `GET /v1beta/models`: an `x-goog-api-key` header (or `?key=`), token paging.

`pageSize` defaults to 50 (a client that forgets to page sees only the first 50) and
is capped at 1000; `pageToken` takes the previous answer's `nextPageToken`, which is
absent on the last page. Like the real tokens, ours are base64 of a small protobuf
naming the last model returned, so a walk survives models added or removed mid-walk.
Bodies are proto3 JSON: empty fields are left out, so an empty list is `{}`. Errors are
Google status objects; a bad key is HTTP 400 `API_KEY_INVALID`, not 401.
"""

from __future__ import annotations

import base64
import binascii
import bisect
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
    parse_int,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_INPUT_TOKEN_LIMIT = 1_048_576
DEFAULT_OUTPUT_TOKEN_LIMIT = 65_536
_CHAT_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
_EMBED_METHODS = ("embedContent", "countTextTokens")

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


class _Prepared(NamedTuple):
    ids: tuple[str, ...]  # sorted, for bisecting a page token
    fragments: tuple[bytes, ...]


class GeminiWire(WireFormat[_Prepared]):
    name = "gemini"
    base_path = "/v1beta"
    models_paths = frozenset({"/v1beta/models", "/v1/models"})

    def token(self, request: WireRequest) -> str | None:
        return request.header("x-goog-api-key") or request.param("key") or None

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        if caller.token is None:
            return self.error(403, _UNREGISTERED)
        if caller.usable:
            return None
        if caller.known and caller.expired:
            return _key_invalid("API key expired. Please renew the API key.")
        return self.unauthorized(request, caller)

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> _Prepared:
        ordered = sorted(models, key=lambda m: m["id"])
        return _Prepared(
            tuple(m["id"] for m in ordered), tuple(encode(gemini_model(m)) for m in ordered)
        )

    def list_response(self, request: WireRequest, prepared: _Prepared, rng: Random) -> WireResponse:
        raw_size = request.param("pageSize")
        size = DEFAULT_PAGE_SIZE if raw_size is None else parse_int(raw_size)
        if size is None:
            return self.error(400, f"Invalid value at 'page_size' (TYPE_INT32), \"{raw_size}\"")
        if size < 0:
            return self.error(400, "page_size must not be negative")
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        start = 0
        page_token = request.param("pageToken")
        if page_token:
            last = decode_page_token(page_token)
            if last is None:
                return self.error(400, "Invalid page token.")
            start = bisect.bisect_right(prepared.ids, last)
        end = min(start + size, len(prepared.ids))
        if start >= end:
            return WireResponse(200, b"{}")
        body = b'{"models":[' + b",".join(prepared.fragments[start:end]) + b"]"
        if end < len(prepared.ids):
            body += b',"nextPageToken":' + encode([page_token_for(prepared.ids[end - 1])])[1:-1]
        return WireResponse(200, body + b"}")

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return _key_invalid("API key not valid. Please pass a valid API key.")

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        return json_response(status, status_object(status, message))


def gemini_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical model as Gemini's `Model` resource, empty fields left out as proto3 does."""
    model_id = model["id"]
    methods = model.get("generation_methods")
    if methods is None:
        types = set(model.get("supported_endpoint_types") or ())
        embeds = bool(types) and types <= {"embeddings"}
        methods = _EMBED_METHODS if embeds else _CHAT_METHODS
    result: dict[str, Any] = {
        "name": f"models/{model_id}",
        "version": model.get("version", "001"),
        "displayName": model.get("display_name") or model_id,
    }
    if model.get("description"):
        result["description"] = model["description"]
    result["inputTokenLimit"] = model.get("context_window", DEFAULT_INPUT_TOKEN_LIMIT)
    result["outputTokenLimit"] = model.get("max_output_tokens", DEFAULT_OUTPUT_TOKEN_LIMIT)
    result["supportedGenerationMethods"] = list(methods)
    if "generateContent" in methods:  # sampling defaults exist only for generative models
        result.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2})
    if "thinking" in (model.get("capabilities") or ()):
        result["thinking"] = True
    return result


def status_object(status: int, message: str, *details: Mapping[str, Any]) -> dict[str, Any]:
    """A `google.rpc.Status` as REST APIs send it."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUSES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = list(details)
    return {"error": error}


def page_token_for(last_id: str) -> str:
    """Opaque to clients: a protobuf whose field 1 is the last model's resource name."""
    name = f"models/{last_id}".encode()
    return base64.b64encode(b"\x0a" + _varint(len(name)) + name).decode()


def decode_page_token(token: str) -> str | None:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"\x0a"):
        return None
    length, offset = 0, 1
    for shift in range(0, 35, 7):
        if offset >= len(raw):
            return None
        byte = raw[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    name = raw[offset:]
    if len(name) != length or not name.startswith(b"models/"):
        return None
    try:
        return name[len(b"models/") :].decode()
    except UnicodeDecodeError:
        return None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key_invalid(message: str) -> WireResponse:
    detail = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return json_response(400, status_object(400, message, detail))
