"""How long a server asked us to wait, from its response headers.

Shared by fetching (a rate-limited gateway) and delivery (a rate-limited receiver).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from monitor.core.clock import utcnow

MAX_WAIT = 86400.0  # a day: anything longer is taken as a day


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    headers = {name.lower(): value for name, value in headers.items()}
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return min(ms / 1000, MAX_WAIT)
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates parse as naive; they mean UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or utcnow())).total_seconds()
        return min(max(0.0, seconds), MAX_WAIT)
    return min(seconds, MAX_WAIT) if math.isfinite(seconds) and seconds >= 0 else None
