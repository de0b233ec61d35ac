"""Identifiers for events and deliveries.

Time-ordered (so `ORDER BY id` is roughly chronological and indexes stay compact)
and random enough that instances sharing a database never collide.
"""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """`evt_0193a1b2c3d4e5f6a7b8c9d0e1f2`: 48-bit milliseconds, then 64 random bits."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
