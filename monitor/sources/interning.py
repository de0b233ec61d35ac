"""One record object per distinct model (`RecordTable`), owned with the other parse
caches (`monitor.sources.caches`)."""

from __future__ import annotations

from monitor.core.records import ModelRecord

# (id, endpoint types as sent, owned_by): the fields a new-api record is built from.
RecordKey = tuple[str, tuple[str, ...], str]


class RecordTable:
    """One record object per distinct model, across tokens and checks.

    Keyed by the fields the record is built from, and only for records made of strings
    (equal strings are interchangeable, unlike 1, 1.0 and True), so a hit is exactly
    what building the record again would give. Handing out the same object keeps memory
    flat with many tokens seeing one list, spares the garbage collector, and lets the
    snapshot store recognise a list by its records' identities
    (`monitor.store.snapshots`). Bounded: cleared when it grows past `limit`.
    Thread-safe: dict reads and `setdefault` are atomic.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._records: dict[RecordKey, ModelRecord] = {}

    def get(self, key: RecordKey) -> ModelRecord | None:
        return self._records.get(key)

    def intern(self, key: RecordKey, record: ModelRecord) -> ModelRecord:
        """The table's record for `key`: `record` unless another thread stored one first."""
        if len(self._records) >= self.limit:
            self._records.clear()
        return self._records.setdefault(key, record)

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
