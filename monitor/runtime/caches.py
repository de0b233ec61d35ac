"""Everything a checker remembers between checks, and why a hit is exact.

A cycle of 1,000 tokens sees the same list 1,000 times; these caches make that cost
little more than seeing it once (docs/performance.md measures each). A `Checker` owns one
`CycleCaches` for its lifetime; nothing is global, so two checkers (or two tests) never
share a hit. None holds a token value, and none is persisted.

Each entry: what is kept, by whom, under which key, and why a hit is exact.

- Parsed pages (`parsed.pages`), by flavor, request without headers and SHA-256 of the
  body: same bytes, same parse; only flavors whose `parse` depends on the body alone
  take part.
- Reordered lists (`parsed.pages`), by the set of item texts and the text around them:
  every item was checked to be the JSON object it parses to before the key was stored
  (`monitor.sources.reordered`).
- Interned records (`parsed.records`), by (id, endpoint types as sent, owned_by): a
  record is built from exactly those fields, all strings.
- Record encodings (`snapshots`), by the record object's identity, never equality:
  `1 == 1.0`, yet they encode differently.
- Recent lists (`snapshots`), by the identities of a list's records: the same objects
  encode and hash the same.
- Snapshot bodies (`snapshots`), by snapshot id: snapshots never change once written.
- Snapshot ids (the session's `Session.info`), by a list's content hash: they end with the
  transaction, so a rollback cannot leave a wrong id.
- Guard outcomes (the session's `Session.info`), by (confirmed snapshot, seen snapshot,
  policy): without a streak in progress the flap guard's outcome depends on these
  alone; they end with the transaction.

The identities chain: interned records make equal lists out of the same objects, so the
snapshot store recognises a list without hashing it and encodes each model once. Every
table is bounded (by models, entries or the transaction) and safe to share between the
fetch threads of one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.sources.caches import ParseCaches
from monitor.store.snapshots import SnapshotStore


@dataclass(frozen=True, slots=True)
class CycleCaches:
    parsed: ParseCaches = field(default_factory=ParseCaches)
    snapshots: SnapshotStore = field(default_factory=SnapshotStore)
