"""From snapshots to events: the flap guard, token health, and grouping per source cycle.

Everything in this package is pure (no I/O, no clock, no randomness beyond an injected id
factory) so the rules of docs/detection.md can be tested exhaustively. The one exception is
the schema helpers at the bottom, which read files shipped inside the package.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

EVENT_SCHEMA_RESOURCE = "schemas/event-v1.json"
DIGEST_SCHEMA_RESOURCE = "schemas/digest-v1.json"


@cache
def _event_schema_text() -> str:
    return files("monitor").joinpath(EVENT_SCHEMA_RESOURCE).read_text(encoding="utf-8")


def load_event_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the version-1 event payload (docs/payload.md).

    A fresh dict on every call, so a caller that mutates it cannot corrupt another's.
    """
    schema: dict[str, Any] = json.loads(_event_schema_text())
    return schema


def load_digest_schema() -> dict[str, Any]:
    """The JSON Schema of a digest: several event payloads batched into one message."""
    schema: dict[str, Any] = json.loads(
        files("monitor").joinpath(DIGEST_SCHEMA_RESOURCE).read_text(encoding="utf-8")
    )
    return schema


def payload_errors(payload: Any) -> list[str]:
    """Every way `payload` breaks the published schemas (empty when it is valid).

    Needs the `jsonschema` package (a test dependency); the program itself never
    validates its own output at run time.
    """
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    event = load_event_schema()
    is_digest = isinstance(payload, dict) and payload.get("type") == "digest"
    schema = load_digest_schema() if is_digest else event
    registry = Registry().with_resource(event["$id"], Resource.from_contents(event))
    validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(payload)
    ]


__all__ = [
    "DIGEST_SCHEMA_RESOURCE",
    "EVENT_SCHEMA_RESOURCE",
    "load_digest_schema",
    "load_event_schema",
    "payload_errors",
]
