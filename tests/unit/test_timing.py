"""The timing rules of delivery: when a digest's next slot falls and when quiet hours
release a delivery, in the channel's time zone; and the spellings refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config.model import ChannelConfig
from monitor.config.timing import Digest, QuietHours

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_timing_rules() -> None:
    berlin = __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    assert Digest.parse("daily@09:00").next_slot(NOON, berlin) == datetime(
        2026, 11, 27, 8, tzinfo=UTC
    )
    assert Digest.parse("hourly").next_slot(NOON, berlin) == datetime(2026, 11, 26, 13, tzinfo=UTC)
    window = QuietHours.parse("22:00-07:00")
    assert window.release(NOON, berlin) == NOON
    late = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert window.release(late, berlin) == datetime(2026, 11, 27, 6, tzinfo=UTC)
    for bad in ("daily", "daily@25:00", "weekly@mon"):
        with pytest.raises(ValueError, match=r"digest|time of day"):
            Digest.parse(bad)
    with pytest.raises(ValueError, match="window"):
        QuietHours.parse("22-7")


def test_a_channels_window_is_parsed_once_when_the_config_is_built() -> None:
    channel = ChannelConfig("c", "stdout", digest="daily@09:00", timezone="Europe/Berlin")
    assert channel.window.digest is not None and str(channel.window.zone) == "Europe/Berlin"
    assert ChannelConfig("d", "stdout").window.digest is None
    with pytest.raises(ValueError, match="impossible time"):
        ChannelConfig("e", "stdout", quiet_hours="25:00-07:00")
