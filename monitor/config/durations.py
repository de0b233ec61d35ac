"""Parsers for the human-friendly values in the config: durations, sizes, crontab lines.

They live apart from the loader so the command line (`--since 7d`, `--older-than 90d`) can
reuse exactly the same grammar. Each parser raises ValueError with a message that says what
was expected; callers add the file/table/key context.
"""

from __future__ import annotations

import math
import re
from datetime import UTC
from typing import TYPE_CHECKING

from monitor.core.clock import utcnow

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# One "<number><unit>" part; "ms" is listed before "m" so it wins.
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_HELP = 'a duration like "30s", "10m", "2h", "1d" or "1h30m" (or a number of seconds)'
# The longest duration accepted anywhere: a century is beyond any sensible interval, lease
# or retention, and "now - it" and the timers built from it stay in range (datetime ends
# at year 9999, threading's waits at about 292 years).
MAX_DURATION_DAYS = 36500
MAX_DURATION = MAX_DURATION_DAYS * 86400.0


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Turn `30s`, `10m`, `2h`, `1d`, `1h30m`, `500ms` or a bare number of seconds into seconds.

    Zero is refused unless `allow_zero`: a zero interval or timeout is always a mistake,
    a zero jitter or delay is a legitimate "off". Anything over a century is refused too.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {_DURATION_HELP}")
    seconds = _parse_duration_text(value) if isinstance(value, str) else float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"expected {_DURATION_HELP}")
    if seconds < 0:
        raise ValueError("must not be negative")
    if seconds == 0 and not allow_zero:
        raise ValueError("must be greater than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most {MAX_DURATION_DAYS}d (100 years)")
    return seconds


def _parse_duration_text(text: str) -> float:
    stripped = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        return float(stripped)  # "30" means 30 seconds, like a bare TOML number
    if not stripped:
        raise ValueError(f"empty string is not {_DURATION_HELP}")
    if stripped.startswith("-"):
        raise ValueError("must not be negative")
    total, pos = 0.0, 0
    while pos < len(stripped):
        match = _DURATION_PART.match(stripped, pos)
        if not match:
            raise ValueError(f'"{text}" is not {_DURATION_HELP}')
        total += float(match[1]) * _DURATION_UNITS[match[2].lower()]
        pos = match.end()
    return total


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration for display (`config check`): 5400 -> "1h30m"."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# Decimal units are powers of 1000 and binary units powers of 1024, as the SI/IEC names say.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_SIZE_HELP = 'a byte count or a size like "512KiB", "32MB" or "1GiB"'


def parse_size(value: object) -> int:
    """Turn an int or `"32MB"` (10^6), `"32MiB"` (2^20), `"512KiB"`, `"1GB"` into bytes (>= 1)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected {_SIZE_HELP}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value)
        if not match or match[2].lower() not in _SIZE_UNITS:
            raise ValueError(f'"{value}" is not {_SIZE_HELP}')
        size = int(float(match[1]) * _SIZE_UNITS[match[2].lower()])
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field name, lowest, highest, names usable instead of numbers, first number of those names)
_CRON_FIELDS = (
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day of month", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _WEEKDAYS, 0),  # 0 and 7 are both Sunday, as in cron
)


def validate_cron(expr: object) -> str:
    """Check a classic 5-field crontab line and return it normalized (single spaces).

    Validation is done here, not by the scheduler, so a typo is a config error at load
    time (exit 78) instead of a crash when the daemon starts; so is a line that is
    well-formed but never fires (`0 0 31 2 *`), which would leave the daemon idle.
    """
    if not isinstance(expr, str):
        raise ValueError('expected a crontab string like "*/10 * * * *"')
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f'"{expr}" has {len(fields)} fields; expected 5 (minute hour day-of-month month '
            'day-of-week), e.g. "*/10 * * * *"'
        )
    for text, spec in zip(fields, _CRON_FIELDS, strict=True):
        _validate_cron_field(text, *spec)
    normalized = " ".join(fields)
    if cron_trigger(normalized).get_next_fire_time(None, utcnow()) is None:
        raise ValueError(
            f'"{expr}" never fires: no date matches all its fields (a day the month never '
            "has, such as February 30; a day of month and a day of week must both match); "
            "fix the day or the month"
        )
    return normalized


_CRON_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def cron_trigger(expression: str, jitter: float | None = None) -> CronTrigger:
    """A crontab line with cron's meaning of weekday numbers (0 and 7 are Sunday).

    APScheduler's `from_crontab` counts 0 as Monday; numbers in the weekday field
    are translated to names so "1-5" still means Monday to Friday.
    """
    from apscheduler.triggers.cron import CronTrigger  # lazy: only configs with a cron line

    minute, hour, day, month, weekday = expression.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=",".join(_weekday_part(p) for p in weekday.split(",")),
        timezone=UTC,
        jitter=jitter,
    )


def _weekday_part(part: str) -> str:
    """One comma-separated item of cron's weekday field, in APScheduler's names."""
    body, slash, step = part.partition("/")
    if "-" in body:
        first, last = body.split("-", 1)
        if first.isdigit() and last.isdigit():
            a, b = int(first) % 7, int(last)
            if a == 0:  # APScheduler weeks start on Monday: "0-2" is "sun,mon-tue"
                body = "sun" if b in (0, 7) else "sun," + _range(1, b)
                return body  # a step over a range through Sunday is not supported
            body = _range(a, b)
    elif body.isdigit():
        body = _CRON_WEEKDAYS[int(body)]
    return body + slash + step


def _range(a: int, b: int) -> str:
    return _CRON_WEEKDAYS[a] if a == b else f"{_CRON_WEEKDAYS[a]}-{_CRON_WEEKDAYS[b]}"


def _validate_cron_field(
    text: str, name: str, low: int, high: int, names: tuple[str, ...], first: int
) -> None:
    def number(token: str) -> int:
        if token.lower() in names:
            return names.index(token.lower()) + first
        if not token.isdigit():
            raise ValueError(f'{name} field "{text}": "{token}" is not a number')
        if not low <= int(token) <= high:
            raise ValueError(f'{name} field "{text}": {token} is outside {low}-{high}')
        return int(token)

    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f'{name} field "{text}": step "{step}" must be a positive number')
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        if dash and number(start) > number(end):
            raise ValueError(f'{name} field "{text}": range "{base}" runs backwards')
        number(start)
