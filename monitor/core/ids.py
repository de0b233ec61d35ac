"""Identifiers for events and deliveries.

Time-ordered, and strictly increasing within one process, so `ORDER BY id` keeps the
events of one cycle in the order they were built (token.failing before models.changed,
say); random enough that instances sharing a database never collide.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, sequence within that millisecond)


def new_id(prefix: str) -> str:
    """`evt_0193a1b2c3d40000a7b8c9d0e1f2`: 48-bit ms, a 16-bit sequence, 48 random bits."""
    global _last
    with _lock:
        now = time.time_ns() // 1_000_000
        millis, sequence = _last
        _last = (now, 0) if now > millis else (millis, sequence + 1)
        millis, sequence = _last
    return f"{prefix}_{millis:012x}{sequence:04x}{secrets.token_hex(6)}"
