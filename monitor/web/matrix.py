"""The matrix (`/matrix`): models x tokens of one source, recent additions and removals marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from monitor.core.records import ModelRecord
from monitor.store import queries
from monitor.store.probes import unavailable_pairs
from monitor.store.snapshots import SnapshotStore
from monitor.web.status import error_kind

DEFAULT_DAYS = 7  # "added or removed recently" on the matrix

# -- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One model for one token.

    state: "" absent, "p" present, "a" present and added within the window, "r" absent
    and removed within the window, "x" present but not callable (probes found it
    unavailable; `error` says how it failed). `types` is set only when this token's
    endpoint types differ from another token's for the same model; otherwise the row
    shows them once.
    """

    state: str
    types: tuple[str, ...] = ()
    error: str | None = None


ABSENT, PRESENT, ADDED, REMOVED = Cell(""), Cell("p"), Cell("a"), Cell("r")


@dataclass(frozen=True, slots=True)
class MatrixColumn:
    """One token. A failing token's column is stale: it shows the last successful check,
    which may be long ago, so the page marks it (header, cells and a note) rather than
    leaving it to look current."""

    token: str
    model_count: int | None  # None: no successful check yet
    last_ok: datetime | None
    failing: bool = False
    failing_since: datetime | None = None
    error: str | None = None  # what it fails with, short: "auth (HTTP 401)"

    @property
    def stale(self) -> bool:
        return self.failing


@dataclass(frozen=True, slots=True)
class MatrixRow:
    model: str
    owner: str | None
    badges: tuple[str, ...]  # endpoint types: every token's when `uniform`, else their union
    uniform: bool
    cells: tuple[Cell, ...]
    added: bool  # for some token within the window
    removed: bool


@dataclass(frozen=True, slots=True)
class MatrixView:
    source: str
    columns: tuple[MatrixColumn, ...]
    rows: tuple[MatrixRow, ...]
    total: int  # rows before the `query` filter
    days: int
    since: datetime
    generated_at: datetime
    query: str = ""
    has_types: bool = False
    has_owner: bool = False

    @property
    def stale(self) -> tuple[bool, ...]:
        """Per column, whether it is stale (for the cells of each row)."""
        return tuple(c.stale for c in self.columns)

    @property
    def stale_columns(self) -> tuple[MatrixColumn, ...]:
        return tuple(c for c in self.columns if c.stale)

    @property
    def added(self) -> int:
        return sum(1 for r in self.rows if r.added)

    @property
    def removed(self) -> int:
        return sum(1 for r in self.rows if r.removed)

    @property
    def uncallable(self) -> int:
        """Listed-but-not-callable cells (docs/probes.md)."""
        return sum(1 for r in self.rows for c in r.cells if c.state == "x")


def build_matrix(
    session: Session,
    store: SnapshotStore,
    source: str,
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    query: str = "",
    tokens: Sequence[str] = (),
) -> MatrixView:
    """Models (rows) x tokens (columns) of one source, from each token's last snapshot.

    Added/removed marks come from the `models.changed` events of the last `days` days:
    the latest added-or-removed change of a (model, token) pair decides, and only when
    the snapshot agrees (an added model that is gone again is not "added"). A removed
    model is in no snapshot any more, so it becomes a row of its own for the window.
    `tokens` are configured tokens to show as columns even before their first check.
    """
    since = now - timedelta(days=days)
    snapshot_ids = queries.last_snapshot_ids(session, source)
    states = {s.token: s for s in queries.status_records(session) if s.source == source}
    names = sorted(set(snapshot_ids) | set(tokens))
    models: list[Mapping[str, ModelRecord]] = []
    columns: list[MatrixColumn] = []
    for name in names:
        snapshot_id = snapshot_ids.get(name)
        models.append(store.load(session, snapshot_id) if snapshot_id is not None else {})
        state = states.get(name)
        columns.append(
            MatrixColumn(
                token=name,
                model_count=len(models[-1]) if snapshot_id is not None else None,
                last_ok=state.last_ok_at if state else None,
                failing=bool(state and state.failing),
                failing_since=state.failing_since if state else None,
                error=error_kind(state.last_error) if state and state.failing else None,
            )
        )

    latest: dict[tuple[str, str], str] = {}  # (model, token) -> "added" | "removed"
    gone: dict[str, Mapping[str, Any]] = {}  # removed model -> its attributes before
    for payload in queries.events_since(session, since, source=source):
        if payload.get("type") != "models.changed":
            continue
        for change in payload.get("changes", ()):
            kind = change.get("type")
            if kind not in ("added", "removed"):
                continue
            for token in change.get("tokens", ()):
                latest[(change["model"], token)] = kind
            if kind == "removed":
                gone[change["model"]] = change.get("before") or {}

    uncallable = {
        pair: "" if error is None else error.text()
        for pair, (owner, error) in unavailable_pairs(session).items()
        if owner == source
    }
    ids: set[str] = set()
    for listing in models:
        ids.update(listing)
    ids.update(m for (m, t), kind in latest.items() if kind == "removed" and t in names)
    total = len(ids)
    needle = query.strip().casefold()
    rows = [
        _row(model, names, models, latest, gone.get(model, {}), uncallable)
        for model in sorted(ids)
        if not needle or needle in model.casefold()
    ]
    return MatrixView(
        source=source,
        columns=tuple(columns),
        rows=tuple(rows),
        total=total,
        days=days,
        since=since,
        generated_at=now,
        query=query.strip(),
        has_types=any(r.badges for r in rows),
        has_owner=any(r.owner for r in rows),
    )


def _row(
    model: str,
    tokens: Sequence[str],
    models: Sequence[Mapping[str, ModelRecord]],
    latest: Mapping[tuple[str, str], str],
    before: Mapping[str, Any],
    uncallable: Mapping[tuple[str, str], str],
) -> MatrixRow:
    cells: list[Cell] = []
    kinds: list[frozenset[str] | None] = []
    owner: str | None = None
    added = removed = False
    for token, listing in zip(tokens, models, strict=True):
        record = listing.get(model)
        mark = latest.get((model, token))
        if record is not None:
            kinds.append(record.endpoint_types)
            if owner is None:
                value = record.field_map().get("owned_by")
                owner = value if isinstance(value, str) and value else None
            added |= mark == "added"
            failure = uncallable.get((token, model))
            if failure is not None:
                cells.append(Cell("x", error=failure))
            else:
                cells.append(ADDED if mark == "added" else PRESENT)
        else:
            removed |= mark == "removed"
            cells.append(REMOVED if mark == "removed" else ABSENT)
    if not kinds:  # removed everywhere: what the model was like
        types = before.get("endpoint_types")
        badges = tuple(sorted(str(t) for t in types)) if isinstance(types, list) else ()
        owned_by = before.get("owned_by")
        owner = owned_by if isinstance(owned_by, str) and owned_by else None
        return MatrixRow(model, owner, badges, True, tuple(cells), added, removed)
    distinct = set(kinds)
    if len(distinct) == 1:
        (only,) = distinct
        return MatrixRow(
            model, owner, tuple(sorted(only or ())), True, tuple(cells), added, removed
        )
    union = sorted({t for k in kinds for t in (k or ())})
    # The types differ between tokens: each present cell says its own.
    detailed = iter(kinds)
    cells = [
        Cell(c.state, tuple(sorted(next(detailed) or ())), c.error)
        if c.state in ("p", "a", "x")
        else c
        for c in cells
    ]
    return MatrixRow(model, owner, tuple(union), False, tuple(cells), added, removed)
