"""Check cycles against a real simulated gateway and a real database: what gets stored,
what gets reported, and what never does."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from monitor.core.clock import utcnow
from monitor.core.records import ChangeType, ErrorKind, EventType, FetchOk, ModelRecord
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from monitor.store.schema import Check, Delivery, EventRow, Snapshot, TokenState
from monitor.store.snapshots import SnapshotStore

MODELS = [make_model(f"model-{i}", ("openai",)) for i in range(10)]
A, B = "sk-token-a-0000000000000000", "sk-token-b-1111111111111111"


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


def checker_for(gateway: GatewaySimulator, db: Database, **settings: object) -> Checker:
    channels = settings.pop("channels", ())
    config = sim_config(gateway.base_url, {"a": A, "b": B}, channels=channels, **settings)  # type: ignore[arg-type]
    return Checker(config, db)


def count(db: Database, model: type) -> int:
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def changes_of(report, token: str = "a") -> list[tuple[str, str]]:
    found = next(t for t in report.tokens if t.token == token)
    return [(str(c.type), c.model) for c in found.changes]


@pytest.fixture
def setup(gateway: GatewaySimulator):
    gateway.set_group("default", MODELS)
    gateway.add_token(A, group="default")
    gateway.add_token(B, group="default")
    return gateway


def test_first_check_is_a_silent_baseline(setup, db) -> None:
    (report,) = checker_for(setup, db).check()
    assert all(t.baseline and not t.changes for t in report.tokens)
    assert report.events == ()
    assert count(db, EventRow) == 0
    with db.reader() as session:
        assert session.scalars(select(Check.baseline)).all() == [True, True]


def test_unchanged_list_in_new_order_is_stored_once_and_reports_nothing(setup, db) -> None:
    checker = checker_for(setup, db)
    for _ in range(5):
        (report,) = checker.check()
        assert not report.changed
    assert count(db, Snapshot) == 1  # both tokens, five shuffled responses: one snapshot
    assert count(db, Check) == 10
    assert count(db, EventRow) == 0


def test_added_model_is_reported_at_once_and_grouped_across_tokens(setup, db) -> None:
    checker = checker_for(setup, db, channels=[webhook_channel("hook", "http://127.0.0.1:9/")])
    checker.check()
    setup.set_group("default", [*MODELS, make_model("gpt-5", ("openai", "openai-response"))])
    (report,) = checker.check()
    assert changes_of(report, "a") == [("added", "gpt-5")]
    (event,) = report.events
    assert event.type is EventType.MODELS_CHANGED
    (change,) = event.changes
    assert change.tokens == ("a", "b")
    assert change.record is not None
    assert change.record.endpoint_types == {"openai", "openai-response"}
    assert event.summary == "1 added on gw"
    with db.reader() as session:
        (row,) = session.scalars(select(EventRow)).all()
        assert json.loads(row.payload)["changes"][0]["model"] == "gpt-5"
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_removal_waits_for_the_flap_guard(setup, db) -> None:
    checker = checker_for(setup, db, confirm_checks=2)
    checker.check()
    setup.set_group("default", MODELS[1:])
    (first,) = checker.check()
    assert not first.changed
    (second,) = checker.check()
    assert changes_of(second) == [("removed", "model-0")]
    (third,) = checker.check()
    assert not third.changed


def test_a_model_missing_every_other_check_is_never_reported(setup, db) -> None:
    checker = checker_for(setup, db, confirm_checks=2)
    checker.check()
    for i in range(6):
        setup.set_group("default", MODELS if i % 2 else MODELS[1:])
        (report,) = checker.check()
        assert not report.changed, i


def test_endpoint_types_empty_for_one_check_is_not_reported(setup, db) -> None:
    checker = checker_for(setup, db)
    checker.check()
    blank = [{**m, "supported_endpoint_types": []} if m["id"] == "model-3" else m for m in MODELS]
    setup.set_group("default", blank)
    (report,) = checker.check()
    assert not report.changed
    setup.set_group("default", MODELS)
    (report,) = checker.check()
    assert not report.changed


def test_endpoint_type_change_is_reported_once_confirmed(setup, db) -> None:
    checker = checker_for(setup, db)
    checker.check()
    moved = [
        {**m, "supported_endpoint_types": ["openai", "openai-response"]}
        if m["id"] == "model-3"
        else m
        for m in MODELS
    ]
    setup.set_group("default", moved)
    checker.check()
    (report,) = checker.check()
    found = next(t for t in report.tokens if t.token == "a")
    (change,) = found.changes
    assert change.type is ChangeType.ENDPOINT_TYPES_CHANGED
    assert change.gained == ("openai-response",)
    assert change.lost == ()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.panic(), ErrorKind.SERVER),
        (Fault.html(502), ErrorKind.SERVER),
        (Fault.success_false("database error"), ErrorKind.INVALID_RESPONSE),
        (Fault.html(200), ErrorKind.INVALID_RESPONSE),
        (Fault.data(None), ErrorKind.INVALID_RESPONSE),
    ],
    ids=["panic", "html-502", "success-false", "html-200", "data-null"],
)
def test_a_failed_check_never_becomes_a_snapshot_or_a_removal(setup, db, fault, kind) -> None:
    checker = checker_for(setup, db, confirm_checks=1, failure_threshold=99)
    checker.check()
    setup.inject(fault, times=10)
    for _ in range(3):
        (report,) = checker.check()
        assert [t.outcome for t in report.tokens] == [str(kind), str(kind)]
        assert not report.changed
        assert report.events == ()
    assert count(db, Snapshot) == 1
    setup.clear_faults()
    (report,) = checker.check()
    assert not report.changed


def test_empty_list_is_fetched_again_before_it_is_believed(setup, db) -> None:
    checker = checker_for(setup, db, confirm_checks=1)
    checker.check()
    before = setup.requests_count(A)
    setup.inject(Fault.data([]), token=A, times=1)
    (report,) = checker.check()
    assert not report.changed  # the second fetch saw the full list
    assert setup.requests_count(A) - before == 2


def test_expired_token_fails_once_then_recovers_once(setup, db) -> None:
    checker = checker_for(setup, db, failure_threshold=3)
    checker.check()
    setup.expire_token(B)
    kinds = []
    for _ in range(3):
        (report,) = checker.check()
        kinds += [e.type for e in report.events]
    assert kinds == [EventType.TOKEN_FAILING]
    setup.renew_token(B)
    (report,) = checker.check()
    assert [e.type for e in report.events] == [EventType.TOKEN_RECOVERED]
    assert report.events[0].tokens == ("b",)
    (report,) = checker.check()
    assert report.events == ()


def test_transient_failures_wait_for_the_threshold(setup, db) -> None:
    checker = checker_for(setup, db, failure_threshold=3)
    checker.check()
    setup.inject(Fault.panic(), token=A, times=3)
    events = []
    for _ in range(3):
        (report,) = checker.check()
        events.append([e.type for e in report.events])
    assert events == [[], [], [EventType.TOKEN_FAILING]]
    with db.reader() as session:
        state = session.get(TokenState, "a")
        assert state is not None and state.failing and state.consecutive_failures == 3


def test_dry_run_stores_nothing(setup, db) -> None:
    checker = checker_for(setup, db)
    checker.check()
    setup.set_group("default", MODELS[:5])
    checks_before = count(db, Check)
    for _ in range(3):
        (report,) = checker.check(dry_run=True)
    assert count(db, Check) == checks_before
    assert count(db, Snapshot) == 1
    assert not report.changed  # each dry run sees the same stored state: guard streak 1


def test_changes_replay_to_the_gateways_truth(setup, db) -> None:
    """Whatever sequence of lists the gateway serves, the reported changes add up to it."""
    checker = checker_for(setup, db, confirm_checks=2)
    checker.check()
    truth = {m["id"]: m for m in MODELS}
    known = dict.fromkeys(truth)
    steps = [
        lambda t: t.pop("model-1"),
        lambda t: t.update({"new-1": make_model("new-1", ("openai",))}),
        lambda t: t.update({"model-2": make_model("model-2", ("openai", "anthropic"))}),
        lambda t: t.pop("model-5"),
    ]
    for mutate in steps:
        mutate(truth)
        setup.set_group("default", list(truth.values()))
        for _ in range(2):
            (report,) = checker.check()
            for change in next(t for t in report.tokens if t.token == "a").changes:
                if change.type is ChangeType.ADDED:
                    known[change.model] = None
                elif change.type is ChangeType.REMOVED:
                    del known[change.model]
    assert set(known) == set(truth)


def test_a_list_changed_in_place_is_hashed_again(db) -> None:
    # The store remembers recent lists by the identity of their records; a caller's
    # dict changed after a put must not be taken for the list it was.
    store = SnapshotStore()
    models = {"a": ModelRecord("a")}
    with db.session() as session:
        first = store.put(session, models, utcnow())
        models["b"] = ModelRecord("b")
        second = store.put(session, models, utcnow())
        assert second != first
        assert set(store.load(session, second)) == {"a", "b"}
        assert store.put(session, {"a": models["a"]}, utcnow()) == first


def test_tokens_that_see_one_list_hold_one_mapping(setup, db) -> None:
    checker = checker_for(setup, db)
    source = checker.config.sources[0]
    first, second = checker.fetch_all(source, checker.config.tokens_of(source.name))
    assert isinstance(first, FetchOk) and isinstance(second, FetchOk)
    assert first.models is second.models  # one dict for the group, not one per token
    assert sorted(first.models) == sorted(m["id"] for m in MODELS)


def test_tokens_in_and_out_of_a_streak_get_their_own_outcome(gateway, db) -> None:
    # a and b move together (the guard's outcome is computed once for both); c was
    # already missing model-0 for a check, so the same list completes c's streak only.
    c = "sk-token-c-2222222222222222"
    gateway.set_group("ab", MODELS)
    gateway.set_group("c", MODELS)
    for value, group in ((A, "ab"), (B, "ab"), (c, "c")):
        gateway.add_token(value, group=group)
    checker = Checker(sim_config(gateway.base_url, {"a": A, "b": B, "c": c}), db)
    checker.check()
    gateway.set_group("c", MODELS[1:])
    (report,) = checker.check()
    assert not report.changed  # c: held by the flap guard
    gateway.set_group("ab", MODELS[1:])
    (report,) = checker.check()
    assert [changes_of(report, t) for t in "abc"] == [[], [], [("removed", "model-0")]]
    (report,) = checker.check()
    expected = [("removed", "model-0")]
    assert [changes_of(report, t) for t in "abc"] == [expected, expected, []]


def test_a_token_whose_answer_cannot_be_recorded_fails_alone(setup, db) -> None:
    """Defence in depth behind the fetch path: if recording one token's answer raises, the
    transaction is redone with that token failed, and the others are recorded as usual."""
    from monitor.sources.fetch import fetch_models

    def fetch(source, token, settings):
        result = fetch_models(source, token, settings)
        if token.name == "a" and isinstance(result, FetchOk):
            # A value no strict JSON can hold, past every check of the fetch path.
            odd = ModelRecord("odd", frozenset({"openai"}), (("owned_by", float("nan")),))
            return FetchOk({**result.models, "odd": odd}, flavor="new-api")
        return result

    config = sim_config(setup.base_url, {"a": A, "b": B})
    (report,) = Checker(config, db, fetch=fetch).check()
    outcomes = {t.token: t for t in report.tokens}
    assert outcomes["b"].outcome == "ok" and outcomes["b"].baseline
    assert outcomes["a"].outcome == "invalid_response"
    assert "ValueError while recording it" in outcomes["a"].error.message
    with db.reader() as session:
        rows = dict(session.execute(select(Check.token, Check.outcome)).all())
        states = {s.token: s.last_outcome for s in session.scalars(select(TokenState))}
    assert rows == {"a": "invalid_response", "b": "ok"}
    assert states == {"a": "invalid_response", "b": "ok"}
