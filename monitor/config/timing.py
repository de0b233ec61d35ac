"""When a delivery may go out: digests batch events into slots, quiet hours delay them.

Pure functions of (spec, time, zone): detection never waits, only delivery does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.core.records import DeliveryState

_DIGEST = re.compile(r"^(hourly|daily@(\d{1,2}):(\d{2}))$")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class Digest:
    """`hourly` (on the hour) or `daily@HH:MM` in the channel's time zone."""

    at: time | None  # None: hourly

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST.match(text.strip())
        if not match:
            raise ValueError(f'"{text}" is not a digest schedule; write "hourly" or "daily@09:00"')
        if match.group(1) == "hourly":
            return cls(None)
        return cls(_clock(match.group(2), match.group(3), text))

    def next_slot(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The first slot strictly after `now`."""
        local = now.astimezone(zone)
        if self.at is None:
            slot = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        else:
            slot = datetime.combine(local.date(), self.at, tzinfo=zone)
            if slot <= local:
                slot = datetime.combine(local.date() + timedelta(days=1), self.at, tzinfo=zone)
        return slot.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """`22:00-07:00`: nothing is sent in that window (local time); it may wrap midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        match = _WINDOW.match(text.strip())
        if not match:
            raise ValueError(f'"{text}" is not a time window; write e.g. "22:00-07:00"')
        start = _clock(match.group(1), match.group(2), text)
        end = _clock(match.group(3), match.group(4), text)
        if start == end:
            raise ValueError(f'"{text}" is an empty window; start and end must differ')
        return cls(start, end)

    def release(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """`moment` if it is outside the window, else the window's end."""
        local = moment.astimezone(zone)
        now = local.time()
        wraps = self.start > self.end
        inside = (now >= self.start or now < self.end) if wraps else self.start <= now < self.end
        if not inside:
            return moment
        day = local.date()
        if wraps and now >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(moment.tzinfo)


def _clock(hours: str, minutes: str, text: str) -> time:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(f'"{text}" has an impossible time of day')
    return time(h, m)


@dataclass(frozen=True, slots=True)
class DeliveryWindow:
    """A channel's rules for when its deliveries may go out."""

    digest: Digest | None
    quiet: QuietHours | None
    zone: ZoneInfo

    @classmethod
    def parse(cls, digest: str | None, quiet_hours: str | None, timezone: str) -> DeliveryWindow:
        """A channel's `digest`, `quiet_hours` and `timezone` keys; raises ValueError."""
        return cls(
            Digest.parse(digest) if digest else None,
            QuietHours.parse(quiet_hours) if quiet_hours else None,
            ZoneInfo(timezone),
        )

    def first(self, now: datetime) -> tuple[str, datetime]:
        """State and due time of a new delivery: held for the next digest, or pending."""
        if self.digest is not None:
            return DeliveryState.HELD, self.release(self.digest.next_slot(now, self.zone))
        return DeliveryState.PENDING, self.release(now)

    def release(self, moment: datetime) -> datetime:
        return self.quiet.release(moment, self.zone) if self.quiet else moment
