"""new-api's `GET /v1/models` and `GET /api/usage/token/`.

`{"data":[...],"object":"list","success":true}` in random order, each model exactly as
the canonical dict minus the keys only other providers have. The usage route answers
even for expired or exhausted tokens: it is how a client explains a 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from monitor.sim.wire.base import (
    NOT_NEW_API,
    Caller,
    WireFormat,
    WireRequest,
    WireResponse,
    encode,
    fingerprint,
    gateway_error,
    json_response,
    request_id,
)
from monitor.sim.wire.openai import GATEWAY_PATHS, invalid_url

USAGE_PATHS = frozenset({"/api/usage/token", "/api/usage/token/"})


class NewApiWire(WireFormat[tuple[bytes, ...]]):
    name = "new-api"
    models_paths = GATEWAY_PATHS
    error_type = "new_api_error"

    def respond(self, request: WireRequest, caller: Caller, rng: Random) -> WireResponse:
        if request.path in USAGE_PATHS:
            return self._usage(request, caller)
        return super().respond(request, caller, rng)

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[bytes, ...]:
        return tuple(
            encode({k: v for k, v in model.items() if k not in NOT_NEW_API}) for model in models
        )

    def list_response(
        self, request: WireRequest, prepared: tuple[bytes, ...], rng: Random
    ) -> WireResponse:
        fragments = list(prepared)
        rng.shuffle(fragments)
        return WireResponse(
            200, b'{"data":[' + b",".join(fragments) + b'],"object":"list","success":true}'
        )

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        # Since 2026-04 new-api says "Invalid token" for every refused token.
        return self.error(401, "Invalid token")

    def not_found(self, request: WireRequest) -> WireResponse:
        return invalid_url(request)

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        text = f"{message} (request id: {request_id()})"
        return json_response(status, gateway_error(text, self.error_type, code))

    def _usage(self, request: WireRequest, caller: Caller) -> WireResponse:
        if caller.token is None or not caller.known:
            return self.unauthorized(request, caller)
        data = {
            "object": "token_usage",
            "name": f"sim-{fingerprint(caller.token)}",
            "total_granted": caller.total_available,
            "total_used": 0,
            "total_available": caller.total_available,
            "unlimited_quota": False,
            "model_limits": {},
            "model_limits_enabled": False,
            "expires_at": caller.expires_at,
        }
        return json_response(200, {"code": True, "data": data, "message": "ok"})
