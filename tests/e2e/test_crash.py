"""Kill the daemon with SIGKILL while deliveries are in flight and pending; after a restart
every event reaches every channel, and any duplicate carries the same webhook-id."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.store.database import open_database
from monitor.store.schema import Delivery, EventRow
from tests.support.daemon import start_daemon, stop_daemon, wait_until

pytestmark = pytest.mark.slow

TOKEN = "sk-crash-test-token-0123456789"
MODELS = [make_model(f"m-{i}") for i in range(5)]


def test_sigkill_mid_delivery_loses_nothing(tmp_path: Path, db_url: str) -> None:
    with (
        GatewaySimulator(seed=9) as gateway,
        WebhookReceiver() as slow,
        WebhookReceiver() as fast,
    ):
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN, group="default")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[monitor]
database = "{db_url}"
interval = "1s"
jitter = "0s"
delivery_lease = "1s"
retry_schedule = ["0.5s", "1s", "2s"]

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

[[tokens]]
name = "t"
source = "gw"
token_env = "CRASH_TOKEN"

[[channels]]
name = "slow"
type = "webhook"
url = "{slow.url}"

[[channels]]
name = "fast"
type = "webhook"
url = "{fast.url}"
"""
        )
        slow.respond_with(200, delay=5.0, times=None)  # every answer hangs: deliveries in flight
        first = start_daemon(config, {"CRASH_TOKEN": TOKEN}, stdout=subprocess.DEVNULL)
        try:
            wait_until(lambda: gateway.requests_count(TOKEN) >= 2, 20, "the baseline")
            gateway.set_group("default", [*MODELS, make_model("new-1")])
            wait_until(lambda: len(slow.received) >= 1, 20, "a delivery in flight")
            gateway.set_group("default", [*MODELS, make_model("new-1"), make_model("new-2")])
            wait_until(lambda: len(fast.received) >= 2, 20, "the second event")
        finally:
            killed = stop_daemon(first, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL

        db = open_database(db_url)
        with db.reader() as session:
            events = set(session.scalars(select(EventRow.id).where(EventRow.type != "digest")))
        assert len(events) >= 2

        slow.clear_responses()
        second = start_daemon(config, {"CRASH_TOKEN": TOKEN}, stdout=subprocess.DEVNULL)

        def all_sent() -> bool:
            with db.reader() as session:
                rows = session.execute(select(Delivery.event_id, Delivery.channel, Delivery.state))
                sent = {(e, c) for e, c, state in rows if state == "sent"}
            return sent >= {(e, c) for e in events for c in ("slow", "fast")}

        try:
            wait_until(all_sent, 30, "every event sent on every channel")
        finally:
            stopped = stop_daemon(second, timeout=15)
        assert stopped.returncode == 0, stopped.err
        db.close()

        for receiver in (slow, fast):
            assert events <= {r.json()["id"] for r in receiver.received}
            ids_by_event: dict[str, set[str]] = defaultdict(set)
            for request in receiver.received:
                ids_by_event[json.loads(request.body)["id"]].add(request.headers["webhook-id"])
            assert all(len(ids) == 1 for ids in ids_by_event.values()), ids_by_event
        # The in-flight delivery was sent again after the crash: a duplicate, same webhook-id.
        assert len(slow.received) > len({r.json()["id"] for r in slow.received})
