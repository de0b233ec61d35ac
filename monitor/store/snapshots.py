"""Content-addressed snapshot storage: an unchanged models list is stored once."""

from __future__ import annotations

import operator
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.records import (
    Encodings,
    ModelRecord,
    Models,
    canonical_json,
    content_hash,
    models_from_canonical,
)
from monitor.store.dialects import upsert_insert
from monitor.store.errors import DatabaseError
from monitor.store.schema import Snapshot

_SESSION_IDS = "monitor.snapshot_ids"  # content hash -> id, within one session


class CorruptSnapshotError(DatabaseError):
    """A stored models list that no longer decodes: the database was damaged."""


@dataclass(slots=True)
class _Seen:
    models: Models  # a copy of its own or a read-only mapping, never changed
    content_hash: str | None = None  # known once the list was hashed


class SnapshotStore:
    """Writes snapshots by content hash and reads them back through a small cache.

    Only reads fill the cache: an id seen inside a transaction that later rolls
    back must never be remembered, since SQLite may hand that id out again. Ids
    learned while writing are remembered in the session (`Session.info`), which
    ends with its transaction.
    """

    def __init__(self, cache_size: int = 512, recent: int = 8) -> None:
        self._cache: OrderedDict[int, dict[str, ModelRecord]] = OrderedDict()
        self._cache_size = cache_size
        # The last distinct lists seen, with their content hashes once known (`_recent_entry`).
        self._recent: deque[_Seen] = deque(maxlen=recent)
        self._lock = Lock()
        self._encodings = Encodings()

    def shared(self, models: Models) -> Models:
        """One mapping for every list made of the very same records.

        A fetch hands its list through here, so 1,000 tokens that see one list hold
        one dict until the cycle's write, not 1,000: the garbage collector walks every
        dict that is held, and with one per token it cost a quarter of a cycle's CPU.
        The result must not be changed.
        """
        return self._recent_entry(models).models

    def put(self, session: Session, models: Models, now: datetime) -> int:
        """The id of the snapshot holding `models`, stored if new."""
        canonical: bytes | None = None
        entry = self._recent_entry(models)
        found_hash = entry.content_hash
        if found_hash is None:
            canonical = canonical_json(models, self._encodings)
            found_hash = entry.content_hash = content_hash(canonical)
        ids: dict[str, int] = session.info.setdefault(_SESSION_IDS, {})
        found = ids.get(found_hash)
        if found is None:
            found = self._find_or_insert(session, models, now, found_hash, canonical)
            ids[found_hash] = found
        return found

    def _recent_entry(self, models: Models) -> _Seen:
        """The recent list holding the very same record objects as `models`.

        The tokens of a group, and the checks of an unchanged list, hand out the same
        record objects (interned records, cached pages): comparing identities is exact
        and costs a fraction of encoding and hashing the list again. Equality would
        not do: `1 == 1.0`, yet the two encode, and so hash, differently. A list not
        seen recently is remembered as a copy, as a caller may change its dict afterwards,
        unless it is read-only (a cached page's index, shared by every token that got it).
        """
        with self._lock:
            recent = list(self._recent)
        for entry in reversed(recent):
            seen = entry.models
            if seen is models or (len(seen) == len(models) and _same_records(seen, models)):
                return entry
        entry = _Seen(models if isinstance(models, MappingProxyType) else dict(models))
        with self._lock:
            self._recent.append(entry)
        return entry

    def _find_or_insert(
        self, session: Session, models: Models, now: datetime, key: str, canonical: bytes | None
    ) -> int:
        found = session.scalar(select(Snapshot.id).where(Snapshot.content_hash == key))
        if found is not None:
            return found
        if canonical is None:
            canonical = canonical_json(models, self._encodings)
        values = {
            Snapshot.content_hash: key,  # by attribute: its column is named "digest"
            Snapshot.model_count: len(models),
            Snapshot.body: zlib.compress(canonical, 6),
            Snapshot.created_at: now,
        }
        insert = upsert_insert(session)
        # Another instance may store the same list at the same moment.
        session.execute(insert(Snapshot).values(values).on_conflict_do_nothing())
        # Stored now, by this insert or by the other instance's: exactly one row.
        return session.execute(select(Snapshot.id).where(Snapshot.content_hash == key)).scalar_one()

    def load(self, session: Session, snapshot_id: int) -> dict[str, ModelRecord]:
        """The models of a snapshot. Callers must not mutate the returned dict."""
        with self._lock:
            cached = self._cache.get(snapshot_id)
            if cached is not None:
                self._cache.move_to_end(snapshot_id)
                return cached
        body = session.scalar(select(Snapshot.body).where(Snapshot.id == snapshot_id))
        if body is None:
            raise LookupError(f"snapshot {snapshot_id} does not exist")
        try:
            models = models_from_canonical(zlib.decompress(body))
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            raise CorruptSnapshotError(
                f"snapshot {snapshot_id} is damaged ({type(exc).__name__}: {exc}); restore the "
                "database from a backup"
            ) from exc
        with self._lock:
            self._cache[snapshot_id] = models
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return models


def _same_records(a: Models, b: Models) -> bool:
    """The same ids mapped to the very same record objects (in C, no Python loop)."""
    return a.keys() == b.keys() and all(map(operator.is_, map(a.__getitem__, b), b.values()))
