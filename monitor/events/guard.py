"""The flap guard: which differences of one token are true enough to tell people.

Gateways flap. A new-api channel that fails upstream is disabled automatically and its
models vanish from every token until it is re-enabled; `supported_endpoint_types` comes
back as `[]` for a moment while a cache refreshes. Reporting each of those as a removal
and a re-addition would train people to ignore the alerts.

So the guard keeps, per token, what people have been told (`confirmed`) and how long
each confirmed model has looked different (`pending`):

- A model that appears is reported `added` at once and confirmed. New models are good
  news and never wrong: if one vanishes again, that removal goes through the guard.
- A confirmed model that is absent from a check, or differs from what was confirmed,
  becomes pending with what the check showed. Each further check that shows the *same*
  thing raises the count; a check that shows something else starts it again at one.
  When the count reaches `confirm_checks`, that difference is reported (a removal, or
  the `diff_record` changes) and becomes the confirmed state.
- A confirmed model that looks the same again is no longer pending.

Hence, with `confirm_checks >= 2`, a model missing in every other check is never
reported, nor is an endpoint-types list that is empty for a single check, nor a real
change followed by one lying check: only a difference seen the same way, consecutively,
is told. (A field that changes on every single check is never reported: it is volatile,
and belongs in the source's `ignore_fields`.) With `confirm_checks = 1` every change is
reported at once. Only successful checks are fed in here: a failed check never becomes
a snapshot (docs/detection.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.core.diff import change_sort_key, diff_record
from monitor.core.records import Change, ChangeType, ModelRecord


@dataclass(frozen=True, slots=True)
class Pending:
    """A confirmed model that the latest checks showed otherwise: the same way each time."""

    seen: ModelRecord | None  # what they showed; None: the model was absent
    count: int  # in how many consecutive successful checks

    def to_json(self) -> dict[str, Any]:
        return {"seen": None if self.seen is None else self.seen.to_json(), "count": self.count}

    @classmethod
    def from_json(cls, data: Any) -> Pending | None:
        """None for anything unreadable (a streak then simply starts again)."""
        if not isinstance(data, dict) or not isinstance(data.get("count"), int):
            return None
        seen = data.get("seen")
        return cls(None if seen is None else ModelRecord.from_json(seen), data["count"])


@dataclass(frozen=True)
class GuardState:
    """The guard's state for one token. Treat both mappings as read-only.

    `pending` holds the confirmed models that the latest checks showed differently
    (absent, or with other attributes); models that look confirmed are not in it.
    """

    confirmed: Mapping[str, ModelRecord]
    pending: Mapping[str, Pending] = field(default_factory=dict)


def baseline(seen: Mapping[str, ModelRecord]) -> GuardState:
    """The state after a token's first successful check, which is reported to no one."""
    return GuardState(confirmed=dict(seen), pending={})


def observe(
    view: GuardState,
    seen: Mapping[str, ModelRecord],
    confirm_checks: int,
    *,
    mass_share: float | None = None,
) -> tuple[GuardState, list[Change]]:
    """Feed one successful check; return the new state and the changes to report.

    The changes carry no tokens (grouping fills them in) and are sorted by model id,
    type order and field. When more than `mass_share` of the confirmed models are
    missing at once, their removal needs at least two checks even with
    `confirm_checks = 1`: a list that collapses is confirmed before anyone is told.
    """
    if confirm_checks < 1:
        raise ValueError(f"confirm_checks must be at least 1, got {confirm_checks}")
    confirmed = view.confirmed
    # The common case, nothing moved: one O(n) comparison, no copies.
    if seen == confirmed:
        return (view if not view.pending else GuardState(confirmed, {})), []

    new_confirmed: dict[str, ModelRecord] | None = None  # copied on the first update
    pending: dict[str, Pending] = {}
    changes: list[Change] = []

    def streak(model_id: str, now: ModelRecord | None) -> Pending:
        """One more check showing `now`; a different showing starts the count again."""
        before = view.pending.get(model_id)
        count = before.count + 1 if before is not None and before.seen == now else 1
        return Pending(now, count)

    def confirm() -> dict[str, ModelRecord]:
        nonlocal new_confirmed
        if new_confirmed is None:
            new_confirmed = dict(confirmed)
        return new_confirmed

    present = 0  # seen ids that are confirmed: fewer than len(confirmed) means losses
    for model_id, record in seen.items():
        old = confirmed.get(model_id)
        if old is None:
            changes.append(Change(ChangeType.ADDED, model_id, record=record))
            confirm()[model_id] = record
            continue
        present += 1
        if old != record:
            entry = streak(model_id, record)
            if entry.count >= confirm_checks:
                changes.extend(diff_record(old, record))
                confirm()[model_id] = record
            else:
                pending[model_id] = entry

    if present < len(confirmed):
        missing = len(confirmed) - present
        needed = confirm_checks
        if mass_share is not None and missing > mass_share * len(confirmed):
            needed = max(confirm_checks, 2)
        for model_id, old in confirmed.items():
            if model_id in seen:
                continue
            entry = streak(model_id, None)
            if entry.count >= needed:
                changes.append(Change(ChangeType.REMOVED, model_id, record=old))
                del confirm()[model_id]
            else:
                pending[model_id] = entry

    state = GuardState(confirmed if new_confirmed is None else new_confirmed, pending)
    # One token's changes are unique by (model, type, field): the cheap key is total here.
    return state, sorted(changes, key=change_sort_key)
