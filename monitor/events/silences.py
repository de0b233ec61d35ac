"""Silences, as in Alertmanager: who asked to hear nothing about what, until when.

A silence matches by source, token, model glob and change type (each empty: any); it is
active from `starts_at` until `ends_at`. A change is silenced for a token when an active
silence matches them both: the change then goes to the tokens nobody silenced, or, when
none is left, to nobody, and it is kept in the history marked with the silence's id. A
token event (failing, recovered, expiring, quota low) is silenced the same way, per token,
by a silence on its event type or on any type. Pure: the caller hands in the clock's time.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from monitor.core.records import Change, Event, EventType
from monitor.events.grouping import summarize


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    starts_at: datetime
    ends_at: datetime
    source: str | None = None
    token: str | None = None
    model: str | None = None  # a glob on model ids (*, ?, [abc])
    kind: str | None = None  # a change type ("removed") or a token event type ("token.failing")
    comment: str = ""
    author: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, source: str, token: str, kind: str, model: str | None) -> bool:
        if self.source is not None and self.source != source:
            return False
        if self.token is not None and self.token != token:
            return False
        if self.kind is not None and self.kind != kind:
            return False
        if self.model is not None:
            return model is not None and fnmatch.fnmatchcase(model, self.model)
        return True


@dataclass(frozen=True, slots=True)
class Silenced:
    """An event as delivered (None: nothing left to deliver), and what was silenced: the
    index of each silenced change in the event's changes, or -1 for the event itself
    (a token event whose every token is silenced), with the silence's id."""

    delivered: Event | None
    marks: dict[int, str]


def apply_silences(event: Event, silences: Sequence[Silence], now: datetime) -> Silenced:
    active = [s for s in silences if s.active(now)]
    if not active or event.type is EventType.TEST:
        return Silenced(event, {})
    source = event.source.name

    def silence_for(token: str, kind: str, model: str | None) -> str | None:
        return next((s.id for s in active if s.matches(source, token, kind, model)), None)

    if event.type is not EventType.MODELS_CHANGED:
        heard = tuple(t for t in event.tokens if silence_for(t, str(event.type), None) is None)
        if heard == event.tokens:
            return Silenced(event, {})
        if not heard:
            quiet = silence_for(event.tokens[0], str(event.type), None)
            return Silenced(None, {-1: quiet or ""})
        return Silenced(replace(event, tokens=heard), {})

    kept: list[Change] = []
    marks: dict[int, str] = {}
    narrowed = False  # some change lost a token to a silence
    for index, change in enumerate(event.changes):
        model = change.model or None
        if not change.tokens:
            kept.append(change)
            continue
        by = {t: silence_for(t, str(change.type), model) for t in change.tokens}
        heard = tuple(t for t in change.tokens if by[t] is None)
        if not heard:
            marks[index] = next(q for q in by.values() if q is not None)
            continue
        if heard != change.tokens:
            narrowed = True
            change = replace(change, tokens=heard)
        kept.append(change)
    if not marks and not narrowed:
        return Silenced(event, {})
    if not kept:
        return Silenced(None, marks)
    tokens = tuple(sorted({t for c in kept for t in c.tokens}))
    summary = summarize(kept, source)
    return Silenced(replace(event, changes=tuple(kept), tokens=tokens, summary=summary), marks)
