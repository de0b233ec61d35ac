"""The outbox against real receivers: retries, dead letters, replay, and channel independence."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from monitor.core.clock import utcnow
from monitor.delivery.outbox import Dispatcher, retry
from monitor.delivery.registry import build_channels
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from monitor.store.schema import Delivery

TOKEN = "sk-outbox-test-token-000000000000"
MODELS = [make_model(f"m-{i}") for i in range(5)]


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


def one_event(gateway: GatewaySimulator, db: Database, *channels) -> tuple[Checker, Dispatcher]:
    """Baseline, then add a model: exactly one models.changed event, one delivery per channel."""
    gateway.set_group("default", MODELS)
    gateway.add_token(TOKEN, group="default")
    config = sim_config(gateway.base_url, {"t": TOKEN}, channels=channels)
    checker = Checker(config, db)
    checker.check()
    gateway.set_group("default", [*MODELS, make_model("new-model")])
    checker.check()
    return checker, Dispatcher(config, db, build_channels(config))


def deliveries(db: Database) -> list[Delivery]:
    with db.reader() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.channel)))


def make_due(db: Database) -> None:
    with db.session() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def test_server_errors_are_retried_with_the_same_webhook_id(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    receiver.respond_with(500, times=3)
    for _ in range(3):
        assert dispatcher.run_once().retried == 1
        make_due(db)
    assert dispatcher.run_once().sent == 1
    assert dispatcher.run_once().sent == 0
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1
    (row,) = deliveries(db)
    assert (row.state, row.attempts) == ("sent", 4)


def test_client_error_goes_dead_at_once_and_retry_replays_it(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    receiver.respond_with(400, body=b"bad payload")
    assert dispatcher.run_once().dead == 1
    (row,) = deliveries(db)
    assert (
        row.state == "dead" and row.last_status == 400 and "bad payload" in (row.last_error or "")
    )
    assert retry(db, dead=True) == 1
    assert dispatcher.run_once().sent == 1
    assert [r.headers["webhook-id"] for r in receiver.received] == [row.id, row.id]


def test_retries_end_in_dead_after_the_schedule(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    receiver.respond_with(503, times=100)
    attempts = len(dispatcher.config.monitor.retry_schedule) + 1
    for _ in range(attempts):
        dispatcher.run_once()
        make_due(db)
    (row,) = deliveries(db)
    assert (row.state, row.attempts) == ("dead", attempts)


def test_retry_after_is_honored(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    receiver.respond_with(429, headers={"Retry-After": "120"})
    before = utcnow()
    dispatcher.run_once()
    (row,) = deliveries(db)
    assert row.next_attempt_at >= before + timedelta(seconds=119)


def test_a_dead_channel_does_not_delay_another(gateway, db) -> None:
    with WebhookReceiver() as slow, WebhookReceiver() as fine:
        slow.respond_with(503, delay=1.5)
        _, dispatcher = one_event(
            gateway, db, webhook_channel("slow", slow.url), webhook_channel("fine", fine.url)
        )
        started = time.monotonic()
        report = dispatcher.run_once()
        assert fine.wait_for(1, timeout=1.0)
        assert time.monotonic() - started < 3
        assert (report.sent, report.retried) == (1, 1)


def test_unreachable_receiver_is_retried(gateway, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", "http://127.0.0.1:9/hook"))
    assert dispatcher.run_once().retried == 1
    (row,) = deliveries(db)
    assert row.state == "pending" and row.last_error == "connection failed"


def test_a_claimed_delivery_is_not_sent_twice(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    claimed = dispatcher._claim(10)
    assert len(claimed) == 1
    assert dispatcher._claim(10) == []  # leased to the first claimer


def test_retry_after_2s_is_waited_for_in_real_time(gateway, receiver, db) -> None:
    _, dispatcher = one_event(gateway, db, webhook_channel("hook", receiver.url))
    receiver.respond_with(429, headers={"Retry-After": "2"})
    assert dispatcher.run_once().retried == 1
    first = time.monotonic()
    deadline = first + 10
    while dispatcher.run_once().sent == 0:
        assert time.monotonic() < deadline, "never retried"
        time.sleep(0.05)
    assert time.monotonic() - first >= 2.0
    first_request, second_request = receiver.received
    assert first_request.headers["webhook-id"] == second_request.headers["webhook-id"]
    gap = int(second_request.headers["webhook-timestamp"]) - int(
        first_request.headers["webhook-timestamp"]
    )
    assert gap >= 2
