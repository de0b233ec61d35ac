"""From snapshots to events: the flap guard, token health, and grouping per source cycle.

Everything in this package is pure (no I/O, no clock, no randomness beyond an injected id
factory) so the rules of SPEC section 5 can be tested exhaustively. The one exception is
`load_event_schema`, which reads a file shipped inside the package.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

EVENT_SCHEMA_RESOURCE = "schemas/event-v1.json"


@cache
def _event_schema_text() -> str:
    return files("monitor").joinpath(EVENT_SCHEMA_RESOURCE).read_text(encoding="utf-8")


def load_event_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the version-1 event payload (SPEC section 6).

    A fresh dict on every call, so a caller that mutates it cannot corrupt another's.
    """
    schema: dict[str, Any] = json.loads(_event_schema_text())
    return schema


__all__ = ["EVENT_SCHEMA_RESOURCE", "load_event_schema"]
