"""one-api's `GET /v1/models`: OpenAI's list plus a fake `permission` list, `root`, `parent`.

Each permission carries a random id on every request: exactly the noise a parser must
drop. The model is pre-encoded around that id, so only the id is formatted per request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from monitor.sim.wire.base import (
    Caller,
    WireFormat,
    WireRequest,
    WireResponse,
    encode,
    gateway_error,
    json_response,
    request_id,
)
from monitor.sim.wire.openai import GATEWAY_PATHS, invalid_url, openai_entry

_Fragment = tuple[bytes, bytes]  # the model's JSON before and after the permission id


class OneApiWire(WireFormat[tuple[_Fragment, ...]]):
    name = "one-api"
    models_paths = GATEWAY_PATHS
    error_type = "one_api_error"

    def prepare(self, models: Sequence[Mapping[str, Any]]) -> tuple[_Fragment, ...]:
        return tuple(_fragment(model) for model in models)

    def list_response(
        self, request: WireRequest, prepared: tuple[_Fragment, ...], rng: Random
    ) -> WireResponse:
        fragments = list(prepared)
        rng.shuffle(fragments)
        items = b",".join(head + b"%032x" % rng.getrandbits(128) + tail for head, tail in fragments)
        return WireResponse(200, b'{"object":"list","data":[' + items + b"]}")

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return self.error(401, "Invalid token")

    def not_found(self, request: WireRequest) -> WireResponse:
        return invalid_url(request)

    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        text = f"{message} (request id: {request_id()})"
        return json_response(status, gateway_error(text, self.error_type, code))


def _fragment(model: Mapping[str, Any]) -> _Fragment:
    head = encode(openai_entry(model))[:-1] + b',"permission":[{"id":"modelperm-'
    tail = (
        b'","object":"model_permission","created":1626777600,"allow_create_engine":true,'
        b'"allow_sampling":true,"allow_logprobs":true,"allow_search_indices":false,'
        b'"allow_view":true,"allow_fine_tuning":false,"organization":"*","group":null,'
        b'"is_blocking":false}],"root":' + encode(json.dumps(model["id"])) + b',"parent":null}'
    )
    return head, tail
