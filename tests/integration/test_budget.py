"""Tokens' budgets against the simulator's real usage route, with an injected clock:
warnings once per crossing, the silent baseline, renewals and top-ups, the rate limit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.core.records import EventType
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.budgets import budget_records
from monitor.store.database import Database, open_database
from monitor.store.schema import BudgetCheck
from tests.support.canary import CANARY
from tests.support.clock import Clock

A, B = "sk-budget-token-a-0000000000", "sk-budget-token-b-1111111111"
DAY = timedelta(days=1)
QUOTA = 500_000  # new-api quota units per dollar


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock.whole_second()


@pytest.fixture
def gw(gateway: GatewaySimulator, clock: Clock) -> GatewaySimulator:
    gateway.usage_clock = lambda: clock.now.timestamp()
    gateway.set_group("default", [make_model("gpt-4o")])
    gateway.add_token(A)
    gateway.add_token(B)
    return gateway


def checker(gw: GatewaySimulator, db: Database, clock: Clock, **settings: object) -> Checker:
    settings = {"budget_interval": 0.0, **settings}
    return Checker(sim_config(gw.base_url, {"a": A, "b": B}, **settings), db, clock=clock)


def budget_events(check: Checker, kind: EventType | None = None) -> list[tuple[str, str, str]]:
    """One check; its budget events as (type, token, threshold), each a valid payload."""
    found = []
    for report in check.check():
        for event in report.events:
            if event.budget is None:
                continue
            payload = event.to_payload()
            assert payload_errors(payload) == [], payload
            if kind is None or event.type is kind:
                found.append((str(event.type), event.tokens[0], payload["budget"]["threshold"]))
    return found


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def test_expiring_warns_once_per_threshold_and_again_after_a_renewal(gw, db, clock) -> None:
    expiry = clock.now + 10 * DAY
    gw.set_usage(A, expires_at=unix(expiry))
    check = checker(gw, db, clock)
    assert budget_events(check) == []  # the baseline
    said = []
    for _ in range(30):  # 10 days in 8-hour steps
        clock.advance(timedelta(hours=8))
        said += budget_events(check)
    assert said == [("token.expiring", "a", "7d"), ("token.expiring", "a", "1d")]

    # Renewed for 30 days: quiet until the next approach, which warns again.
    renewed = clock.now + 30 * DAY
    gw.set_usage(A, expires_at=unix(renewed))
    said = []
    for _ in range(3 * 30):
        clock.advance(timedelta(hours=8))
        said += budget_events(check)
    assert said[:2] == [("token.expiring", "a", "7d"), ("token.expiring", "a", "1d")]


def test_quota_low_once_and_again_after_a_top_up(gw, db, clock) -> None:
    gw.set_usage(B, granted=100 * QUOTA, used=50 * QUOTA)
    check = checker(gw, db, clock)
    assert budget_events(check) == []
    gw.set_usage(B, used=95 * QUOTA)  # $5 of $100 left: below 10%
    assert budget_events(check) == [("token.quota_low", "b", "10%")]
    gw.set_usage(B, used=99 * QUOTA)
    assert budget_events(check) == []  # still low: said once
    gw.set_usage(B, granted=300 * QUOTA)  # topped up: $201 left
    assert budget_events(check) == []
    gw.set_usage(B, used=290 * QUOTA)  # $10 of $300: below 10% again
    assert budget_events(check) == [("token.quota_low", "b", "10%")]
    with db.reader() as session:
        record = budget_records(session)["b"]
    assert record.budget is not None and str(record.budget.remaining) == "10"


def test_unlimited_tokens_and_tokens_without_expiry_never_warn(gw, db, clock) -> None:
    gw.set_usage(A, unlimited=True, granted=0, used=10 * QUOTA, expires_at=0)
    check = checker(gw, db, clock)
    for _ in range(5):
        clock.advance(DAY)
        assert budget_events(check) == []


def test_the_event_payload_says_what_was_read(gw, db, clock) -> None:
    gw.set_usage(A, granted=50 * QUOTA, used=40 * QUOTA, expires_at=0)
    check = checker(gw, db, clock)
    check.check()
    gw.set_usage(A, used=int(46 * QUOTA))
    (report,) = check.check()
    (event,) = [e for e in report.events if e.type is EventType.TOKEN_QUOTA_LOW]
    payload = event.to_payload()
    assert payload["budget"] == {
        "unit": "USD",
        "unlimited": False,
        "granted": "50",
        "used": "46",
        "remaining": "4",
        "threshold": "10%",
    }
    assert event.summary == "a has $4.00 of $50.00 left (8%) on gw"


def test_reads_follow_budget_interval(gw, db, clock) -> None:
    check = checker(gw, db, clock, budget_interval=6 * 3600.0)
    check.check()
    usage = usage_reads(db)
    for _ in range(5):
        clock.advance(timedelta(hours=1))
        check.check()
    assert usage_reads(db) == usage == 2  # both tokens once
    clock.advance(timedelta(hours=1, seconds=1))
    check.check()
    assert usage_reads(db) == 4


def test_a_hundred_tokens_never_exceed_the_usage_routes_limit(gateway, db, clock) -> None:
    gateway.usage_clock = lambda: clock.now.timestamp()
    gateway.set_group("default", [make_model("gpt-4o")])
    tokens = {f"t{i:03d}": f"sk-many-{i:03d}-{'x' * 20}" for i in range(100)}
    for value in tokens.values():
        gateway.add_token(value)
    check = Checker(
        sim_config(gateway.base_url, tokens, budget_interval=6 * 3600.0), db, clock=clock
    )
    for _ in range(4 * 6):  # four hours of checks every 10 minutes
        check.check()
        clock.advance(timedelta(minutes=10))
    assert gateway.max_usage_in_window(1200.0) <= 18
    with db.reader() as session:
        outcomes = list(session.scalars(select(BudgetCheck.outcome)))
        read = budget_records(session)
    assert "rate_limited" not in outcomes
    assert len(read) == 100  # every token was read within four hours
    assert all(r.ok_at is not None for r in read.values())


def test_a_429_from_the_usage_route_stops_the_pass_and_waits(gw, db, clock) -> None:
    gw.set_usage_limit(1, 1200.0)
    check = checker(gw, db, clock)
    check.check()
    with db.reader() as session:
        outcomes = sorted(session.scalars(select(BudgetCheck.outcome)))
    assert outcomes == ["ok", "rate_limited"]
    before = gw.max_usage_in_window(1200.0)
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        check.check()  # within the wait: nothing asked
    assert usage_reads(db) == 2 and gw.max_usage_in_window(1200.0) == before
    clock.advance(timedelta(minutes=6))
    check.check()
    assert usage_reads(db) > 2


def test_the_token_never_reaches_the_database(gateway, db, clock) -> None:
    gateway.usage_clock = lambda: clock.now.timestamp()
    gateway.set_group("default", [make_model("gpt-4o")])
    gateway.add_token(CANARY)
    gateway.set_usage(CANARY, granted=QUOTA, used=QUOTA - 1, expires_at=unix(clock.now + DAY))
    check = Checker(
        sim_config(gateway.base_url, {"c": CANARY}, budget_interval=0.0), db, clock=clock
    )
    check.check()
    clock.advance(DAY / 2)
    check.check()
    with db.reader() as session:
        rows = session.execute(select(BudgetCheck)).scalars().all()
        assert rows
        assert all(CANARY not in repr(vars(row)) for row in rows)


def usage_reads(db: Database) -> int:
    with db.reader() as session:
        return len(session.scalars(select(BudgetCheck.id)).all())


def test_the_status_page_shows_each_tokens_budget(gw, db, clock) -> None:
    from monitor.web.status import build_status

    gw.set_usage(A, granted=50 * QUOTA, used=10 * QUOTA, expires_at=unix(clock.now + 9 * DAY))
    gw.set_usage(B, unlimited=True, expires_at=0)
    check = checker(gw, db, clock)
    check.check()
    with db.reader() as session:
        view = build_status(session, check.config, clock.now)
    rows = {row.name: row.budget for source in view.sources for row in source.tokens}
    expiry = (clock.now + 9 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows == {
        "a": f"$40.00 of $50.00 left, expires {expiry}",
        "b": "unlimited, no expiry",
    }


def test_a_stalling_budget_route_costs_one_read_not_one_per_token(db, clock) -> None:
    from monitor.config import MonitorSettings, Secret, SourceConfig, TokenConfig
    from monitor.config.model import Config
    from tests.support.misbehaving import answer, misbehaving, stall

    body = b'{"data":[{"id":"m","owned_by":"x","supported_endpoint_types":[]}],"success":true}'
    routes = {"/v1/models": answer(200, body), "/api/usage/token": stall()}
    with misbehaving(routes) as server:
        source = SourceConfig("gw", f"{server.url}/v1", "new-api", timeout=1.0)
        tokens = tuple(TokenConfig(f"t{i}", "gw", Secret(f"sk-stall-{i:020d}")) for i in range(5))
        config = Config(None, MonitorSettings(timeout=1.0), (source,), tokens, ())
        started = time.monotonic()
        (report,) = Checker(config, db, clock=clock).check()
        elapsed = time.monotonic() - started
        assert [t.outcome for t in report.tokens] == ["ok"] * 5
        assert server.hits.count("/api/usage/token/") == 1
        assert elapsed < 4
    with db.reader() as session:
        assert list(session.scalars(select(BudgetCheck.outcome))) == ["timeout"]


def test_one_api_budgets_come_from_the_billing_routes(gateway, db, clock) -> None:
    from dataclasses import replace

    gateway.flavor = "one-api"
    gateway.set_group("default", [make_model("gpt-4o")])
    gateway.add_token(A)
    gateway.set_usage(A, granted=20 * QUOTA, used=5 * QUOTA, expires_at=unix(clock.now + 30 * DAY))
    config = sim_config(gateway.base_url, {"a": A}, budget_interval=0.0)
    config = replace(config, sources=(replace(config.sources[0], flavor="one-api"),))
    Checker(config, db, clock=clock).check()
    with db.reader() as session:
        budget = budget_records(session)["a"].budget
    assert budget is not None
    assert (str(budget.granted), str(budget.used), str(budget.remaining)) == ("20", "5", "15")
    assert budget.expires_at == datetime.fromtimestamp(unix(clock.now + 30 * DAY), UTC)
    paths = {r.path for r in gateway.requests}
    assert {"/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"} <= paths


def test_an_auto_source_reads_budgets_once_it_is_detected_as_new_api(gw, db, clock) -> None:
    from dataclasses import replace

    config = sim_config(gw.base_url, {"a": A}, budget_interval=0.0)
    config = replace(config, sources=(replace(config.sources[0], flavor="auto"),))
    Checker(config, db, clock=clock).check()
    with db.reader() as session:
        assert budget_records(session)["a"].ok_at is not None
