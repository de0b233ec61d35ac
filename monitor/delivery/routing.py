"""Routing, the first stage of delivery: which channels see an event, and what each sees.

Runs inside the transaction that stored the check (the point of an outbox): the event
and one delivery per channel are written with it, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.core.ids import new_id
from monitor.core.records import Event
from monitor.events.grouping import filter_for_channel
from monitor.events.silences import apply_silences
from monitor.store import outbox as store
from monitor.store.silences import silences as active_silences


def dumps(payload: Mapping[str, Any]) -> str:
    """A payload as the outbox stores it: compact JSON, UTF-8 as is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def enqueue(session: Session, config: Config, event: Event, now: datetime) -> int:
    """Store an event and one delivery per channel that should see it; returns how many.

    A channel sees the event's changes for its tokens and models only (`filter_for_channel`);
    a channel with a digest schedule or quiet hours gets its delivery held until its window
    opens (`ChannelConfig.window`). What an active silence covers is stored, marked with
    its id, and delivered to no one (`monitor.events.silences`).
    """
    silenced = apply_silences(event, active_silences(session, active_at=now), now)
    recorded = event.to_payload()
    for index, silence_id in silenced.marks.items():
        if index < 0:
            recorded["silenced"] = silence_id
        else:
            recorded["changes"][index]["silenced"] = silence_id
    store.add_event(
        session, event.id, str(event.type), event.source.name, now, event.summary, dumps(recorded)
    )
    heard = silenced.delivered
    if heard is None:
        return 0
    rows = []
    for channel in config.channels:
        if str(event.type) not in channel.events:
            continue
        tokens = {t.name for t in config.tokens if t.channels is None or channel.name in t.channels}
        narrowed = filter_for_channel(
            heard, tokens, channel.models, channel.exclude_models, channel.changes
        )
        if narrowed is None:
            continue
        state, due = channel.window.first(now)
        rows.append(
            {
                "id": new_id("msg"),
                "event_id": event.id,
                "channel": channel.name,
                "state": state,
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": now,
                # None: the event's own payload, as stored (it must then be unmarked).
                "payload": None
                if narrowed == event and not silenced.marks
                else dumps(narrowed.to_payload()),
            }
        )
    store.add_deliveries(session, rows)
    return len(rows)
