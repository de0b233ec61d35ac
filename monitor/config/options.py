"""Every key of `[monitor]`, `[[sources]]`, `[[tokens]]` and the keys common to `[[channels]]`.

One table, two readers: the loader (`monitor.config.load`) accepts exactly these keys,
and `python -m monitor.cli.reference` writes them into docs/config.md. A channel type's
own keys are declared by its class (`OPTIONS` in monitor/delivery/*.py), not here.

`default` is the default as it would be written in TOML; the tests load a config with
and without each key and check that the loader applies exactly that value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Key:
    """One config key: its name, type and default in words, and what it does."""

    name: str
    type: str
    description: str
    default: Any = None  # as written in TOML; None when the key has no default value
    default_text: str = ""  # the default in words (alone, or explaining `default`)
    required: bool = False
    secret: bool = False  # also accepted as NAME_env and NAME_file (exactly one of the three)


DURATION = "duration"
EVENTS = [
    "models.changed",
    "token.failing",
    "token.recovered",
    "token.expiring",
    "token.quota_low",
]

MONITOR: tuple[Key, ...] = (
    Key(
        "database",
        "SQLAlchemy database URL",
        "Where history is kept: sqlite:////absolute/path.db or postgresql+psycopg://user@host/db.",
        default_text="SQLite at $STATE_DIRECTORY/monitor.db (systemd), else "
        "$XDG_STATE_HOME/model-monitor/monitor.db",
        secret=True,
    ),
    Key(
        "interval",
        f"{DURATION}, > 0",
        "How often every token is checked; set either interval or cron.",
        default="10m",
    ),
    Key(
        "cron",
        "5-field crontab line, in UTC",
        "Check on this schedule instead of every interval.",
        default_text="none",
    ),
    Key(
        "jitter",
        f"{DURATION}, may be 0",
        "A random delay from 0 to this is added to each scheduled check.",
        default="30s",
    ),
    Key(
        "timeout",
        f"{DURATION}, > 0",
        "Time limit for one check of a token: the whole exchange, however slowly it arrives.",
        default="20s",
    ),
    Key(
        "concurrency",
        "integer >= 1",
        "How many tokens of one source are polled at the same time.",
        default=16,
    ),
    Key(
        "max_response_bytes",
        "size",
        "A models list larger than this is a failed check (too_large), never a snapshot.",
        default="32MiB",
    ),
    Key(
        "confirm_checks",
        "integer >= 1",
        "Consecutive successful checks a removal or change must be seen in before it is "
        "reported (1: at once).",
        default=2,
    ),
    Key(
        "failure_threshold",
        "integer >= 1",
        "Consecutive failures before token.failing is sent; 401 and 403 are reported at once.",
        default=3,
    ),
    Key(
        "mass_change_share",
        "number, greater than 0 and at most 1",
        "A list losing more than this share of its models, or coming back empty, is fetched "
        "again; such a removal needs two checks.",
        default=0.5,
    ),
    Key(
        "refetch_delay",
        f"{DURATION}, may be 0",
        "The pause before that second fetch.",
        default="2s",
    ),
    Key(
        "retry_schedule",
        "list of durations",
        "Delays between the attempts of one delivery after the first; when they are used "
        "up, the delivery is dead.",
        default=["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"],
    ),
    Key(
        "templates",
        "path of a directory (must exist; relative to the config file)",
        "Jinja2 templates that replace the shipped ones by file name (docs/templates.md).",
        default_text="the shipped templates",
    ),
    Key(
        "delivery_lease",
        f"{DURATION}, > 0",
        "How long a sender owns a delivery it claimed; another process retries it after that.",
        default="2m",
    ),
    Key(
        "retention",
        DURATION,
        "The daemon deletes checks and events older than this once a day, and the "
        "snapshots nothing refers to.",
        default_text="keep everything",
    ),
    Key(
        "listen",
        'host:port, e.g. "127.0.0.1:9464"',
        "The daemon serves /healthz, /metrics and the status pages on this address.",
        default_text="no listener",
    ),
    Key(
        "listen_username",
        "string without ':'",
        "Basic auth user for everything the listener serves but /healthz; needs "
        "listen_password and listen.",
        default_text="no auth",
    ),
    Key(
        "listen_password",
        "string",
        "Basic auth password; needs listen_username and listen.",
        default_text="no auth",
        secret=True,
    ),
    Key(
        "budget_interval",
        f"{DURATION}, may be 0",
        "How often each token's remaining quota and expiry are read (new-api: "
        "GET /api/usage/token/; one-api: the billing routes); 0 reads them with every check.",
        default="6h",
    ),
    Key(
        "prices_interval",
        f"{DURATION}, may be 0",
        "How often a source's prices are read (new-api: GET /api/pricing); 0 reads them "
        "with every check.",
        default="1h",
    ),
    Key(
        "expiry_warning",
        "list of durations > 0",
        "token.expiring is sent once as a token's expiry comes within each of these; a "
        "renewal starts again. [] never warns.",
        default=["7d", "1d"],
    ),
    Key(
        "quota_warning",
        'percentage of the granted quota ("10%") or an amount in US dollars (5)',
        "token.quota_low is sent once when the remaining quota falls below this; a top-up "
        "above it re-arms the warning. Unlimited tokens never warn.",
        default="10%",
    ),
)

SOURCES: tuple[Key, ...] = (
    Key(
        "name",
        "name (letters, digits, '.', '_', '-'; unique)",
        "Names the source in messages, payloads and the database.",
        required=True,
    ),
    Key(
        "base_url",
        "http(s) URL",
        "The API base the models path is appended to, e.g. https://aiberm.com/v1; a "
        "trailing slash is removed.",
        required=True,
    ),
    Key(
        "flavor",
        "one of the flavors below",
        "The wire format of the models list.",
        default="new-api",
    ),
    Key(
        "ca_bundle",
        "path of a PEM file or directory (must exist; relative to the config file)",
        "CA certificates to trust for this source (a private CA); not with verify_tls = false.",
        default_text="the system's CAs",
    ),
    Key(
        "verify_tls",
        "boolean",
        "Verify the server's TLS certificate.",
        default=True,
    ),
    Key(
        "timeout",
        f"{DURATION}, > 0",
        "Overrides [monitor] timeout for this source.",
        default_text="[monitor] timeout",
    ),
    Key(
        "explain_auth",
        "boolean",
        "new-api: after a 401, ask GET /api/usage/token/ why, once per failing spell.",
        default=True,
    ),
    Key(
        "ignore_fields",
        "list of globs on field names",
        "Fields never stored or compared for this source.",
        default=[],
        default_text="none",
    ),
    Key(
        "thresholds",
        'table of field glob = percentage ("1%" or 0.01)',
        "The smallest relative change of a numeric field worth reporting; smaller moves "
        'add up against what was last reported. The glob "price" applies to new-api\'s '
        "price list (docs/prices.md).",
        default_text="every change counts",
    ),
    Key(
        "budget_interval",
        f"{DURATION}, may be 0",
        "Overrides [monitor] budget_interval for this source.",
        default_text="[monitor] budget_interval",
    ),
    Key(
        "prices_interval",
        f"{DURATION}, may be 0",
        "Overrides [monitor] prices_interval for this source.",
        default_text="[monitor] prices_interval",
    ),
    Key(
        "budget_rate_limit",
        "integer >= 1",
        "At most this many budget reads per 20 minutes for all tokens of the source "
        "together; new-api allows 20 per client address. The stalest tokens go first.",
        default=18,
    ),
    Key(
        "probe",
        "boolean",
        "Call listed models with the cheapest request they allow (max_tokens 1) to find "
        "those listed but not callable: unavailable and available changes "
        "(docs/probes.md). Each probe is a real, billed call.",
        default=False,
    ),
    Key(
        "probe_interval",
        f"{DURATION}, > 0",
        "How often every listed model is probed again (new and changed ones go first).",
        default="1d",
    ),
    Key(
        "probe_delay",
        f"{DURATION}, may be 0",
        "How long after a model appears or changes before its first probe: new-api routes "
        "from a cache that lags its list by up to a minute.",
        default="1m",
    ),
    Key(
        "probe_recheck",
        f"{DURATION}, may be 0",
        "How often a model found unavailable is probed, to tell when it answers again.",
        default="1h",
    ),
    Key(
        "probe_budget",
        "integer >= 1",
        "At most this many probes per token in any 24 hours, whatever is due.",
        default=50,
    ),
    Key(
        "probe_per_cycle",
        "integer >= 1",
        "At most this many probes per check of the source, all tokens together.",
        default=20,
    ),
    Key(
        "probe_models",
        "list of model id globs",
        "Models probed even where they would be skipped (priced per call, or image, video, "
        "audio and rerank types).",
        default=[],
        default_text="none",
    ),
)

TOKENS: tuple[Key, ...] = (
    Key(
        "name",
        "name (letters, digits, '.', '_', '-'; unique)",
        "Names the token everywhere, with a fingerprint; its value is never shown.",
        required=True,
    ),
    Key(
        "source",
        "name of a [[sources]] entry",
        "The source this token belongs to.",
        required=True,
    ),
    Key(
        "token",
        "string",
        "The API key sent to the source.",
        required=True,
        secret=True,
    ),
    Key(
        "channels",
        "list of [[channels]] names",
        "The channels that hear about this token; [] records history and notifies no one.",
        default_text="every channel",
    ),
    Key(
        "group",
        "string",
        "The token's new-api group: its price changes are reported at that group's ratio.",
        default_text="base prices",
    ),
    Key(
        "expiry_warning",
        "list of durations > 0",
        "Overrides [monitor] expiry_warning for this token.",
        default_text="[monitor] expiry_warning",
    ),
    Key(
        "quota_warning",
        'percentage ("10%") or US dollars (5)',
        "Overrides [monitor] quota_warning for this token.",
        default_text="[monitor] quota_warning",
    ),
    Key(
        "probe",
        "boolean",
        "false: this token is never probed, even where its source has probe = true.",
        default=True,
    ),
)

CHANNELS: tuple[Key, ...] = (
    Key(
        "name",
        "name (letters, digits, '.', '_', '-'; unique)",
        "Names the channel in tokens' channels lists, `deliveries` and messages.",
        required=True,
    ),
    Key(
        "type",
        "one of the channel types below",
        "What the channel sends to; its own keys are listed under its type.",
        required=True,
    ),
    Key(
        "events",
        "list of event types",
        "Which events the channel receives.",
        default=EVENTS,
    ),
    Key(
        "models",
        "list of model id globs (*, ?, [abc]; case-sensitive)",
        "Only changes to models matching one of these globs reach the channel.",
        default=[],
        default_text="every model",
    ),
    Key(
        "exclude_models",
        "list of model id globs",
        "Changes to models matching one of these globs never reach the channel.",
        default=[],
        default_text="none",
    ),
    Key(
        "changes",
        "list of change types",
        "Only these kinds of change reach the channel (added, removed, "
        "endpoint_types_changed, field_changed, price_changed, group_ratio_changed, "
        "unavailable, available): "
        'e.g. ["price_changed", "group_ratio_changed"] for the people who pay, '
        '["unavailable", "available"] for those on call when a listed model stops answering.',
        default_text="every change",
    ),
    Key(
        "digest",
        '"hourly" or "daily@HH:MM"',
        "Batch the channel's events into one message per slot, in the channel's time zone.",
        default_text="each event is sent at once",
    ),
    Key(
        "quiet_hours",
        '"HH:MM-HH:MM" (may wrap midnight)',
        "Hold deliveries in this window, local time; they go out when it ends.",
        default_text="none",
    ),
    Key(
        "timezone",
        'IANA time zone, e.g. "Europe/Berlin"',
        "The time zone of digest and quiet_hours.",
        default="UTC",
    ),
)


def names(keys: tuple[Key, ...]) -> tuple[str, ...]:
    return tuple(key.name for key in keys)


MONITOR_KEYS = names(MONITOR)
SOURCE_KEYS = names(SOURCES)
TOKEN_KEYS = names(TOKENS)
CHANNEL_KEYS = names(CHANNELS)
