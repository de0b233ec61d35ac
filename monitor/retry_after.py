"""How long a server asked us to wait, from its response headers.

Shared by fetching (a rate-limited gateway) and delivery (a rate-limited receiver).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

MAX_WAIT = 86400.0  # a day; anything longer is treated as a day


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date).

    `headers` must be case-insensitive (requests' CaseInsensitiveDict is).
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return _clamp(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return _clamp(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return _clamp(when.timestamp() - (time.time() if now is None else now))


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_WAIT)
