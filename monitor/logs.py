"""Logging setup: text for people, JSON lines for log shippers, secrets scrubbed in both.

Secrets should never reach a log call in the first place; the scrubber is the second
line of defense, replacing any configured secret value that slips into a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

_ROOT = "monitor"


class _Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern else text


class TextFormatter(logging.Formatter):
    def __init__(self, scrub: _Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: _Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._scrub(json.dumps(entry, ensure_ascii=False))


def setup(level: int = logging.INFO, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the `monitor` logger tree (and third-party warnings) on stderr."""
    scrub = _Scrubber(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(_ROOT).setLevel(level)
    if level <= logging.DEBUG:
        # urllib3 at debug logs request lines; URLs carry no tokens (they go in headers).
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
