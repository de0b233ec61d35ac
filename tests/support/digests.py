"""Digest payloads of any size, as the dispatcher batches them: for the channels' renderers,
which must keep a digest of many events within every limit of the destination."""

from __future__ import annotations

from typing import Any

from monitor.delivery import samples


def digest(n: int, *, numbered: bool = True) -> dict[str, Any]:
    """A digest of n events; `numbered` puts each event's index in its summary."""
    events = []
    for i in range(n):
        event = samples.models_changed(n_added=1 + i % 7) if i % 3 else samples.token_failing()
        payload = event.to_payload()
        payload["id"] = f"evt_digest{i:04d}"
        if numbered:
            payload["summary"] = f"event {i}: {payload['summary']}"
        events.append(payload)
    return {
        "version": "1",
        "type": "digest",
        "id": "dig_0001",
        "occurred_at": "2026-11-26T10:05:00Z",
        "summary": f"{n} events on aiberm",
        "events": events,
    }
