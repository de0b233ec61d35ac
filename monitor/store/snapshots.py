"""Content-addressed snapshot storage: an unchanged models list is stored once."""

from __future__ import annotations

import zlib
from collections import OrderedDict
from datetime import datetime
from threading import Lock

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.records import ModelRecord, Models, canonical_json, digest, models_from_canonical
from monitor.store.schema import Snapshot


class SnapshotStore:
    """Writes snapshots by digest and reads them back through a small cache.

    Only reads fill the cache: an id seen inside a transaction that later rolls
    back must never be remembered, since SQLite may hand that id out again.
    """

    def __init__(self, cache_size: int = 512) -> None:
        self._cache: OrderedDict[int, dict[str, ModelRecord]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def put(self, session: Session, models: Models, now: datetime) -> int:
        canonical = canonical_json(models)
        key = digest(canonical)
        found = session.scalar(select(Snapshot.id).where(Snapshot.digest == key))
        if found is not None:
            return found
        values = {
            "digest": key,
            "model_count": len(models),
            "body": zlib.compress(canonical, 6),
            "created_at": now,
        }
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Another instance may store the same list at the same moment.
        session.execute(insert(Snapshot).values(values).on_conflict_do_nothing())
        return session.scalar(select(Snapshot.id).where(Snapshot.digest == key))  # type: ignore[return-value]

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
        models = models_from_canonical(zlib.decompress(body))
        with self._lock:
            self._cache[snapshot_id] = models
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return models
