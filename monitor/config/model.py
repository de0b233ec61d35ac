"""The validated configuration: frozen values the rest of the program reads.

Loading and validation live in `monitor.config.load`; nothing else parses TOML.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monitor.config.timing import DeliveryWindow
from monitor.core.budget import BudgetPolicy, QuotaWarning

# Standard Webhooks' example retry schedule, minus the immediate first try.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    5,
    300,
    1800,
    7200,
    18000,
    36000,
    50400,
    72000,
    86400,
)


class Secret:
    """A secret value that never prints itself.

    repr() and str() are redacted so a secret inside a dataclass, an exception or a log
    argument cannot leak by accident; `reveal()` is the one explicit way out.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, stable, non-reversible name for the value."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


OptionKind = Literal["str", "int", "float", "bool", "duration", "list[str]", "secret"]


@dataclass(frozen=True, slots=True)
class Option:
    """One type-specific key a channel accepts.

    A `secret` option named `url` is also accepted as `url_env` and `url_file`
    (exactly one of the three).
    """

    kind: OptionKind
    required: bool = False
    default: Any = None
    help: str = ""


class ConfigError(Exception):
    """Every problem found in a config, reported together (exit code 78)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    database: str | None = field(default=None, repr=False)  # may carry a password
    interval: float | None = 600.0  # seconds; None when `cron` is set
    cron: str | None = None
    jitter: float = 30.0
    timeout: float = 20.0
    concurrency: int = 16  # tokens of one source polled at once
    max_response_bytes: int = 32 * 1024 * 1024
    confirm_checks: int = 2  # flap guard: consecutive checks a loss must persist
    failure_threshold: int = 3  # transient failures before token.failing
    mass_change_share: float = 0.5  # a list losing more than this share is fetched again
    refetch_delay: float = 2.0
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    templates: str | None = None  # a directory whose templates override the shipped ones
    delivery_lease: float = 120.0  # how long a sender owns a claimed delivery
    retention: float | None = None  # the daemon prunes history older than this, daily
    listen: str | None = None  # "127.0.0.1:9464": /healthz, /metrics and the status pages
    # Basic auth for everything the listener serves but /healthz (probes stay open).
    listen_username: str | None = None
    listen_password: Secret | None = field(default=None, repr=False)
    # A token's budget and expiry (new-api, one-api): how often they are read, and when
    # they are worth a warning (monitor.events.budget). Tokens may override the warnings.
    budget_interval: float = 6 * 3600.0  # 0: with every check
    prices_interval: float = 3600.0
    expiry_warning: tuple[float, ...] = (7 * 86400.0, 86400.0)
    quota_warning: QuotaWarning = field(default_factory=QuotaWarning)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    base_url: str  # without trailing slash, e.g. "https://aiberm.com/v1"
    flavor: str = "new-api"
    ca_bundle: str | None = None
    verify_tls: bool = True
    timeout: float | None = None  # overrides [monitor].timeout
    explain_auth: bool = True  # new-api: after a 401, ask /api/usage/token/ why
    ignore_fields: tuple[str, ...] = ()  # globs of field names never stored or compared
    thresholds: tuple[tuple[str, float], ...] = ()  # (field glob, smallest relative change)
    budget_interval: float | None = None  # None: [monitor]'s
    prices_interval: float | None = None  # None: [monitor]'s
    # Reads of the budget route per 20 minutes, all tokens together: new-api allows 20.
    budget_rate_limit: int = 18
    # Probes (docs/probes.md): real calls to listed models, off unless asked for.
    probe: bool = False
    probe_interval: float = 86400.0  # every listed model, this often
    probe_delay: float = 60.0  # after a model appears or changes (new-api's routing cache)
    probe_recheck: float = 3600.0  # an unavailable model, to tell when it answers again
    probe_budget: int = 50  # probes per token per 24 hours
    probe_per_cycle: int = 20  # probes per cycle of the source, all tokens together
    probe_models: tuple[str, ...] = ()  # globs probed even where they would be skipped


@dataclass(frozen=True, slots=True)
class TokenConfig:
    name: str
    source: str
    secret: Secret
    channels: tuple[str, ...] | None = None  # None: every channel
    group: str | None = None  # its new-api group, for the prices it pays
    expiry_warning: tuple[float, ...] | None = None  # None: [monitor]'s
    quota_warning: QuotaWarning | None = None  # None: [monitor]'s
    probe: bool = True  # false: never probed, even where its source probes

    @property
    def fingerprint(self) -> str:
        return self.secret.fingerprint()


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    type: str
    events: tuple[str, ...] = (
        "models.changed",
        "token.failing",
        "token.recovered",
        "token.expiring",
        "token.quota_low",
    )
    models: tuple[str, ...] = ()  # include globs; empty: all
    exclude_models: tuple[str, ...] = ()
    changes: tuple[str, ...] | None = None  # change types of models.changed; None: all
    options: Mapping[str, Any] = field(default_factory=dict)  # type-specific, secrets as Secret
    digest: str | None = None  # "hourly" or "daily@09:00": batch events into one message
    quiet_hours: str | None = None  # "22:00-07:00": hold deliveries (never detection)
    timezone: str = "UTC"  # for digest and quiet_hours
    # The three above, parsed once here rather than for every event enqueued.
    window: DeliveryWindow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        window = DeliveryWindow.parse(self.digest, self.quiet_hours, self.timezone)
        object.__setattr__(self, "window", window)  # frozen: set once, at construction


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    monitor: MonitorSettings
    sources: tuple[SourceConfig, ...]
    tokens: tuple[TokenConfig, ...]
    channels: tuple[ChannelConfig, ...]

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    def tokens_of(self, source: str) -> tuple[TokenConfig, ...]:
        return tuple(t for t in self.tokens if t.source == source)

    def channel(self, name: str) -> ChannelConfig:
        return next(c for c in self.channels if c.name == name)

    def budget_policy(self, token: TokenConfig) -> BudgetPolicy:
        """When the token's budget is worth a warning: its own settings, else [monitor]'s."""
        settings = self.monitor
        return BudgetPolicy(
            expiry=settings.expiry_warning
            if token.expiry_warning is None
            else token.expiry_warning,
            quota=token.quota_warning or settings.quota_warning,
        )

    def budget_interval(self, source: SourceConfig) -> float:
        if source.budget_interval is not None:
            return source.budget_interval
        return self.monitor.budget_interval

    def prices_interval(self, source: SourceConfig) -> float:
        if source.prices_interval is not None:
            return source.prices_interval
        return self.monitor.prices_interval

    def channels_for(self, token: TokenConfig) -> tuple[ChannelConfig, ...]:
        if token.channels is None:
            return self.channels
        return tuple(c for c in self.channels if c.name in token.channels)
