"""Batching: a digest channel's held deliveries become one digest when its slot comes.

The digest is an event of its own (type "digest", carrying the batched payloads), so it
gets a stable id and the same retries as any delivery; the batched deliveries are marked
with it and never sent on their own.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from monitor.core.clock import rfc3339
from monitor.core.ids import new_id
from monitor.core.records import DeliveryState
from monitor.delivery.routing import dumps
from monitor.store import outbox as store
from monitor.store.database import Database

log = logging.getLogger("monitor.delivery")


def seal_digests(db: Database, now: datetime, channels: Collection[str] | None = None) -> int:
    """Seal every due batch (of the named channels, or all); returns how many digests."""
    with db.session() as session:
        batches: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for delivery_id, channel, payload in store.held_and_due(session, now, channels):
            batches[channel].append((delivery_id, json.loads(payload)))
        for channel, items in batches.items():
            digest = digest_payload([payload for _, payload in items], now)
            store.add_event(
                session, digest["id"], "digest", "", now, digest["summary"], dumps(digest)
            )
            row = {
                "id": new_id("msg"),
                "event_id": digest["id"],
                "channel": channel,
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            store.add_deliveries(session, [row])
            store.mark_batched(session, [delivery_id for delivery_id, _ in items], digest["id"])
            log.info("digest %s for %s: %d event(s)", digest["id"], channel, len(items))
    return len(batches)


def digest_payload(payloads: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """One message carrying several events (payload version 1, type "digest"; docs/payload.md)."""
    kinds: dict[str, int] = defaultdict(int)
    for payload in payloads:
        kinds[payload["type"]] += 1
    parts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    noun = "event" if len(payloads) == 1 else "events"
    return {
        "version": "1",
        "id": new_id("evt"),
        "type": "digest",
        "occurred_at": rfc3339(now),
        "summary": f"digest of {len(payloads)} {noun}: {parts}",
        "events": payloads,
    }
