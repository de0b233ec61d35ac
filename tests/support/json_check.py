"""Strict RFC 8259 parsing for tests: NaN and Infinity are refused, as a strict reader would."""

from __future__ import annotations

import json


def strict(text: str | bytes) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)
