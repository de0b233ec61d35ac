"""Field changes too small, or too uninteresting, to tell anyone about.

Per source, `ignore_fields` drops fields before anything is stored or compared, and
`thresholds` says how large a relative change of a numeric field must be to count
(OpenRouter prices move by fractions of a percent). A change below its threshold is
compared against what people were last *told*, not against the previous check, so slow
drift is still reported once it adds up.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.records import ModelRecord, percent_change


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    ignore: tuple[str, ...] = ()  # globs on field names
    thresholds: tuple[tuple[str, float], ...] = ()  # (glob, minimum relative change, 0.01 = 1%)

    def __bool__(self) -> bool:
        return bool(self.ignore or self.thresholds)

    def strip(self, models: Mapping[str, ModelRecord]) -> Mapping[str, ModelRecord]:
        """The models without ignored fields (the same mapping when nothing is ignored)."""
        if not self.ignore or not any(r.fields for r in models.values()):
            return models
        return {key: self._strip_record(record) for key, record in models.items()}

    def _strip_record(self, record: ModelRecord) -> ModelRecord:
        kept = tuple((k, v) for k, v in record.fields if not self._ignored(k))
        return (
            record
            if len(kept) == len(record.fields)
            else ModelRecord(record.id, record.endpoint_types, kept)
        )

    def _ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore)

    def threshold(self, name: str) -> float | None:
        return next((t for p, t in self.thresholds if fnmatch.fnmatchcase(name, p)), None)

    def settle(
        self, confirmed: Mapping[str, ModelRecord], seen: Mapping[str, ModelRecord]
    ) -> Mapping[str, ModelRecord]:
        """`seen`, with field values that moved less than their threshold put back to the
        confirmed ones, so the flap guard does not see them as changes."""
        if not self.thresholds:
            return seen
        settled: dict[str, ModelRecord] | None = None
        for key, record in seen.items():
            old = confirmed.get(key)
            if old is None or old.fields == record.fields:
                continue
            fixed = self._settle_record(old, record)
            if fixed is not record:
                if settled is None:
                    settled = dict(seen)
                settled[key] = fixed
        return seen if settled is None else settled

    def _settle_record(self, old: ModelRecord, new: ModelRecord) -> ModelRecord:
        old_fields = old.field_map()
        fields = []
        changed = False
        for name, value in new.fields:
            limit = self.threshold(name)
            previous = old_fields.get(name)
            if limit is not None and previous != value:
                delta = percent_change(previous, value)
                if delta is not None and abs(delta) < limit * 100:
                    value = previous
                    changed = True
            fields.append((name, value))
        return ModelRecord(new.id, new.endpoint_types, tuple(fields)) if changed else new
