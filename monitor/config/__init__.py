"""Configuration: TOML in, frozen values out."""

from monitor.config.discovery import (
    config_candidates,
    default_config_path,
    default_database_path,
    default_database_url,
    find_config,
    starter_config,
    write_starter_config,
)
from monitor.config.durations import format_duration, parse_duration, parse_size, validate_cron
from monitor.config.load import EVENT_TYPES, load_config
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
    "EVENT_TYPES",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "MonitorSettings",
    "Option",
    "Secret",
    "SourceConfig",
    "TokenConfig",
    "config_candidates",
    "default_config_path",
    "default_database_path",
    "default_database_url",
    "find_config",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_size",
    "starter_config",
    "validate_cron",
    "write_starter_config",
]
