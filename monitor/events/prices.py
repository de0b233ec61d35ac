"""OpenRouter's price fields as price changes, in the unit every price change has.

OpenRouter lists each model's prices as fields (`pricing.prompt`, `pricing.completion`,
... in USD per token). The diff reports each as a field change; this stage, after the
flap guard and the thresholds, turns a model's moves among those fields into one
`price_changed` in USD per 1M tokens (request: per request), as new-api's price list is
reported (monitor.core.prices), so one channel filter (`changes = ["price_changed"]`)
catches every price change. Price fields without a common unit (images, web search)
stay field changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitor.core.diff import sort_changes
from monitor.core.prices import openrouter_price
from monitor.core.records import Change, ChangeType, ModelRecord

# The fields `openrouter_price` reads into a Price.
PRICE_FIELDS = frozenset(
    {"pricing.prompt", "pricing.completion", "pricing.input_cache_read", "pricing.request"}
)


def fields_as_prices(
    changes: Iterable[Change], confirmed: Mapping[str, ModelRecord]
) -> list[Change]:
    """`changes` with each model's price field changes folded into one price change.

    `confirmed` is what people were told before these changes (the guard's view): a
    model's prices before are read from it, after from it with the changes applied.
    """
    kept: list[Change] = []
    moves: dict[str, list[Change]] = {}
    for change in changes:
        if change.type is ChangeType.FIELD_CHANGED and change.field in PRICE_FIELDS:
            moves.setdefault(change.model, []).append(change)
        else:
            kept.append(change)
    if not moves:
        return kept
    for model, moved in moves.items():
        record = confirmed.get(model)
        before = record.field_map() if record is not None else {}
        after = dict(before)
        for change in moved:
            if change.after is None:
                after.pop(str(change.field), None)
            else:
                after[str(change.field)] = change.after
        was, now = openrouter_price(before), openrouter_price(after)
        if was == now:  # e.g. between two "varies" (-1) values: no common unit
            kept += moved
            continue
        kept.append(
            Change(ChangeType.PRICE_CHANGED, model, before=was.to_pairs(), after=now.to_pairs())
        )
    return sort_changes(kept)
