"""The prices page: what a source's last reported price list holds, per group, and when
a price last changed (docs/prices.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.core.money import money
from monitor.core.prices import COMPONENTS, TOKEN_COMPONENTS, Price
from monitor.store.prices import last_price_change, load_price_list, price_states


@dataclass(frozen=True, slots=True)
class PriceRow:
    model: str
    cells: tuple[str, ...]  # one per (group, component) column; "" where none


@dataclass(frozen=True, slots=True)
class PricesView:
    source: str
    state: str | None  # "available", why not, or None: never read
    checked_at: datetime | None
    last_change: datetime | None  # the latest event with a price change
    columns: tuple[str, ...]  # "base input", "vip output", ...
    rows: tuple[PriceRow, ...]


def priced_sources(session: Session) -> list[str]:
    return sorted(price_states(session))


def build_prices(session: Session, config: Config | None, source: str) -> PricesView:
    state = price_states(session, [source]).get(source)
    if state is None:
        return PricesView(source, None, None, None, (), ())
    said = "available" if state.outcome == "ok" else (state.message or state.outcome)
    listed = load_price_list(session, state.confirmed_id) if state.confirmed_id else None
    if listed is None:
        return PricesView(source, said, state.checked_at, None, (), ())
    named = {t.group for t in (config.tokens_of(source) if config else ()) if t.group}
    groups: list[str | None] = [None, *sorted(g for g in named if listed.knows_group(g))]
    used = [c for c in COMPONENTS if any(getattr(p, c) is not None for p in listed.prices.values())]
    columns = tuple(f"{group or 'base'} {_label(c)}" for group in groups for c in used)
    rows = []
    for model in sorted(listed.prices):
        cells = []
        for group in groups:
            price = listed.effective(model, group) or Price.NONE
            for component in used:
                value = getattr(price, component)
                cells.append("" if value is None else money(value))
        rows.append(PriceRow(model, tuple(cells)))
    return PricesView(
        source, said, state.checked_at, last_price_change(session, source), columns, tuple(rows)
    )


def _label(component: str) -> str:
    unit = "per 1M tokens" if component in TOKEN_COMPONENTS else "per request"
    return f"{component.replace('_', ' ')} ({unit})"
