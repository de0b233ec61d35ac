"""Detection beyond the flap guard: backing off a rate-limiting source, explaining a 401,
and holding a mass removal until a second check confirms it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.core.records import ChangeType, ErrorKind, EventType
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.sources.budget import describe_budget, usage_budget
from monitor.store.database import Database, open_database
from monitor.store.schema import Check
from tests.support.clock import Clock

A, B = "sk-guard-token-a-000000000000", "sk-guard-token-b-111111111111"
MODELS = [make_model(f"model-{i:02d}") for i in range(50)]


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def gw(gateway: GatewaySimulator) -> GatewaySimulator:
    gateway.set_group("default", MODELS)
    gateway.add_token(A, group="default")
    gateway.add_token(B, group="default")
    return gateway


def checker(gw: GatewaySimulator, db: Database, clock: Clock | None = None, **settings) -> Checker:
    config = sim_config(gw.base_url, {"a": A, "b": B}, **settings)
    return Checker(config, db, clock=clock or Clock())


def outcomes(db: Database) -> list[str]:
    with db.reader() as session:
        return list(session.scalars(select(Check.outcome).order_by(Check.id)))


# -- backing off a source that answers 429 -----------------------------------------------


def test_retry_after_skips_the_sources_polls_until_then(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock)
    check.check()
    gw.inject(Fault.rate_limited(retry_after=30), token=A)
    (report,) = check.check()
    assert [t.outcome for t in report.tokens] == ["rate_limited", "ok"]

    requests_before = gw.requests_count()
    limited_at = clock.now
    for seconds in (1, 10, 29):
        clock.now = limited_at + timedelta(seconds=seconds)
        (report,) = check.check()
        assert [t.outcome for t in report.tokens] == ["skipped", "skipped"]
        assert report.events == ()
        assert not report.failed
    assert gw.requests_count() == requests_before  # nothing was asked while waiting

    clock.now = limited_at + timedelta(seconds=31)
    (report,) = check.check()
    assert [t.outcome for t in report.tokens] == ["ok", "ok"]
    assert outcomes(db)[-8:] == ["skipped"] * 6 + ["ok", "ok"]


def test_a_bare_429_backs_off_for_a_minute_and_never_counts_as_failing(gw, db) -> None:
    clock = Clock()
    check = checker(gw, db, clock, failure_threshold=1)
    check.check()
    gw.inject(Fault.rate_limited(), token=A)
    (report,) = check.check()
    assert [e.type for e in report.events] == [EventType.TOKEN_FAILING]  # threshold 1
    clock.now += timedelta(seconds=59)
    (report,) = check.check()
    assert [t.outcome for t in report.tokens] == ["skipped", "skipped"]
    assert report.events == ()
    clock.now += timedelta(seconds=2)
    (report,) = check.check()
    assert [e.type for e in report.events] == [EventType.TOKEN_RECOVERED]


# -- explaining a 401 --------------------------------------------------------------------


def usage_calls(gw: GatewaySimulator) -> int:
    return sum(1 for r in gw.requests if r.path.startswith("/api/usage/token"))


def test_an_expired_token_says_so_once_per_failing_spell(gw, db) -> None:
    check = checker(gw, db)
    check.check()
    budgets = usage_calls(gw)  # the first check reads both tokens' budgets; then 6 h pass
    gw.expire_token(B)
    (report,) = check.check()
    (event,) = report.events
    assert event.type is EventType.TOKEN_FAILING
    assert event.error is not None
    assert event.error.kind is ErrorKind.AUTH
    assert event.error.detail is not None
    assert event.error.detail.startswith("the token expired at ")
    assert "the token expired at" in event.summary
    assert payload_errors(event.to_payload()) == []
    for _ in range(3):
        check.check()
    assert usage_calls(gw) - budgets == 1  # the usage route is rate limited: once per spell

    gw.renew_token(B)
    check.check()
    gw.exhaust_token(B)
    (report,) = check.check()
    (event,) = report.events
    assert event.error is not None and event.error.detail == "the token has no quota left"
    assert usage_calls(gw) - budgets == 2


def test_explaining_can_be_turned_off(gw, db) -> None:
    from dataclasses import replace

    check = checker(gw, db)
    config = check.config
    check.config = replace(config, sources=(replace(config.sources[0], explain_auth=False),))
    check.check()
    budgets = usage_calls(gw)
    gw.expire_token(B)
    (report,) = check.check()
    assert report.events[0].error is not None and report.events[0].error.detail is None
    assert usage_calls(gw) == budgets


def test_describe_budget() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    past = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())

    def said(data: dict[str, object]) -> str | None:
        return describe_budget(usage_budget({"data": data}), now)

    assert said({"expires_at": past}) == "the token expired at 2026-11-20T00:00:00Z"
    assert said({"expires_at": -1, "total_available": 0}) == "the token has no quota left"
    assert said({"expires_at": 0, "total_available": 0, "unlimited_quota": True}) is None
    assert said({"expires_at": 0, "total_available": 10}) is None


# -- a mass removal --------------------------------------------------------------------


@pytest.mark.parametrize("confirm_checks", [1, 2])
def test_a_mass_removal_is_held_then_sent_as_one_plain_event(gw, db, confirm_checks) -> None:
    check = checker(gw, db, confirm_checks=confirm_checks)
    check.check()
    gw.set_models(A, MODELS[:5])  # team a really loses 90% of its models
    (first,) = check.check()
    assert not first.changed, "held for confirmation, even with confirm_checks=1"
    (second,) = check.check()
    (event,) = second.events
    removed = [c for c in event.changes if c.type is ChangeType.REMOVED]
    assert len(removed) == 45
    assert all(c.tokens == ("a",) for c in removed)
    assert (
        event.notice
        == "a lost 45 of its 50 models (90%) at once, confirmed by 2 consecutive checks"
    )
    assert event.summary == f"45 removed on gw; {event.notice}"
    assert payload_errors(event.to_payload()) == []
    (third,) = check.check()
    assert not third.changed


def test_a_small_removal_with_confirm_checks_1_is_immediate(gw, db) -> None:
    check = checker(gw, db, confirm_checks=1)
    check.check()
    gw.set_models(A, MODELS[1:])
    (report,) = check.check()
    (event,) = report.events
    assert [c.model for c in event.changes] == ["model-00"]
    assert event.notice is None
