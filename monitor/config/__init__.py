"""Configuration: TOML in, frozen values out (SPEC section 4)."""

from monitor.config.model import (
    ChannelConfig,
    Config,
    ConfigError,
    MonitorSettings,
    Option,
    Secret,
    SourceConfig,
    TokenConfig,
)

__all__ = [
    "ChannelConfig",
    "Config",
    "ConfigError",
    "MonitorSettings",
    "Option",
    "Secret",
    "SourceConfig",
    "TokenConfig",
]
