"""The one place the monitor reads the wall clock, so tests can pass their own clock.

(The simulator in `monitor/sim`, a stand-in gateway, keeps time of its own.)
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """`2026-11-26T10:00:00Z`: the payload's time format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
