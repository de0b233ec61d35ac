"""The one hand-driven clock of the suite: checkers, dispatchers and health watches take a
`clock` callable, and tests pass this one to decide what "now" is."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.core.clock import utcnow


class Clock:
    """Returns `now` until a test sets it or moves it on.

    Without a start it begins at the wall clock's time, so it lines up with anything
    still written on the real clock; `Clock.whole_second()` begins at the wall clock's
    time cut to the second (the fault matrix's start).
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = utcnow() if now is None else now

    @classmethod
    def whole_second(cls) -> Clock:
        return cls(utcnow().replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta | float) -> None:
        """Move on by a timedelta, or by a number of seconds."""
        self.now += by if isinstance(by, timedelta) else timedelta(seconds=by)
