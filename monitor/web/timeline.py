"""The timeline (`/changes`, `/changes.atom`): stored events with their changes, filtered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.core.prices import describe_payload
from monitor.core.records import CallError, Change, ChangeType
from monitor.events.grouping import summarize
from monitor.store import queries
from monitor.web.status import error_kind, error_text, ordered, source_names

DEFAULT_LIMIT = 200  # events on /changes and in the feed unless `limit` says otherwise
MAX_LIMIT = 1000
MAX_CHANGES_SHOWN = 200  # per event; a gateway adding 800 models at once is still one event
TITLE_NAMES = 3  # models (or tokens) a title names before "(+N more)", shared between parts
TITLE_NAME_LENGTH = 40  # a longer model id is cut in a title (the content has it whole)
CHANGE_TYPES: tuple[str, ...] = tuple(str(t) for t in ChangeType)
TOKEN_EVENT_TYPES: tuple[str, ...] = ("token.failing", "token.recovered")
# What `type=` accepts on /changes: a change type, or an event type without changes.
TYPE_FILTERS: tuple[str, ...] = (*CHANGE_TYPES, *TOKEN_EVENT_TYPES)

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
    said: str | None = None  # prices: the whole change in words
    call_error: str | None = None  # unavailable: what the call answered, in one line
    silenced: str | None = None  # the silence that kept it from every channel


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
    title: str = ""  # short, naming models or the error kind: the feed's entry title


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
    statuses = queries.status_records(session)
    configured = [t.name for t in config.tokens] if config else []
    return TimelineView(
        filter=flt,
        entries=tuple(entries),
        capped=capped,
        generated_at=now,
        sources=source_names(session, config),
        tokens=tuple(ordered(sorted(configured), (s.token for s in statuses))),
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
        # A group ratio change has no model.
        recount = (Change(ChangeType(c["type"]), str(c.get("model", ""))) for c in changes)
        summary = summarize(recount, source)
    shown = changes[:MAX_CHANGES_SHOWN]
    kind = str(payload["type"])
    return TimelineEntry(
        id=str(payload["id"]),
        type=kind,
        occurred_at=datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")),
        source=source,
        tokens=tokens,
        summary=summary,
        changes=tuple(_change_line(c) for c in shown),
        more=len(changes) - len(shown),
        error=error_text(payload.get("error")),
        notice=payload.get("notice"),
        title=entry_title(kind, source, tokens, changes, payload.get("error"), summary),
    )


def entry_title(
    kind: str,
    source: str,
    tokens: Sequence[str],
    changes: Sequence[Mapping[str, Any]],
    error: Mapping[str, Any] | None,
    summary: str,
) -> str:
    """A title a feed reader can show in a list: what happened, to which models.

    "gw: added gpt-5, claude-4 (+3 more)", "gw/team-a: added x; removed y",
    "gw: unavailable gpt-4o; available again o3", "gw/team-a failing: auth (HTTP 401)",
    "gw/team-a recovered". The error message (with request ids and the like) and every
    change stay in the entry's content. A model that stopped answering is named as such,
    not as "changed": it is the news a reader of the list needs first.
    """
    if kind == "token.failing":
        return f"{_who(source, tokens)} failing: {error_kind(error) or 'error'}"
    if kind == "token.recovered":
        return f"{_who(source, tokens)} recovered"
    if kind != "models.changed" or not changes:
        return summary
    seen = {t for c in changes for t in c.get("tokens", ())}
    where = f"{source}/{seen.pop()}" if len(seen) == 1 else source
    groups: dict[str, list[str]] = {verb: [] for verb in _TITLE_VERBS.values()}
    groups["changed"] = []
    for change in changes:
        verb = _TITLE_VERBS.get(str(change.get("type")), "changed")
        models = groups[verb]
        if change.get("model") not in models:
            models.append(str(change.get("model")))
    parts = [(verb, models) for verb, models in groups.items() if models]
    # Names shared out between the parts, at least one each: a title stays one short line.
    each = max(1, TITLE_NAMES // len(parts))
    said = "; ".join(f"{verb} {_names(models, each)}" for verb, models in parts)
    return f"{where}: {said}"


# How a title says each kind of change; every other kind is "changed".
_TITLE_VERBS = {
    "added": "added",
    "removed": "removed",
    "unavailable": "unavailable",
    "available": "available again",
}


def _who(source: str, tokens: Sequence[str]) -> str:
    return f"{source}/{_names(tokens, TITLE_NAMES)}" if tokens else source


def _names(names: Sequence[str], limit: int) -> str:
    shown = [_cut(name) for name in names[:limit]]
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" (+{rest} more)" if rest else "")


def _cut(name: str) -> str:
    return name if len(name) <= TITLE_NAME_LENGTH else name[: TITLE_NAME_LENGTH - 1] + "\u2026"


class _Common(TypedDict):
    """The fields every `ChangeLine` has."""

    type: str
    model: str
    tokens: tuple[str, ...]
    silenced: str | None


def _change_line(change: Mapping[str, Any]) -> ChangeLine:
    kind = str(change.get("type"))
    common: _Common = {
        "type": kind,
        "model": str(change.get("model")),
        "tokens": tuple(change["tokens"]),
        "silenced": change.get("silenced"),
    }
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
    if kind in ("price_changed", "group_ratio_changed"):
        return ChangeLine(**common, said=describe_payload(change))
    if kind == "unavailable":
        error = change.get("error")
        said = CallError.from_json(error).text() if isinstance(error, Mapping) else None
        return ChangeLine(**common, call_error=said)
    if kind == "available":
        return ChangeLine(**common)
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
