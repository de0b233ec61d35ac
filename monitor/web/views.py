"""View models for the status pages: frozen values built from small read queries.

Each builder takes an open read session and returns plain data the templates only
have to print, so the pages, the Atom feed and `report --html` show the same thing
and the logic can be tested without HTML. Every string that came from a gateway
(model ids, endpoint types, owners, error messages) stays a plain `str` here: the
templates escape it, and nothing in this module marks anything as safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.events.grouping import describe_error, summarize
from monitor.records import Change, ChangeType, ErrorKind, FetchError, ModelRecord
from monitor.store import queries
from monitor.store.snapshots import SnapshotStore

DEFAULT_DAYS = 7  # "added or removed recently" on the matrix
DEFAULT_LIMIT = 200  # events on /changes and in the feed unless `limit` says otherwise
MAX_LIMIT = 1000
MAX_CHANGES_SHOWN = 200  # per event; a gateway adding 800 models at once is still one event
OPEN_DELIVERIES_SHOWN = 50  # per state on the status page

CHANGE_TYPES: tuple[str, ...] = tuple(str(t) for t in ChangeType)
TOKEN_EVENT_TYPES: tuple[str, ...] = ("token.failing", "token.recovered")
# What `type=` accepts on /changes: a change type, or an event type without changes.
TYPE_FILTERS: tuple[str, ...] = (*CHANGE_TYPES, *TOKEN_EVENT_TYPES)


# -- the status page ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRow:
    """One token's health as the last check left it."""

    name: str
    fingerprint: str | None
    flavor: str | None
    last_check: datetime | None
    outcome: str | None  # "ok", an error kind, "skipped", or None before the first check
    last_ok: datetime | None
    failing: bool
    failing_since: datetime | None
    model_count: int | None
    error: str | None  # the last error, said as `status` says it

    @property
    def health(self) -> str:
        """One word for the badge: failing, error (not failing yet), ok, or unchecked."""
        if self.failing:
            return "failing"
        if self.outcome is None:
            return "unchecked"
        return "ok" if self.outcome in ("ok", "skipped") else "error"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    base_url: str | None  # from the config; None when the pages run without one
    flavor: str | None
    tokens: tuple[TokenRow, ...]

    @property
    def failing(self) -> int:
        return sum(1 for t in self.tokens if t.failing)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    channel: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    event_type: str
    summary: str


@dataclass(frozen=True, slots=True)
class DisabledChannel:
    channel: str
    since: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class StatusView:
    generated_at: datetime
    sources: tuple[SourceStatus, ...]
    pending: int
    held: int
    dead: int
    sent: int
    open_deliveries: tuple[DeliveryRow, ...]  # pending, held and dead, newest first
    disabled: tuple[DisabledChannel, ...]


def build_status(session: Session, config: Config | None, now: datetime) -> StatusView:
    """Every source and token (configured or seen in the database) and the outbox."""
    statuses = queries.token_statuses(session)
    by_source: dict[str, list[TokenRow]] = {}
    for s in statuses:
        by_source.setdefault(s.source, []).append(
            TokenRow(
                name=s.token,
                fingerprint=s.fingerprint,
                flavor=s.flavor,
                last_check=s.last_check_at,
                outcome=s.last_outcome,
                last_ok=s.last_ok_at,
                failing=s.failing,
                failing_since=s.failing_since,
                model_count=s.model_count,
                error=None
                if s.last_outcome in (None, "ok", "skipped")
                else _error_text(s.last_error),
            )
        )
    sources: list[SourceStatus] = []
    configured = {s.name: s for s in config.sources} if config else {}
    for name in _ordered(configured, by_source):
        rows = by_source.get(name, [])
        if config is not None and name in configured:
            seen = {r.name for r in rows}
            rows += [_unchecked(t.name) for t in config.tokens_of(name) if t.name not in seen]
        source = configured.get(name)
        flavors = {r.flavor for r in rows if r.flavor}
        flavor = source.flavor if source else (flavors.pop() if len(flavors) == 1 else None)
        sources.append(
            SourceStatus(
                name=name,
                base_url=source.base_url if source else None,
                flavor=flavor,
                tokens=tuple(sorted(rows, key=lambda r: r.name)),
            )
        )
    counts = queries.delivery_counts(session)
    open_rows: list[DeliveryRow] = []
    for state in ("dead", "pending", "held"):
        for d, kind, summary in queries.deliveries(session, state, limit=OPEN_DELIVERIES_SHOWN):
            open_rows.append(
                DeliveryRow(
                    id=d.id,
                    channel=d.channel,
                    state=d.state,
                    attempts=d.attempts,
                    created_at=d.created_at,
                    next_attempt_at=d.next_attempt_at if d.state != "dead" else None,
                    last_error=d.last_error,
                    event_type=kind,
                    summary=summary,
                )
            )
    disabled = tuple(
        DisabledChannel(c.channel, c.disabled_at, c.reason)
        for c in queries.disabled_channels(session)
    )
    return StatusView(
        generated_at=now,
        sources=tuple(sources),
        pending=counts.get("pending", 0),
        held=counts.get("held", 0),
        dead=counts.get("dead", 0),
        sent=counts.get("sent", 0),
        open_deliveries=tuple(open_rows),
        disabled=disabled,
    )


def _ordered(first: Iterable[str], then: Iterable[str]) -> list[str]:
    """Config order first (how the operator thinks of them), then the rest by name."""
    names = list(dict.fromkeys(first))
    return names + sorted(set(then) - set(names))


def _unchecked(token: str) -> TokenRow:
    return TokenRow(token, None, None, None, None, None, False, None, None, None)


def _error_text(error: Mapping[str, Any] | None) -> str | None:
    if not error:
        return None
    try:
        kind = ErrorKind(error.get("kind"))
    except ValueError:
        return str(error.get("message") or error.get("kind") or "unknown error")
    return describe_error(
        FetchError(
            kind=kind,
            message=str(error.get("message") or ""),
            status=error.get("status"),
            detail=error.get("detail"),
        )
    )


def source_names(session: Session, config: Config | None) -> tuple[str, ...]:
    """Sources worth offering: configured ones first, then any the database has seen."""
    seen = {s.source for s in queries.token_statuses(session)}
    return tuple(_ordered((s.name for s in config.sources) if config else (), seen))


# -- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One model for one token.

    state: "" absent, "p" present, "a" present and added within the window, "r" absent
    and removed within the window. `types` is set only when this token's endpoint types
    differ from another token's for the same model; otherwise the row shows them once.
    """

    state: str
    types: tuple[str, ...] = ()


ABSENT, PRESENT, ADDED, REMOVED = Cell(""), Cell("p"), Cell("a"), Cell("r")


@dataclass(frozen=True, slots=True)
class MatrixColumn:
    token: str
    model_count: int | None  # None: no successful check yet
    last_ok: datetime | None


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
    def added(self) -> int:
        return sum(1 for r in self.rows if r.added)

    @property
    def removed(self) -> int:
        return sum(1 for r in self.rows if r.removed)


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
    states = {s.token: s for s in queries.token_statuses(session) if s.source == source}
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

    ids: set[str] = set()
    for listing in models:
        ids.update(listing)
    ids.update(m for (m, t), kind in latest.items() if kind == "removed" and t in names)
    total = len(ids)
    needle = query.strip().casefold()
    rows = [
        _row(model, names, models, latest, gone.get(model, {}))
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
        Cell(c.state, tuple(sorted(next(detailed) or ()))) if c.state in ("p", "a") else c
        for c in cells
    ]
    return MatrixRow(model, owner, tuple(union), False, tuple(cells), added, removed)


# -- the timeline --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One change of an event, ready to print."""

    type: str
    model: str
    tokens: tuple[str, ...]
    # added: the model as it is; removed: as it was (None: a flavor without endpoint types)
    types: tuple[str, ...] | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    gained: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    field: str | None = None
    before: str | None = None  # None: absent on that side
    after: str | None = None
    percent: float | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    id: str
    type: str
    occurred_at: datetime
    source: str
    tokens: tuple[str, ...]
    summary: str
    changes: tuple[ChangeLine, ...] = ()
    more: int = 0  # changes left out (over MAX_CHANGES_SHOWN)
    error: str | None = None
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    """What /changes and /changes.atom were asked for (all optional)."""

    source: str | None = None
    token: str | None = None
    type: str | None = None
    limit: int = DEFAULT_LIMIT
    since: datetime | None = None  # `report --days`; the pages cap by count instead

    def query(self, **override: Any) -> str:
        """The query string that asks for this filter again (for links), '' when empty."""
        values = {
            "source": self.source,
            "token": self.token,
            "type": self.type,
            "limit": self.limit if self.limit != DEFAULT_LIMIT else None,
            **override,
        }
        pairs = [(k, str(v)) for k, v in values.items() if v not in (None, "")]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return bool(self.source or self.token or self.type)


@dataclass(frozen=True, slots=True)
class TimelineView:
    filter: TimelineFilter
    entries: tuple[TimelineEntry, ...]
    capped: bool  # more events matched than `filter.limit`
    generated_at: datetime
    sources: tuple[str, ...] = ()  # choices for the filter form
    tokens: tuple[str, ...] = ()
    types: tuple[str, ...] = TYPE_FILTERS

    @property
    def updated(self) -> datetime:
        """The feed's `updated`: the newest entry, or now for an empty feed."""
        return self.entries[0].occurred_at if self.entries else self.generated_at


def build_timeline(
    session: Session, flt: TimelineFilter, *, now: datetime, config: Config | None = None
) -> TimelineView:
    """Events newest first, narrowed by source, token and type, at most `flt.limit`.

    A change-type or token filter narrows an event's changes to the matching ones (and
    recomputes its summary), as channel routing does; an event left with none is skipped.
    """
    event_type = None
    if flt.type in CHANGE_TYPES:
        event_type = "models.changed"
    elif flt.type:
        event_type = flt.type
    entries: list[TimelineEntry] = []
    capped = False
    payloads = queries.events_newest_first(
        session, source=flt.source, event_type=event_type, since=flt.since
    )
    for payload in payloads:
        entry = _entry(payload, flt)
        if entry is None:
            continue
        if len(entries) == flt.limit:
            capped = True
            break
        entries.append(entry)
    statuses = queries.token_statuses(session)
    configured = [t.name for t in config.tokens] if config else []
    return TimelineView(
        filter=flt,
        entries=tuple(entries),
        capped=capped,
        generated_at=now,
        sources=source_names(session, config),
        tokens=tuple(_ordered(sorted(configured), (s.token for s in statuses))),
    )


def _entry(payload: Mapping[str, Any], flt: TimelineFilter) -> TimelineEntry | None:
    tokens = tuple(payload.get("tokens", ()))
    if flt.token and flt.token not in tokens:
        return None
    changes = list(payload.get("changes", ()))
    narrowed = False
    if flt.type in CHANGE_TYPES:
        changes = [c for c in changes if c.get("type") == flt.type]
        narrowed = True
    if flt.token and changes:
        changes = [c for c in changes if flt.token in c.get("tokens", ())]
        narrowed = True
    if narrowed and not changes:
        return None
    source = payload.get("source", {}).get("name", "")
    summary = str(payload.get("summary", ""))
    if narrowed and len(changes) != len(payload.get("changes", ())):
        summary = summarize((Change(ChangeType(c["type"]), c["model"]) for c in changes), source)
    shown = changes[:MAX_CHANGES_SHOWN]
    return TimelineEntry(
        id=str(payload["id"]),
        type=str(payload["type"]),
        occurred_at=datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")),
        source=source,
        tokens=tokens,
        summary=summary,
        changes=tuple(_change_line(c) for c in shown),
        more=len(changes) - len(shown),
        error=_error_text(payload.get("error")),
        notice=payload.get("notice"),
    )


def _change_line(change: Mapping[str, Any]) -> ChangeLine:
    kind = str(change.get("type"))
    common = {"type": kind, "model": str(change.get("model")), "tokens": tuple(change["tokens"])}
    if kind in ("added", "removed"):
        record = change.get("after" if kind == "added" else "before") or {}
        types = record.get("endpoint_types")
        return ChangeLine(
            **common,
            types=None if types is None else tuple(str(t) for t in types),
            attributes=tuple(
                (name, _value(record[name]) or "(none)")
                for name in sorted(record)
                if name != "endpoint_types"
            ),
        )
    if kind == "endpoint_types_changed":
        return ChangeLine(
            **common,
            gained=tuple(str(t) for t in change.get("gained", ())),
            lost=tuple(str(t) for t in change.get("lost", ())),
        )
    return ChangeLine(
        **common,
        field=str(change.get("field")),
        before=_value(change.get("before")),
        after=_value(change.get("after")),
        percent=change.get("percent"),
    )


def _value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))
    return str(value)


@dataclass(frozen=True, slots=True)
class ReportView:
    """`report --html`: each source's matrix, then the timeline of the same window."""

    generated_at: datetime
    days: int
    matrices: tuple[MatrixView, ...]
    timeline: TimelineView


REPORT_EVENT_LIMIT = MAX_LIMIT


def build_report(
    session: Session,
    store: SnapshotStore,
    config: Config | None,
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    source: str | None = None,
) -> ReportView | None:
    """The report of every source (or one); None when `source` is unknown."""
    names = source_names(session, config)
    if source is not None:
        if source not in names:
            return None
        names = (source,)
    matrices = tuple(
        build_matrix(
            session,
            store,
            name,
            now=now,
            days=days,
            tokens=[t.name for t in config.tokens_of(name)] if config else (),
        )
        for name in names
    )
    flt = TimelineFilter(source=source, limit=REPORT_EVENT_LIMIT, since=now - timedelta(days=days))
    return ReportView(
        generated_at=now,
        days=days,
        matrices=matrices,
        timeline=build_timeline(session, flt, now=now, config=config),
    )
