"""Prices against the simulator's real /api/pricing, through the checker: reported once,
exactly, in USD per 1M tokens at each token's group ratio; never for a new order or a page
that was hidden for a while."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from monitor.core.records import ChangeType, EventType
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import Database, open_database
from monitor.store.prices import price_states
from tests.support.clock import Clock

A, B = "sk-prices-token-a-0000000000", "sk-prices-token-b-1111111111"
MODELS = [make_model(m) for m in ("gpt-4o", "gpt-4o-mini", "per-call")]


def pricing(gpt4o: str = "1.25", mini: str = "0.075", call: str = "0.04") -> list[dict]:
    return [
        {"model_name": "gpt-4o", "model_ratio": gpt4o, "completion_ratio": 4},
        {"model_name": "gpt-4o-mini", "model_ratio": mini, "completion_ratio": 4},
        {"model_name": "per-call", "quota_type": 1, "model_price": call},
    ]


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def gw(gateway: GatewaySimulator) -> GatewaySimulator:
    gateway.set_group("default", MODELS)
    gateway.add_token(A)
    gateway.add_token(B)
    gateway.set_pricing(pricing(), {"default": 1, "vip": "1.5"})
    return gateway


def checker(gw: GatewaySimulator, db: Database, clock: Clock, **settings: object) -> Checker:
    config = sim_config(gw.base_url, {"a": A, "b": B}, prices_interval=0.0, **settings)
    vip = replace(config.tokens[1], group="vip")
    return Checker(replace(config, tokens=(config.tokens[0], vip)), db, clock=clock)


def price_changes(check: Checker, clock: Clock) -> list[dict]:
    """One check a minute later; the price changes it reported, as payloads (validated)."""
    clock.advance(timedelta(minutes=1))
    found = []
    for report in check.check():
        for event in report.events:
            payload = event.to_payload()
            assert payload_errors(payload) == [], payload
            if event.type is EventType.MODELS_CHANGED:
                found += [
                    c
                    for c in payload["changes"]
                    if c["type"] in (ChangeType.PRICE_CHANGED, ChangeType.GROUP_RATIO_CHANGED)
                ]
    return found


def test_a_price_change_is_reported_once_exactly_at_each_groups_ratio(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock)
    assert price_changes(check, clock) == []  # the baseline
    gw.set_pricing(pricing(gpt4o="2.5"), {"default": 1, "vip": "1.5"})
    assert price_changes(check, clock) == []  # seen once: the flap guard waits
    changes = sorted(price_changes(check, clock), key=lambda c: str(c["group"]))
    unit = "USD per 1M tokens (request: USD per request)"
    assert changes == [
        {
            "type": "price_changed",
            "model": "gpt-4o",
            "tokens": ["a"],
            "group": None,
            "before": {"input": "2.5", "output": "10"},
            "after": {"input": "5", "output": "20"},
            "unit": unit,
        },
        {
            "type": "price_changed",
            "model": "gpt-4o",
            "tokens": ["b"],
            "group": "vip",
            "before": {"input": "3.75", "output": "15"},
            "after": {"input": "7.5", "output": "30"},
            "unit": unit,
        },
    ]
    for _ in range(3):
        assert price_changes(check, clock) == []  # said once


def test_a_group_ratio_change_is_one_change_for_that_groups_tokens(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    price_changes(check, clock)
    gw.set_pricing(pricing(), {"default": 1, "vip": "2"})
    assert price_changes(check, clock) == [
        {
            "type": "group_ratio_changed",
            "tokens": ["b"],
            "group": "vip",
            "before": "1.5",
            "after": "2",
        }
    ]


def test_no_report_for_a_new_order_or_a_page_hidden_and_back(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    price_changes(check, clock)
    for _ in range(5):  # the simulator shuffles data and groups on every request
        assert price_changes(check, clock) == []
    gw.hide_pricing(403)
    assert price_changes(check, clock) == []
    with db.reader() as session:
        state = price_states(session)["gw"]
    assert state.outcome == "hidden" and "HTTP 403" in (state.message or "")
    gw.hide_pricing(401)
    assert price_changes(check, clock) == []
    gw.hide_pricing(None)
    assert price_changes(check, clock) == []
    with db.reader() as session:
        assert price_states(session)["gw"].outcome == "ok"


def test_a_price_that_flips_back_before_confirmation_is_never_reported(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock)
    price_changes(check, clock)
    gw.set_pricing(pricing(mini="0.1"), {"default": 1, "vip": "1.5"})
    assert price_changes(check, clock) == []
    gw.set_pricing(pricing(), {"default": 1, "vip": "1.5"})
    assert price_changes(check, clock) == []
    assert price_changes(check, clock) == []


def test_a_threshold_holds_small_moves_until_they_add_up(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    source = replace(check.config.sources[0], thresholds=(("price", 0.05),))
    check.config = replace(check.config, sources=(source,))
    check.prices.config = check.config
    price_changes(check, clock)
    gw.set_pricing(pricing(gpt4o="1.28"), {"default": 1, "vip": "1.5"})  # +2.4%
    assert price_changes(check, clock) == []
    gw.set_pricing(pricing(gpt4o="1.32"), {"default": 1, "vip": "1.5"})  # +5.6% in all
    changes = price_changes(check, clock)
    base = next(c for c in changes if c["group"] is None)
    assert (base["before"]["input"], base["after"]["input"]) == ("2.5", "2.64")


def test_the_per_call_price_and_the_no_price_sentinel(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    price_changes(check, clock)
    unpriced = pricing(call="0.05")
    unpriced[1] = {"model_name": "gpt-4o-mini", "model_ratio": "37.5", "completion_ratio": 1}
    gw.set_pricing(unpriced, {"default": 1, "vip": "1.5"})
    changes = {(c["model"], c["group"]): c for c in price_changes(check, clock)}
    assert changes[("per-call", None)]["after"] == {"request": "0.05"}
    assert changes[("per-call", "vip")]["after"] == {"request": "0.075"}
    assert changes[("gpt-4o-mini", None)]["after"] == {}  # no price set any more


def test_the_timeline_and_feed_say_a_price_change_in_words(gw, db) -> None:
    from monitor.web.timeline import _change_line

    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    price_changes(check, clock)
    gw.set_pricing(pricing(gpt4o="2.5"), {"default": 1, "vip": "1.5"})
    changes = price_changes(check, clock)
    lines = sorted(str(_change_line(c).said) for c in changes)
    assert lines == [
        "gpt-4o (group vip) input $3.75 -> $7.50, output $15.00 -> $30.00 per 1M tokens (+100%)",
        "gpt-4o input $2.50 -> $5.00, output $10.00 -> $20.00 per 1M tokens (+100%)",
    ]


def test_the_prices_page_lists_each_groups_prices_and_the_last_change(gw, db) -> None:
    from monitor.web.app import StatusPages
    from tests.support.html_check import validate_html

    hostile = "<b>x</b>&"
    clock = Clock()
    check = checker(gw, db, clock, confirm_checks=1)
    gw.set_pricing(
        [*pricing(), {"model_name": hostile, "model_ratio": "1"}], {"default": 1, "vip": "1.5"}
    )
    price_changes(check, clock)
    gw.set_pricing(
        [*pricing(gpt4o="2.5"), {"model_name": hostile, "model_ratio": "1"}],
        {"default": 1, "vip": "1.5"},
    )
    price_changes(check, clock)
    pages = StatusPages(db, check.config, clock=clock)
    page = pages.respond("/prices", "")  # one source: picked
    assert page.status == 200
    text = page.body.decode()
    validate_html(text)
    assert "base input (per 1M tokens)" in text and "vip output (per 1M tokens)" in text
    assert "$5.00" in text and "$7.50" in text and "$0.06" in text  # vip per call: 0.04 x 1.5
    assert hostile not in text and "&lt;b&gt;x&lt;/b&gt;&amp;" in text
    assert "last change: <time" in text
    missing = pages.respond("/prices", "source=nope")
    assert missing.status == 404
