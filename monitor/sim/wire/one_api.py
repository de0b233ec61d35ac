"""one-api's `GET /v1/models`: OpenAI's list plus a fake `permission` list, `root`, `parent`.

Each permission carries a random id on every request: exactly the noise a parser must
drop. The model is pre-encoded around that id, so only the id is formatted per request.

Also the OpenAI-style billing routes one-api introduced and new-api kept, answered from
the token's account: `GET /v1/dashboard/billing/subscription` and `.../usage` (with or
without `/v1`). They sit behind the same token check as the models list, so an expired
or exhausted token gets the same 401.
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
    go_json,
    json_response,
    request_id,
)
from monitor.sim.wire.openai import GATEWAY_PATHS, invalid_url, openai_entry

_Fragment = tuple[bytes, bytes]  # the model's JSON before and after the permission id

# Quota units per US dollar in one-api and new-api.
QUOTA_PER_UNIT = 500_000
# The dollar limit both report for a token with unlimited quota.
UNLIMITED_USD = 100_000_000
SUBSCRIPTION_PATHS = frozenset(
    {"/v1/dashboard/billing/subscription", "/dashboard/billing/subscription"}
)
BILLING_USAGE_PATHS = frozenset({"/v1/dashboard/billing/usage", "/dashboard/billing/usage"})
BILLING_PATHS = SUBSCRIPTION_PATHS | BILLING_USAGE_PATHS


def billing_response(
    wire: WireFormat[Any], request: WireRequest, caller: Caller
) -> WireResponse | None:
    """The billing route's answer in dollars, or None when `request` is not for one.

    Limits are the granted quota (available plus used) in dollars, or `UNLIMITED_USD`;
    the usage is the used quota in cents. Both are Go floats (`1`, not `1.0`).
    """
    if request.path not in BILLING_PATHS:
        return None
    refusal = wire.refuse(request, caller)
    if refusal is not None:
        return refusal
    if request.path in BILLING_USAGE_PATHS:
        cents = caller.total_used / QUOTA_PER_UNIT * 100
        return WireResponse(200, go_json({"object": "list", "total_usage": cents}))
    limit = float(UNLIMITED_USD) if caller.unlimited else caller.total_granted / QUOTA_PER_UNIT
    body = {
        "object": "billing_subscription",
        "has_payment_method": True,
        "soft_limit_usd": limit,
        "hard_limit_usd": limit,
        "system_hard_limit_usd": limit,
        "access_until": max(caller.expires_at, 0),
    }
    return WireResponse(200, go_json(body))


class OneApiWire(WireFormat[tuple[_Fragment, ...]]):
    name = "one-api"
    models_paths = GATEWAY_PATHS
    error_type = "one_api_error"

    def respond(self, request: WireRequest, caller: Caller, rng: Random) -> WireResponse:
        billing = billing_response(self, request, caller)
        return billing if billing is not None else super().respond(request, caller, rng)

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
