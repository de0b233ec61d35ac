"""Noise control and bookkeeping in the dispatcher: digests, quiet hours, disabled channels,
pacing, and the attempt log; against real receivers and a real database."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from sqlalchemy import select

from monitor.config import ChannelConfig
from monitor.core.clock import utcnow
from monitor.delivery import samples
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.outbox import Dispatcher, retry
from monitor.delivery.registry import build_channels
from monitor.delivery.routing import enqueue
from monitor.events import payload_errors
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from monitor.store.queries import attempts, disabled_channels
from monitor.store.schema import Delivery
from tests.support.clock import Clock

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


def put(db: Database, config, *events, at: datetime | None = None) -> None:
    with db.session() as session:
        for event in events:
            enqueue(session, config, event, at or utcnow())


def states(db: Database) -> list[str]:
    with db.reader() as session:
        return sorted(session.scalars(select(Delivery.state)))


def test_digest_batches_events_into_one_message(db, receiver) -> None:
    hook = replace(webhook_channel("hook", receiver.url), digest="daily@09:00")
    config = sim_config("http://unused/v1", {"team-a": "x", "team-b": "y"}, channels=[hook])
    clock = Clock(NOON)
    events = [samples.models_changed(), samples.token_failing(), samples.token_recovered()]
    put(db, config, *events, at=NOON)
    assert states(db) == ["held"] * 3
    dispatcher = Dispatcher(config, db, build_channels(config), clock=clock)
    assert dispatcher.run_once().sent == 0
    assert receiver.received == []

    clock.now = datetime(2026, 11, 27, 9, 0, 1, tzinfo=UTC)
    assert dispatcher.run_once().sent == 1
    (request,) = receiver.received
    digest = request.json()
    assert digest["type"] == "digest"
    assert [e["id"] for e in digest["events"]] == [e.id for e in events]
    assert (
        digest["summary"]
        == "digest of 3 events: 1 models.changed, 1 token.failing, 1 token.recovered"
    )
    assert payload_errors(digest) == []
    assert states(db) == ["batched", "batched", "batched", "sent"]
    assert dispatcher.run_once().sent == 0  # nothing sent twice


def test_quiet_hours_delay_delivery_until_the_window_ends(db, receiver) -> None:
    hook = replace(webhook_channel("hook", receiver.url), quiet_hours="22:00-07:00")
    config = sim_config("http://unused/v1", {"team-a": "x", "team-b": "y"}, channels=[hook])
    night = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    put(db, config, samples.models_changed(), at=night)
    clock = Clock(night + timedelta(hours=1))
    dispatcher = Dispatcher(config, db, build_channels(config), clock=clock)
    assert dispatcher.run_once().sent == 0
    clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert dispatcher.run_once().sent == 1
    assert len(receiver.received) == 1


def test_quiet_hours_also_hold_retries(db, receiver) -> None:
    hook = replace(webhook_channel("hook", receiver.url), quiet_hours="22:00-07:00")
    config = sim_config("http://unused/v1", {"team-a": "x", "team-b": "y"}, channels=[hook])
    evening = datetime(2026, 11, 26, 21, 59, 59, 950_000, tzinfo=UTC)  # the retry falls at 22:00
    put(db, config, samples.models_changed(), at=evening)
    receiver.respond_with(503)
    dispatcher = Dispatcher(config, db, build_channels(config), clock=Clock(evening))
    assert dispatcher.run_once().retried == 1
    with db.reader() as session:
        due = session.scalar(select(Delivery.next_attempt_at))
    assert due == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def test_gone_destination_disables_the_channel_until_retried(db, receiver) -> None:
    config = sim_config(
        "http://unused/v1",
        {"team-a": "x", "team-b": "y"},
        channels=[webhook_channel("hook", receiver.url)],
    )
    dispatcher = Dispatcher(config, db, build_channels(config))
    put(db, config, samples.models_changed())
    receiver.respond_with(410, body="gone")
    assert dispatcher.run_once().dead == 1
    with db.reader() as session:
        (state,) = disabled_channels(session)
    assert state.channel == "hook" and "410" in state.reason

    put(db, config, samples.token_failing())
    assert dispatcher.run_once().dead == 1
    assert len(receiver.received) == 1  # the disabled channel was not called again

    assert retry(db, dead=True) == 2
    assert dispatcher.run_once().sent == 2
    with db.reader() as session:
        assert disabled_channels(session) == []


def test_every_attempt_is_recorded(db, receiver) -> None:
    config = sim_config(
        "http://unused/v1",
        {"team-a": "x", "team-b": "y"},
        channels=[webhook_channel("hook", receiver.url)],
    )
    clock = Clock(NOON)
    dispatcher = Dispatcher(config, db, build_channels(config), clock=clock)
    put(db, config, samples.models_changed(), at=NOON)
    receiver.respond_with(500, body="boom")
    dispatcher.run_once()
    clock.now += timedelta(minutes=1)
    dispatcher.run_once()
    with db.reader() as session:
        delivery_id = session.scalar(select(Delivery.id))
        tries = attempts(session, delivery_id)
    assert [(a.attempt, a.ok, a.status) for a in tries] == [(1, False, 500), (2, True, 200)]
    assert "boom" in (tries[0].error or "")


class _Recorder(Channel):
    MIN_INTERVAL: ClassVar[float] = 0.25

    def __init__(self, config: ChannelConfig) -> None:
        super().__init__(config)
        self.times: list[float] = []

    def render(self, payload: object) -> object:
        return payload

    def send(self, message: Message) -> SendResult:
        self.times.append(time.monotonic())
        return SendResult.success()


def test_channels_are_paced_to_their_rate_limit(db) -> None:
    config = sim_config(
        "http://unused/v1",
        {"team-a": "x", "team-b": "y"},
        channels=[ChannelConfig("slow", "stdout")],
    )
    recorder = _Recorder(config.channels[0])
    put(db, config, samples.models_changed(), samples.token_failing(), samples.token_recovered())
    assert Dispatcher(config, db, {"slow": recorder}).run_once().sent == 3
    gaps = [b - a for a, b in zip(recorder.times, recorder.times[1:], strict=False)]
    assert all(gap >= 0.24 for gap in gaps), gaps
