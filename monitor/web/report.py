"""`report --html`: every source's matrix and the timeline of the same window, one file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.store.snapshots import SnapshotStore
from monitor.web.matrix import DEFAULT_DAYS, MatrixView, build_matrix
from monitor.web.status import source_names
from monitor.web.timeline import MAX_LIMIT, TimelineFilter, TimelineView, build_timeline


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
