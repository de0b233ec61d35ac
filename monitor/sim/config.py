"""Configs built in code for the simulator: used by the demo, the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.config import ChannelConfig, Config, MonitorSettings, Secret, SourceConfig, TokenConfig

# Fast defaults for loopback runs: no re-fetch pause, short timeouts and retries.
SIM_SETTINGS: dict[str, object] = {
    "refetch_delay": 0.0,
    "timeout": 5.0,
    "jitter": 0.0,
    "retry_schedule": (0.2, 0.4, 0.8),
}


def sim_config(
    base_url: str,
    tokens: Mapping[str, str],
    *,
    source: str = "gw",
    channels: Sequence[ChannelConfig] = (),
    token_channels: Mapping[str, tuple[str, ...]] | None = None,
    **settings: object,
) -> Config:
    """One new-api source with the given tokens (name -> value) and channels."""
    return Config(
        path=None,
        monitor=MonitorSettings(**{**SIM_SETTINGS, **settings}),  # type: ignore[arg-type]
        sources=(SourceConfig(name=source, base_url=base_url, flavor="new-api"),),
        tokens=tuple(
            TokenConfig(name, source, Secret(value), (token_channels or {}).get(name))
            for name, value in tokens.items()
        ),
        channels=tuple(channels),
    )


def webhook_channel(
    name: str, url: str, secret: str | None = None, **extra: object
) -> ChannelConfig:
    options: dict[str, object] = {"url": Secret(url), "timeout": 5.0}
    if secret:
        options["secret"] = Secret(secret)
    return ChannelConfig(name=name, type="webhook", options=options, **extra)  # type: ignore[arg-type]
