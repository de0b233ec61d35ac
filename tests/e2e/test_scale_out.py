"""Several daemons, one database: every scheduled poll of every token runs exactly once.

Each scheduled cycle claims (token, slot) rows with INSERT ... ON CONFLICT DO NOTHING
before fetching (`Checker._claim`); only the instance whose row went in polls that token.
Manual `check` runs pass no slot and claim nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.config import MonitorSettings
from monitor.runtime.cycle import Checker
from monitor.runtime.daemon import poll_slot
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.sim.config import sim_config
from monitor.sim.gateway import fingerprint
from monitor.store.database import Database, open_database
from monitor.store.queries import prune
from monitor.store.schema import Delivery, EventRow, PollSlot
from tests.support.daemon import start_daemon, stop_daemon, wait_until

MODELS = [make_model(f"model-{i}", ("openai",)) for i in range(5)]
A, B = "sk-scale-a-0000000000000000", "sk-scale-b-1111111111111111"


def slot_rows(db: Database) -> list[tuple[str, str, str]]:
    with db.reader() as session:
        return [
            tuple(row)
            for row in session.execute(select(PollSlot.token, PollSlot.slot, PollSlot.instance))
        ]


# -- fast: the claim itself ----------------------------------------------------------------


@pytest.fixture
def gw():
    with GatewaySimulator(seed=3) as sim:
        sim.set_group("default", MODELS)
        sim.add_token(A, group="default")
        sim.add_token(B, group="default")
        yield sim


def test_two_checkers_claiming_one_slot_poll_once(gw: GatewaySimulator, db_url: str) -> None:
    config = sim_config(gw.base_url, {"a": A, "b": B})
    first_db, second_db = open_database(db_url), open_database(db_url)  # two "processes"
    try:
        first, second = Checker(config, first_db), Checker(config, second_db)
        (source,) = config.sources
        polled = first.check_source(source, slot="i60:1")
        assert {t.token for t in polled.tokens} == {"a", "b"}
        again = second.check_source(source, slot="i60:1")
        assert again.tokens == () and again.events == ()
        assert gw.polls(A) == gw.polls(B) == 1
        # The next slot goes to whoever claims it first.
        assert {t.token for t in second.check_source(source, slot="i60:2").tokens} == {"a", "b"}
        assert first.check_source(source, slot="i60:2").tokens == ()
        assert gw.polls(A) == gw.polls(B) == 2
        rows = slot_rows(first_db)
        assert sorted((t, s) for t, s, _ in rows) == [
            ("a", "i60:1"),
            ("a", "i60:2"),
            ("b", "i60:1"),
            ("b", "i60:2"),
        ]
    finally:
        first_db.close()
        second_db.close()


def test_manual_checks_claim_nothing(gw: GatewaySimulator, db_url: str) -> None:
    config = sim_config(gw.base_url, {"a": A, "b": B})
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        checker.check()
        checker.check()
        assert gw.polls(A) == 2
        assert slot_rows(db) == []
        # A token claimed by a daemon for its slot does not block a manual check either.
        (source,) = config.sources
        checker.check_source(source, slot="i60:7")
        checker.check(["a"])
        assert gw.polls(A) == 4
    finally:
        db.close()


def test_partly_claimed_slot_polls_the_rest(gw: GatewaySimulator, db_url: str) -> None:
    config = sim_config(gw.base_url, {"a": A, "b": B})
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        (source,) = config.sources
        (token_a, _) = config.tokens
        checker.check_source(source, [token_a], slot="i60:3")
        report = checker.check_source(source, slot="i60:3")
        assert [t.token for t in report.tokens] == ["b"]
        assert gw.polls(A) == gw.polls(B) == 1
    finally:
        db.close()


def test_prune_drops_slot_claims_older_than_a_day(gw: GatewaySimulator, db_url: str) -> None:
    now = datetime.now(UTC)
    config = sim_config(gw.base_url, {"a": A})
    db = open_database(db_url)
    try:
        (source,) = config.sources
        old = Checker(config, db, clock=lambda: now - timedelta(days=2))
        old.check_source(source, slot="i60:1")
        Checker(config, db).check_source(source, slot="i60:2")
        with db.session() as session:
            report = prune(session, now - timedelta(days=365))
        assert report.slots == 1
        assert [s for _, s, _ in slot_rows(db)] == ["i60:2"]
    finally:
        db.close()


def test_poll_slot_names() -> None:
    interval = MonitorSettings(interval=60.0, jitter=20.0)
    fire = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert poll_slot(interval, fire) == poll_slot(interval, fire + timedelta(seconds=19))
    assert poll_slot(interval, fire) != poll_slot(interval, fire + timedelta(seconds=60))
    cron = MonitorSettings(cron="*/5 * * * *", jitter=30.0)
    at = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    names = {poll_slot(cron, at + timedelta(seconds=s)) for s in (0, 0.4, 12, 29.9)}
    assert names == {"c:2026-01-01T12:05:00Z"}
    assert poll_slot(cron, at + timedelta(minutes=5)) == "c:2026-01-01T12:10:00Z"


# -- slow: two daemons against one PostgreSQL schema ----------------------------------------

TOKENS = {f"t{i:02d}": f"sk-scale-{i:02d}-{secrets.token_hex(8)}" for i in range(20)}


@pytest.mark.slow
def test_two_daemons_poll_each_slot_once_and_survive_a_death(tmp_path: Path, db_url: str) -> None:
    """Two `model-monitor run` processes share one database: a PostgreSQL schema, or a
    SQLite file on this host."""
    env = {**os.environ, **{f"SCALE_{name.upper()}": value for name, value in TOKENS.items()}}
    token_blocks = "\n".join(
        f'[[tokens]]\nname = "{name}"\nsource = "gw"\ntoken_env = "SCALE_{name.upper()}"\n'
        for name in TOKENS
    )
    with GatewaySimulator(seed=11) as gateway, WebhookReceiver() as hook:
        gateway.set_group("default", MODELS)
        for value in TOKENS.values():
            gateway.add_token(value, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{db_url}"
interval = "1s"
jitter = "0.3s"
delivery_lease = "2s"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

{token_blocks}
[[channels]]
name = "hook"
type = "webhook"
url = "{hook.url}"
"""
        )

        def start() -> subprocess.Popen[str]:
            return start_daemon(config, env, stdout=subprocess.DEVNULL)

        def requests() -> Counter[str]:
            return Counter(r.token for r in gateway.requests if r.path.endswith("/models"))

        fps = {fingerprint(value): name for name, value in TOKENS.items()}
        daemons = [start(), start()]
        db = open_database(db_url, migrate=False)
        try:
            wait_until(lambda: min(requests()[fp] for fp in fps) >= 2, 15, "two cycles")
            gateway.set_group("default", [*MODELS, make_model("fresh")])
            wait_until(lambda: len(hook.received) >= 1, 10, "the change delivered")
            wait_until(lambda: min(requests()[fp] for fp in fps) >= 5, 10, "five cycles")

            def all_sent() -> bool:
                with db.reader() as session:
                    states = list(session.scalars(select(Delivery.state)))
                return bool(states) and all(state == "sent" for state in states)

            wait_until(all_sent, 10, "every delivery sent")

            def instances() -> set[str]:
                with db.reader() as session:
                    return set(session.scalars(select(PollSlot.instance).distinct()))

            # Whoever fires first (jitter) claims a slot's tokens: over a few slots both
            # daemons win some. Five slots alone leave a 2 x 2^-5 chance of one winner.
            wait_until(lambda: len(instances()) == 2, 15, "both daemons to claim polls")

            # One daemon dies; the other keeps every token checked.
            victim, survivor = daemons
            stop_daemon(victim, signal.SIGKILL)
            before = requests()
            wait_until(
                lambda: all(requests()[fp] >= before[fp] + 3 for fp in fps),
                10,
                "three more cycles from the survivor",
            )
            assert survivor.poll() is None
            stopped = stop_daemon(survivor, timeout=15)  # waits for a running check to finish
            assert stopped.returncode == 0, stopped.err

            # Every claimed slot was polled once, and no slot twice: per token, requests
            # at the simulator == slots claimed. SIGKILL may have cut one claimed poll
            # before its request went out (a lost slot, not a duplicate).
            polled = requests()
            with db.reader() as session:
                rows = session.execute(
                    select(
                        PollSlot.token, func.count(), func.count(PollSlot.slot.distinct())
                    ).group_by(PollSlot.token)
                ).all()
            slots = {token: (n, distinct) for token, n, distinct in rows}
            assert set(slots) == set(TOKENS)
            lost = 0
            for fp, name in fps.items():
                n, distinct = slots[name]
                assert n == distinct
                assert polled[fp] <= n, f"{name}: {polled[fp]} requests for {n} slots"
                assert n - polled[fp] <= 1, f"{name}: {polled[fp]} requests for {n} slots"
                lost += n - polled[fp]
            assert lost <= len(TOKENS)

            # Every event delivered exactly once.
            with db.reader() as session:
                events = set(session.scalars(select(EventRow.id)))
                deliveries = session.scalar(select(func.count()).select_from(Delivery))
            assert events
            received = hook.received
            event_ids = [json.loads(r.body)["id"] for r in received]
            assert sorted(event_ids) == sorted(events), "each event once, no duplicates"
            webhook_ids: dict[str, set[str]] = defaultdict(set)
            for r in received:
                webhook_ids[json.loads(r.body)["id"]].add(r.headers["webhook-id"])
            assert len({r.headers["webhook-id"] for r in received}) == deliveries
            assert all(len(ids) == 1 for ids in webhook_ids.values())
        finally:
            for daemon in daemons:
                if daemon.poll() is None:
                    daemon.kill()
                    daemon.communicate(timeout=10)
            db.close()
