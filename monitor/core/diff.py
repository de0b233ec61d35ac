"""The difference between two models lists, and its inverse.

Models are compared as a set keyed by id: upstream order is random (new-api) and must
never look like a change. The diff is semantic, so two spellings of "nothing" are equal:

- `endpoint_types` None (the flavor has no such notion) counts as the empty set when
  computing what was gained and lost;
- a field present on one side only is compared against None.

`apply_changes(before, diff_models(before, after)) == after` holds exactly, records
equal, with one exception by design: a switch between two spellings of "nothing" (None
endpoint types vs an empty set, a missing field vs a field holding None) is no change,
so nothing records it and a replay keeps the old spelling. Flavors should leave out
null fields rather than store None.

When `endpoint_types` switches between None and a set (a flavor change, a gateway
upgrade), the endpoint_types_changed change also carries both sides in `before` and
`after` (a sorted tuple, or None) so that a replay restores None exactly. Payloads never
show them (`Change.to_json` emits only gained/lost); ordinary set-to-set changes leave
them None so that tokens with different prior sets still group into one change.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from monitor.core.records import Change, ChangeType, ModelRecord

# Order of change types within one model: how a reader scans a report.
TYPE_ORDER: dict[ChangeType, int] = {
    ChangeType.ADDED: 0,
    ChangeType.REMOVED: 1,
    ChangeType.ENDPOINT_TYPES_CHANGED: 2,
    ChangeType.FIELD_CHANGED: 3,
    ChangeType.PRICE_CHANGED: 4,
    ChangeType.GROUP_RATIO_CHANGED: 5,
    ChangeType.UNAVAILABLE: 6,
    ChangeType.AVAILABLE: 7,
}

_EMPTY: frozenset[str] = frozenset()


def change_sort_key(change: Change) -> tuple[str, int, str]:
    """Model id, then type order, then field: unique within one token's diff."""
    return (change.model, TYPE_ORDER[change.type], change.field or "")


def change_total_key(change: Change) -> tuple[str, int, str, str, tuple[str, ...]]:
    """A total, deterministic order, also for grouped changes of several tokens.

    Two tokens may see the same field change to different values; the JSON form breaks
    the tie without comparing values of unrelated types.
    """
    body = json.dumps(_identity_json(change), sort_keys=True, default=str)
    return (*change_sort_key(change), body, change.tokens)


def sort_changes(changes: Iterable[Change]) -> list[Change]:
    return sorted(changes, key=change_total_key)


def _identity_json(change: Change) -> dict[str, Any]:
    out = change.to_json()
    out.pop("tokens", None)
    if change.type is ChangeType.ENDPOINT_TYPES_CHANGED:
        out["_sides"] = [change.before, change.after]  # invisible in payloads, not here
    return out


def diff_models(
    before: Mapping[str, ModelRecord], after: Mapping[str, ModelRecord]
) -> list[Change]:
    """Every change from `before` to `after`, sorted by model id, type order, field.

    O(n) for the comparison; only the changed ids are sorted.
    """
    if before is after:
        return []
    touched: list[str] = []
    for model_id, record in before.items():
        new = after.get(model_id)
        if new is None or new != record:
            touched.append(model_id)
    touched.extend(model_id for model_id in after if model_id not in before)

    changes: list[Change] = []
    for model_id in sorted(touched):
        old = before.get(model_id)
        new = after.get(model_id)
        if old is None:
            changes.append(Change(ChangeType.ADDED, model_id, record=new))
        elif new is None:
            changes.append(Change(ChangeType.REMOVED, model_id, record=old))
        else:
            changes.extend(diff_record(old, new))
    return changes


def diff_record(before: ModelRecord, after: ModelRecord) -> list[Change]:
    """The changes of one model that exists on both sides (named by `after.id`)."""
    if before == after:
        return []
    model_id = after.id
    changes: list[Change] = []

    old_types, new_types = before.endpoint_types, after.endpoint_types
    if old_types != new_types:
        old_set = _EMPTY if old_types is None else old_types
        new_set = _EMPTY if new_types is None else new_types
        gained = tuple(sorted(new_set - old_set))
        lost = tuple(sorted(old_set - new_set))
        if gained or lost:
            flips = (old_types is None) != (new_types is None)
            changes.append(
                Change(
                    ChangeType.ENDPOINT_TYPES_CHANGED,
                    model_id,
                    gained=gained,
                    lost=lost,
                    before=_sides(old_types) if flips else None,
                    after=_sides(new_types) if flips else None,
                )
            )

    if before.fields != after.fields:
        old_fields, new_fields = before.field_map(), after.field_map()
        for name in sorted(old_fields.keys() | new_fields.keys()):
            old_value, new_value = old_fields.get(name), new_fields.get(name)
            if old_value != new_value:
                changes.append(
                    Change(
                        ChangeType.FIELD_CHANGED,
                        model_id,
                        field=name,
                        before=old_value,
                        after=new_value,
                    )
                )
    return changes


def _sides(types: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if types is None else tuple(sorted(types))


def apply_changes(
    models: Mapping[str, ModelRecord], changes: Iterable[Change]
) -> dict[str, ModelRecord]:
    """Replay `changes` over `models`: the inverse of `diff_models`.

    Strict: a change that does not fit the models (adding a present model, touching an
    absent one) raises ValueError, because a replay that silently drifts is worse than
    one that stops.
    """
    out = dict(models)
    for change in changes:
        model_id = change.model
        if change.type is ChangeType.ADDED:
            if model_id in out:
                raise ValueError(f"cannot add {model_id!r}: already present")
            if change.record is None:
                raise ValueError(f"added change for {model_id!r} has no record")
            out[model_id] = change.record
            continue
        if model_id not in out:
            raise ValueError(f"cannot apply {change.type} to {model_id!r}: not present")
        if change.type is ChangeType.REMOVED:
            del out[model_id]
        elif change.type is ChangeType.ENDPOINT_TYPES_CHANGED:
            out[model_id] = _apply_types(out[model_id], change)
        elif change.type is ChangeType.FIELD_CHANGED:
            out[model_id] = _apply_field(out[model_id], change)
    return out


def _apply_types(record: ModelRecord, change: Change) -> ModelRecord:
    if change.before is not None or change.after is not None:
        # A switch between None and a set: the change carries the new side itself.
        types = None if change.after is None else frozenset(change.after)
    else:
        current = _EMPTY if record.endpoint_types is None else record.endpoint_types
        types = (current - frozenset(change.lost)) | frozenset(change.gained)
    return dataclasses.replace(record, endpoint_types=types)


def _apply_field(record: ModelRecord, change: Change) -> ModelRecord:
    if change.field is None:
        raise ValueError(f"field_changed for {change.model!r} has no field name")
    fields = record.field_map()
    if change.after is None:
        fields.pop(change.field, None)  # a field that became None is a field that is gone
    else:
        fields[change.field] = change.after
    return dataclasses.replace(record, fields=tuple(sorted(fields.items(), key=_by_name)))


def _by_name(item: tuple[str, Any]) -> str:
    return item[0]
