"""The price pass: after a source's models and budgets, read its price list when due.

new-api publishes every model's price (`GET /api/pricing`), and the LiteLLM proxy its
models' costs (`GET /model/info`, asked with the source's first token): both are read
into one unit (monitor.sources.pricing). The list is stored like a models list
(content-addressed, so an answer that differs only in order is the same list) and
reported with the same guarantees:

- the first list is the baseline, stored silently;
- a different list is reported once it was read `confirm_checks` times in a row (the flap
  guard): a price that flips back in between is never reported;
- a page that turns hidden (401/403) is "prices unavailable" in `status`, never a change,
  and the same list coming back is no change either;
- each token is told the prices it pays: its `group`'s ratio times the base price
  (`group = "..."` on the token; base prices without one). A ratio change is one
  `group_ratio_changed`, not a change of every model's price;
- `thresholds = { price = "5%" }` on the source holds smaller moves back; they add up
  against what was last reported, as field thresholds do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from monitor.config import Config, MonitorSettings, SourceConfig, TokenConfig
from monitor.core.clock import rfc3339
from monitor.core.ids import new_id
from monitor.core.prices import PriceList, diff_group_ratios, diff_prices, passes_threshold
from monitor.core.records import Change, ErrorKind, Event, FetchError, SourceRef
from monitor.delivery.routing import enqueue
from monitor.events.grouping import CheckOutcome, build_events
from monitor.events.thresholds import FieldPolicy
from monitor.sources.base import Flavor
from monitor.sources.pricing import read_prices
from monitor.sources.side_routes import PriceRoute
from monitor.store.database import Database
from monitor.store.prices import load_price_list, price_states, put_price_list, record_prices

log = logging.getLogger("monitor.prices")

Reader = Callable[[PriceRoute, SourceConfig, TokenConfig, MonitorSettings], PriceList | FetchError]
HIDDEN = "hidden"


class PricePass:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Callable[[], datetime],
        read: Reader = read_prices,
    ) -> None:
        self.config = config
        self.db = db
        self._clock = clock
        self._read = read

    def run(
        self, source: SourceConfig, tokens: Sequence[TokenConfig], flavor: type[Flavor] | None
    ) -> tuple[Event, ...]:
        """Read the source's prices if due, as `flavor` publishes them; returns the events
        enqueued."""
        route = flavor.price_route if flavor is not None else None
        if not tokens or route is None:
            return ()
        now = self._clock()
        with self.db.reader() as session:
            state = price_states(session, [source.name]).get(source.name)
        interval = timedelta(seconds=self.config.prices_interval(source))
        if state is not None and state.checked_at > now - interval:
            return ()
        # The first token, for a route that wants one (LiteLLM); prices are per model.
        result = self._read(route, source, tokens[0], self.config.monitor)
        read_at = self._clock()
        with self.db.session() as session:
            if isinstance(result, FetchError):
                hidden = result.kind in (ErrorKind.AUTH, ErrorKind.FORBIDDEN)
                outcome = HIDDEN if hidden else str(result.kind)
                message = (
                    f"prices unavailable: the pricing page answers HTTP {result.status}"
                    if hidden
                    else result.message
                )
                record_prices(session, source.name, read_at, outcome, message)
                log.info("source %s: %s", source.name, message)
                return ()
            seen = put_price_list(session, result, read_at)
            if state is None or state.confirmed_id is None:  # the baseline
                record_prices(session, source.name, read_at, "ok", confirmed_id=seen)
                return ()
            confirmed = state.confirmed_id
            if seen == confirmed:
                record_prices(session, source.name, read_at, "ok", confirmed_id=confirmed)
                return ()
            count = state.pending_count + 1 if seen == state.pending_id else 1
            if count < self.config.monitor.confirm_checks:
                record_prices(
                    session,
                    source.name,
                    read_at,
                    "ok",
                    confirmed_id=confirmed,
                    pending_id=seen,
                    pending_count=count,
                )
                return ()
            before = load_price_list(session, confirmed)
            outcomes, kept = self._changes(source, tokens, before, result)
            told = seen if kept is result else put_price_list(session, kept, read_at)
            record_prices(session, source.name, read_at, "ok", confirmed_id=told)
            ref = SourceRef(source.name, source.base_url)
            events = build_events(ref, outcomes, rfc3339(read_at), lambda: new_id("evt"))
            for event in events:
                enqueue(session, self.config, event, read_at)
        return tuple(events)

    def _changes(
        self,
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        before: PriceList,
        after: PriceList,
    ) -> tuple[list[CheckOutcome], PriceList]:
        """What each token is told, and the list that is then what people were told (a
        move held back by a threshold keeps its old price there, so moves add up)."""
        threshold = _price_threshold(source)
        moved: list[str] = []
        held: set[str] = set()
        for base in diff_prices(before, after, None):  # base prices decide what moved
            if threshold is not None and not passes_threshold(base, threshold):
                held.add(base.model)
            else:
                moved.append(base.model)
        ratios = {c.group: c for c in diff_group_ratios(before, after)}
        outcomes = []
        for token in tokens:
            group = token.group
            changes: list[Change] = []
            if group is not None and not (before.knows_group(group) and after.knows_group(group)):
                log.warning(
                    "source %s: the pricing page has no ratio for group %s (token %s)",
                    source.name,
                    group,
                    token.name,
                )
            else:
                changes += diff_prices(before, after, group, moved)
            if group in ratios:
                changes.append(ratios[group])
            outcomes.append(CheckOutcome(token.name, tuple(changes)))
        if not held:
            return outcomes, after
        prices = {m: before.prices[m] if m in held else p for m, p in after.prices.items()}
        return outcomes, PriceList(prices, after.group_ratios)


def _price_threshold(source: SourceConfig) -> Decimal | None:
    """The source's `thresholds` entry for prices (a glob matching "price"), in percent."""
    share = FieldPolicy(thresholds=source.thresholds).threshold("price")
    return None if share is None else Decimal(str(share)) * 100
