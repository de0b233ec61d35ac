"""Content-addressed snapshot storage: an unchanged models list is stored once."""

from __future__ import annotations

import operator
import zlib
from collections import OrderedDict, deque
from datetime import datetime
from threading import Lock

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.records import ModelRecord, Models, canonical_json, digest, models_from_canonical
from monitor.store.schema import Snapshot

_SESSION_IDS = "monitor.snapshot_ids"  # digest -> id, within one session


class SnapshotStore:
    """Writes snapshots by digest and reads them back through a small cache.

    Only reads fill the cache: an id seen inside a transaction that later rolls
    back must never be remembered, since SQLite may hand that id out again. Ids
    learned while writing are remembered in the session (`Session.info`), which
    ends with its transaction.
    """

    def __init__(self, cache_size: int = 512, recent: int = 8) -> None:
        self._cache: OrderedDict[int, dict[str, ModelRecord]] = OrderedDict()
        self._cache_size = cache_size
        # The last lists hashed, with their digests (see `_known_digest`).
        self._recent: deque[tuple[Models, str]] = deque(maxlen=recent)
        self._lock = Lock()

    def put(self, session: Session, models: Models, now: datetime) -> int:
        """The id of the snapshot holding `models`, stored if new."""
        canonical: bytes | None = None
        found_digest = self._known_digest(models)
        if found_digest is None:
            canonical = canonical_json(models)
            found_digest = digest(canonical)
            with self._lock:
                # A copy: a caller may change its dict afterwards.
                self._recent.append((dict(models), found_digest))
        ids: dict[str, int] = session.info.setdefault(_SESSION_IDS, {})
        found = ids.get(found_digest)
        if found is None:
            found = self._find_or_insert(session, models, now, found_digest, canonical)
            ids[found_digest] = found
        return found

    def _known_digest(self, models: Models) -> str | None:
        """The digest of a recently hashed list holding the very same record objects.

        The tokens of a group, and the checks of an unchanged list, hand out the same
        record objects (interned records, cached pages): comparing identities is exact
        and costs a fraction of encoding and hashing the list again. Equality would
        not do: `1 == 1.0`, yet the two encode, and so hash, differently.
        """
        with self._lock:
            recent = list(self._recent)
        for seen, value in reversed(recent):
            if len(seen) == len(models) and _same_records(seen, models):
                return value
        return None

    def _find_or_insert(
        self, session: Session, models: Models, now: datetime, key: str, canonical: bytes | None
    ) -> int:
        found = session.scalar(select(Snapshot.id).where(Snapshot.digest == key))
        if found is not None:
            return found
        if canonical is None:
            canonical = canonical_json(models)
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


def _same_records(a: Models, b: Models) -> bool:
    """The same ids mapped to the very same record objects (in C, no Python loop)."""
    return a.keys() == b.keys() and all(map(operator.is_, map(a.__getitem__, b), b.values()))
