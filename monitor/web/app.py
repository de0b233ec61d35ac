"""Routing listener requests to the pages: GET path and query in, a `Page` out.

The listener (monitor.runtime.listener) owns the socket, authentication and compression;
this module owns what the paths mean. Each request opens its own short read
transaction, so a page never holds the database while it is being sent and a slow
client never blocks a check cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from monitor.config import Config
from monitor.core.clock import utcnow
from monitor.store.database import Database
from monitor.store.queries import installation_id
from monitor.store.snapshots import SnapshotStore
from monitor.web import matrix, prices, status, timeline
from monitor.web.feed import CONTENT_TYPE as ATOM_TYPE
from monitor.web.feed import build_feed
from monitor.web.render import CSP, render

log = logging.getLogger("monitor.web")

HTML_TYPE = "text/html; charset=utf-8"
PATHS = ("/", "/matrix", "/prices", "/changes", "/changes.atom")
MAX_DAYS = 366

# Sent with every page: no framing, no sniffing, no referrer with filter values in it.
_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = _HEADERS


class BadRequest(ValueError):
    """A query parameter that cannot be used; the message says which and why."""


class StatusPages:
    """The pages of one database (and, when there is one, the config's sources)."""

    def __init__(
        self,
        db: Database,
        config: Config | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self._clock = clock
        # Small: a page reads one snapshot per token of one source.
        self.snapshots = snapshots or SnapshotStore(cache_size=64)
        self._installation_id: str | None = None
        self._routes: dict[str, Callable[[Mapping[str, str], datetime], Page]] = {
            "/": self._status,
            "/matrix": self._matrix,
            "/prices": self._prices,
            "/changes": self._changes,
            "/changes.atom": self._feed,
        }

    def handles(self, path: str) -> bool:
        return path in self._routes

    def respond(self, path: str, query: str) -> Page:
        """The page for a GET of `path?query` (`handles(path)` must be true)."""
        now = self._clock()
        try:
            params = _params(query)
            return self._routes[path](params, now)
        except BadRequest as exc:
            return _error(400, "Bad request", str(exc), now)
        except Exception:
            log.exception("status pages: answering %s failed", path)
            message = "Reading the database failed; the daemon's log says why."
            return _error(500, "Something went wrong", message, now)

    # -- the pages -------------------------------------------------------------------------

    def _status(self, params: Mapping[str, str], now: datetime) -> Page:
        with self.db.reader() as session:
            view = status.build_status(session, self.config, now)
        return _html(render("status.html.j2", view=view, now=now, nav="status"))

    def _matrix(self, params: Mapping[str, str], now: datetime) -> Page:
        days = _number(params, "days", matrix.DEFAULT_DAYS, 1, MAX_DAYS)
        with self.db.reader() as session:
            names = status.source_names(session, self.config)
            source = params.get("source") or (names[0] if len(names) == 1 else None)
            if source is None:
                return _html(render("sources.html.j2", sources=names, now=now, nav="matrix"))
            if source not in names:
                known = ", ".join(names) or "none yet"
                return _error(
                    404, "No such source", f"No source is named {source}. Known: {known}.", now
                )
            tokens = [t.name for t in self.config.tokens_of(source)] if self.config else ()
            view = matrix.build_matrix(
                session,
                self.snapshots,
                source,
                now=now,
                days=days,
                query=params.get("q", ""),
                tokens=tokens,
            )
        body = render(
            "matrix.html.j2", view=view, others=names, now=now, nav="matrix", filter_script=True
        )
        return _html(body)

    def _prices(self, params: Mapping[str, str], now: datetime) -> Page:
        with self.db.reader() as session:
            names = prices.priced_sources(session)
            source = params.get("source") or (names[0] if len(names) == 1 else None)
            if source is None:
                return _html(render("sources.html.j2", sources=names, now=now, nav="prices"))
            if source not in names:
                known = ", ".join(names) or "none yet"
                message = f"No prices are recorded for {source}. Sources with prices: {known}."
                return _error(404, "No such source", message, now)
            view = prices.build_prices(session, self.config, source)
        return _html(render("prices.html.j2", view=view, others=names, now=now, nav="prices"))

    def _timeline(self, params: Mapping[str, str], now: datetime) -> timeline.TimelineView:
        kind = params.get("type") or None
        if kind is not None and kind not in timeline.TYPE_FILTERS:
            raise BadRequest(f"type must be one of {', '.join(timeline.TYPE_FILTERS)}")
        flt = timeline.TimelineFilter(
            source=params.get("source") or None,
            token=params.get("token") or None,
            type=kind,
            limit=_number(params, "limit", timeline.DEFAULT_LIMIT, 1, timeline.MAX_LIMIT),
        )
        with self.db.reader() as session:
            return timeline.build_timeline(session, flt, now=now, config=self.config)

    def _changes(self, params: Mapping[str, str], now: datetime) -> Page:
        view = self._timeline(params, now)
        body = render(
            "changes.html.j2", view=view, now=now, nav="changes", max_limit=timeline.MAX_LIMIT
        )
        return _html(body)

    def _feed(self, params: Mapping[str, str], now: datetime) -> Page:
        view = self._timeline(params, now)
        body = build_feed(view, self._installation())
        return Page(200, body, ATOM_TYPE, (("X-Content-Type-Options", "nosniff"),))

    def _installation(self) -> str | None:
        """The database's UUID (the feed's id), read once: it never changes."""
        if self._installation_id is None:
            with self.db.reader() as session:
                self._installation_id = installation_id(session)
        return self._installation_id


def _params(query: str) -> dict[str, str]:
    """The first value of each parameter, stripped; `?a=&b` gives a="" and b=""."""
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except ValueError as exc:
        raise BadRequest(f"the query string cannot be read: {exc}") from None
    return {key: values[0].strip() for key, values in parsed.items()}


def _number(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _html(body: str, status: int = 200) -> Page:
    return Page(status, body.encode("utf-8"), HTML_TYPE)


def _error(status: int, title: str, message: str, now: datetime) -> Page:
    return _html(
        render("error.html.j2", title=title, message=message, now=now, nav="error"), status
    )
