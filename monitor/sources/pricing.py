"""new-api's price list: `GET {origin}/api/pricing`, read into a `PriceList`.

The body: `{"success": true, "data": [{"model_name", "quota_type", "model_ratio",
"model_price", "completion_ratio", "cache_ratio"?, "enable_groups", ...}],
"group_ratio": {group: ratio}, "usable_group": {...}, ...}`, lists and maps in any order.

new-api bills in ratios; here they become money (`monitor.core.prices`):

- quota_type 0 (per token): input = model_ratio x 2 USD per 1M tokens (ratio 1 is
  $0.002 per 1K tokens); output = input x completion_ratio; cached input = input x
  cache_ratio when cache_ratio is given. model_ratio 37.5 with completion_ratio 1 is
  new-api's "no price set" default, so such a model has no price (`Price.NONE`);
- quota_type 1 (per request): model_price USD per request;
- a group pays all of these times its `group_ratio`, applied by `PriceList.effective`.

Only the numbers the model's quota type uses are read. Anything else wrong fails the
whole list (InvalidResponse), as for models lists: a half-read price list would report
prices that nobody changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from monitor.config import MonitorSettings, SourceConfig, TokenConfig
from monitor.core.prices import Price, PriceList, amount, times
from monitor.core.records import FetchError
from monitor.sources.base import InvalidResponse, json_type
from monitor.sources.side_routes import PriceRoute, get_json, guarded, site_root
from monitor.transport.deadline import Deadline

PRICING_PATH = "/api/pricing"
MODEL_INFO_PATH = "/model/info"  # LiteLLM, under the source's base URL (also /v1/model/info)
_MILLION = Decimal(1_000_000)
PRICES_TIMEOUT = 20.0  # a price list is larger than a usage answer

# new-api's ratio 1: $0.002 per 1K tokens, $2 per 1M.
_USD_PER_1M_AT_RATIO_1 = Decimal(2)
# What new-api reports for a model without a price of its own.
_UNSET_MODEL_RATIO = Decimal("37.5")
_UNSET_COMPLETION_RATIO = Decimal(1)


def parse_new_api_pricing(body: object) -> PriceList:
    """The price list in a decoded `/api/pricing` body, or InvalidResponse saying why not.

    Raises InvalidResponse, and nothing else, for every body that is not a complete,
    valid price list.
    """
    if not isinstance(body, dict):
        raise InvalidResponse(f"the response is {json_type(body)}, not a JSON object")
    if body.get("success") is not True:
        message = body.get("message")
        detail = f": {message}" if isinstance(message, str) and message.strip() else ""
        raise InvalidResponse(f'the pricing answer does not say "success": true{detail}')
    prices: dict[str, Price] = {}
    for name, item in _named_items(body):
        if name in prices:
            raise InvalidResponse(f"model {name!r} appears twice")
        prices[name] = _price(name, item)
    return PriceList(prices, _group_ratios(body.get("group_ratio")))


def _named_items(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each object of the body's `data` list with its `model_name` (new-api and LiteLLM
    name their price entries alike), or InvalidResponse at the first that is not one."""
    data = body.get("data")
    if not isinstance(data, list):
        raise InvalidResponse(f"data is {json_type(data)}, not a list")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise InvalidResponse(f"data[{index}] is {json_type(item)}, not a model object")
        name = item.get("model_name")
        if not isinstance(name, str) or not name:
            what = "no model_name" if name is None else f"a model_name that is {json_type(name)}"
            if name == "":
                what = "an empty model_name"
            raise InvalidResponse(f"data[{index}] has {what}")
        yield name, item


def _price(name: str, item: dict[str, Any]) -> Price:
    quota_type = item.get("quota_type", 0)
    if quota_type is None:
        quota_type = 0
    # Type first: `in` compares, and comparing a signalling NaN raises.
    if type(quota_type) is not int or quota_type not in (0, 1):
        raise InvalidResponse(
            f"model {name!r}: quota_type is {quota_type!r}, not 0 (per token) or 1 (per request)"
        )
    if quota_type == 1:
        return Price(request=_number(item, "model_price", name))

    model_ratio = _number(item, "model_ratio", name)
    completion_ratio = _number(item, "completion_ratio", name)
    cache_ratio = None if item.get("cache_ratio") is None else _number(item, "cache_ratio", name)
    if model_ratio == _UNSET_MODEL_RATIO and completion_ratio == _UNSET_COMPLETION_RATIO:
        return Price.NONE
    base = times(model_ratio, _USD_PER_1M_AT_RATIO_1)
    return Price(
        input=base,
        output=times(base, completion_ratio),
        cache_input=None if cache_ratio is None else times(base, cache_ratio),
    )


def _number(item: dict[str, Any], key: str, name: str) -> Decimal:
    value = item.get(key)
    if value is None:
        raise InvalidResponse(f"model {name!r}: {key} is missing")
    try:
        return amount(value)
    except ValueError as reason:
        raise InvalidResponse(f"model {name!r}: {key} {reason}") from None


def _group_ratios(value: object) -> dict[str, Decimal]:
    """The group ratios; none when the body has none (every group is then unknown)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidResponse(f"group_ratio is {json_type(value)}, not an object")
    ratios: dict[str, Decimal] = {}
    for group, ratio in value.items():
        if not isinstance(group, str):  # JSON keys are; a dict built in code may not be
            raise InvalidResponse(f"group_ratio has a key that is {json_type(group)}")
        try:
            ratios[group] = amount(ratio)
        except ValueError as reason:
            raise InvalidResponse(f"group_ratio {group!r} {reason}") from None
    return ratios


def parse_litellm_model_info(body: object) -> PriceList:
    """The LiteLLM proxy's `GET /model/info` as a price list (no groups), or InvalidResponse.

    Costs are USD per token (`input_cost_per_token`, `output_cost_per_token`,
    `cache_read_input_token_cost`), times 1,000,000 exactly; a missing or null cost is no
    price for that component. A model served by several deployments that disagree is
    priced at the highest of each component: what a request may cost.
    """
    if not isinstance(body, dict):
        raise InvalidResponse(f"the response is {json_type(body)}, not a JSON object")
    prices: dict[str, Price] = {}
    for name, item in _named_items(body):
        info = item.get("model_info")
        if not isinstance(info, dict):
            raise InvalidResponse(f"model {name!r}: model_info is {json_type(info)}, not an object")
        price = Price(
            input=_per_million(info, "input_cost_per_token", name),
            output=_per_million(info, "output_cost_per_token", name),
            cache_input=_per_million(info, "cache_read_input_token_cost", name),
        )
        prices[name] = _highest(prices[name], price) if name in prices else price
    return PriceList(prices, {})


def _per_million(info: dict[str, Any], key: str, name: str) -> Decimal | None:
    if info.get(key) is None:
        return None
    return times(_number(info, key, name), _MILLION)


def _highest(a: Price, b: Price) -> Price:
    def top(x: Decimal | None, y: Decimal | None) -> Decimal | None:
        return y if x is None else x if y is None else max(x, y)

    return Price(
        input=top(a.input, b.input),
        output=top(a.output, b.output),
        cache_input=top(a.cache_input, b.cache_input),
        request=top(a.request, b.request),
    )


def read_prices(
    route: PriceRoute,
    source: SourceConfig,
    token: TokenConfig,
    settings: MonitorSettings,
) -> PriceList | FetchError:
    """The source's price list, or why it could not be read.

    new-api's page is public unless the operator hides it, so it is asked without a
    token (401 or 403: `FetchError` AUTH or FORBIDDEN, which the caller reports as
    "prices unavailable"); LiteLLM's answers a virtual key, `token`.
    """

    def read(deadline: Deadline) -> PriceList:
        if route == "pricing":
            url = site_root(source.base_url) + PRICING_PATH
            return parse_new_api_pricing(get_json(url, source, None, deadline))
        url = source.base_url + MODEL_INFO_PATH
        return parse_litellm_model_info(get_json(url, source, token, deadline))

    return guarded(
        min(source.timeout or settings.timeout, PRICES_TIMEOUT),
        read,
        invalid=(InvalidResponse, ValueError),
        unreadable="the price list could not be read",
        silent="the price list did not come",
    )
