"""new-api's `GET /v1/models`, its account routes and its pricing page.

`{"data":[...],"object":"list","success":true}` in random order, each model exactly as
the canonical dict minus the keys only other providers have.

`GET /api/usage/token/` answers even for expired or exhausted tokens: it is how a
client explains a 401. It sits behind the gateway's "critical" limiter, which the
simulator applies (`limited_paths`). The billing routes are one-api's
(`billing_response`). `GET /api/pricing` needs no token and lists every model's ratios
in random order; set it with `set_pricing`, hide it with `hide_pricing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from monitor.sim.wire.base import (
    NOT_NEW_API,
    Caller,
    JsonNumber,
    WireFormat,
    WireRequest,
    WireResponse,
    encode,
    fingerprint,
    gateway_error,
    go_json,
    json_response,
    request_id,
)
from monitor.sim.wire.one_api import billing_response
from monitor.sim.wire.openai import GATEWAY_PATHS, invalid_url

USAGE_PATHS = frozenset({"/api/usage/token", "/api/usage/token/"})
PRICING_PATHS = frozenset({"/api/pricing"})

# What new-api's pricing page reports as its version: a constant, not a content hash.
PRICING_VERSION = "a42d372ccf0b5dd13ecf71203521f9d2"
# The ratio new-api shows for a model nobody priced (with completion ratio 1).
NO_PRICE_RATIO = 37.5
# What the default pricing charges each model of the "default" group.
DEFAULT_MODEL_RATIO = 1.25
DEFAULT_COMPLETION_RATIO = 4

# A pricing entry's fields in the order new-api's struct declares them; given keys
# outside this list follow, in the order given.
_ENTRY_FIELDS = (
    "model_name",
    "description",
    "icon",
    "tags",
    "vendor_id",
    "quota_type",
    "model_ratio",
    "model_price",
    "owner_by",
    "completion_ratio",
    "cache_ratio",
    "create_cache_ratio",
    "image_ratio",
    "audio_ratio",
    "audio_completion_ratio",
    "enable_groups",
    "supported_endpoint_types",
)
_NUMBER_FIELDS = frozenset(
    {
        "vendor_id",
        "quota_type",
        "model_ratio",
        "model_price",
        "completion_ratio",
        "cache_ratio",
        "create_cache_ratio",
        "image_ratio",
        "audio_ratio",
        "audio_completion_ratio",
    }
)
_ENTRY_DEFAULTS: dict[str, Any] = {
    "description": "",
    "tags": "",
    "vendor_id": 0,
    "quota_type": 0,
    "model_price": 0,
    "owner_by": "",
    "completion_ratio": 1,
    "enable_groups": ("default",),
    "supported_endpoint_types": ("openai",),
}

_HIDDEN_PRICING = {
    403: {"success": False, "message": "pricing is disabled"},
    401: {"success": False, "message": "无权进行此操作\uff0c未登录且未提供 access token"},
}

Number = JsonNumber | int | float | str


@dataclass(frozen=True, slots=True)
class Pricing:
    """What `GET /api/pricing` lists, pre-encoded: only the order changes per request."""

    entries: tuple[bytes, ...]
    group_ratio: tuple[bytes, ...]  # `"group":ratio` members
    usable_group: tuple[bytes, ...]  # `"group":"description"` members

    @classmethod
    def build(
        cls,
        models: Iterable[Mapping[str, Any]],
        group_ratio: Mapping[str, Number] | None = None,
        usable_group: Mapping[str, str] | None = None,
    ) -> Pricing:
        """Entries as new-api sends them, missing keys filled with its usual values.

        A missing `model_ratio` is new-api's "no price set" (`NO_PRICE_RATIO`) for
        per-token models and 0 for priced-per-call ones (`quota_type` 1). Numbers may be
        given as strings, which are sent verbatim. `group_ratio` defaults to 1 for every
        group the entries enable, `usable_group` to a description of each such group.
        """
        entries = [pricing_entry(model) for model in models]
        if group_ratio is None:
            groups = dict.fromkeys(
                g for entry in entries for g in entry["enable_groups"] if g != "all"
            )
            group_ratio = dict.fromkeys(groups or ("default",), 1)
        if usable_group is None:
            usable_group = {group: describe_group(group) for group in group_ratio}
        return cls(
            entries=tuple(go_json(entry) for entry in entries),
            group_ratio=tuple(_member(g, JsonNumber.of(r)) for g, r in group_ratio.items()),
            usable_group=tuple(_member(g, str(d)) for g, d in usable_group.items()),
        )

    def body(self, rng: Random) -> bytes:
        """The page, its list and both group maps in this request's random order."""
        entries, ratios = list(self.entries), list(self.group_ratio)
        usable = list(self.usable_group)
        for part in (entries, ratios, usable):
            rng.shuffle(part)
        return b"".join(
            (
                b'{"auto_groups":[],"data":[',
                b",".join(entries),
                b'],"group_ratio":{',
                b",".join(ratios),
                b'},"pricing_version":"' + PRICING_VERSION.encode() + b'","success":true,',
                b'"supported_endpoint":{},"usable_group":{',
                b",".join(usable),
                b'},"vendors":[]}',
            )
        )


def pricing_entry(model: Mapping[str, Any]) -> dict[str, Any]:
    """One `data` item: the given keys in new-api's field order, defaults filled in."""
    name = model.get("model_name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a pricing entry needs a model_name: {model!r}")
    merged = {**_ENTRY_DEFAULTS, **model}
    if "model_ratio" not in merged:
        per_call = JsonNumber.of(merged["quota_type"]).text != "0"
        merged["model_ratio"] = 0 if per_call else NO_PRICE_RATIO
    ordered = [key for key in _ENTRY_FIELDS if key in merged]
    ordered += [key for key in merged if key not in _ENTRY_FIELDS]
    entry: dict[str, Any] = {}
    for key in ordered:
        value = merged[key]
        if key in _NUMBER_FIELDS and value is not None:
            value = JsonNumber.of(value)
        elif isinstance(value, tuple):
            value = list(value)
        entry[key] = value
    return entry


def describe_group(group: str) -> str:
    """How new-api's default settings describe a usable group."""
    return "默认分组" if group == "default" else f"{group}分组"


def _member(key: str, value: Any) -> bytes:
    return go_json(key) + b":" + go_json(value)


class NewApiWire(WireFormat[tuple[bytes, ...]]):
    """new-api. `pricing` None derives the pricing page from the "default" group.

    `pricing_hidden` is the status of a hidden pricing page (403 or 401), None when
    shown. Both are replaced whole, so a handler thread reads one consistent value.
    """

    name = "new-api"
    models_paths = GATEWAY_PATHS
    limited_paths = USAGE_PATHS
    error_type = "new_api_error"

    def __init__(self) -> None:
        self.pricing: Pricing | None = None
        self.pricing_hidden: int | None = None

    def set_pricing(
        self,
        models: Iterable[Mapping[str, Any]],
        group_ratio: Mapping[str, Number] | None = None,
        *,
        usable_group: Mapping[str, str] | None = None,
    ) -> None:
        """Replace the pricing page (see `Pricing.build`)."""
        self.pricing = Pricing.build(models, group_ratio, usable_group)

    def hide_pricing(self, status: int | None) -> None:
        """403: the operator turned the page off; 401: it needs a login; None: shown."""
        if status is not None and status not in _HIDDEN_PRICING:
            raise ValueError(f"a hidden pricing page answers 401 or 403, not {status}")
        self.pricing_hidden = status

    def respond(self, request: WireRequest, caller: Caller, rng: Random) -> WireResponse:
        if request.path in USAGE_PATHS:
            return self._usage(request, caller)
        if request.path in PRICING_PATHS:
            return self._pricing(caller, rng)
        billing = billing_response(self, request, caller)
        return billing if billing is not None else super().respond(request, caller, rng)

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
        # gin writes a map's keys sorted; "never" is 0 on the wire, -1 in the table.
        data = {
            "expires_at": max(caller.expires_at, 0),
            "model_limits": {},
            "model_limits_enabled": False,
            "name": f"sim-{fingerprint(caller.token)}",
            "object": "token_usage",
            "total_available": caller.total_available,
            "total_granted": caller.total_granted,
            "total_used": caller.total_used,
            "unlimited_quota": caller.unlimited,
        }
        return WireResponse(200, go_json({"code": True, "data": data, "message": "ok"}))

    def _pricing(self, caller: Caller, rng: Random) -> WireResponse:
        hidden = self.pricing_hidden
        if hidden is not None:
            return json_response(hidden, _HIDDEN_PRICING[hidden])
        pricing = self.pricing
        if pricing is None:
            pricing = Pricing.build(
                {
                    "model_name": model["id"],
                    "model_ratio": DEFAULT_MODEL_RATIO,
                    "completion_ratio": DEFAULT_COMPLETION_RATIO,
                    "supported_endpoint_types": model.get("supported_endpoint_types") or ["openai"],
                }
                for model in caller.default_models.models
            )
        return WireResponse(200, pricing.body(rng))
