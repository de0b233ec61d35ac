"""TOML in, frozen Config out.

The loader never stops at the first problem: it walks the whole file, collects every
problem as one line naming the file, the table and the key, and raises one ConfigError.
An operator fixing a config over ssh should need one round trip, not ten.

Secrets (tokens, channel options of kind "secret", the database URL) are read from the
file, the environment or a file (systemd credentials) and wrapped in Secret at once. No
message built here ever contains a secret value: messages name the variable or file
instead, values that look like credentials are redacted when echoed, and as a last
guard every secret seen is scrubbed from the messages before they are raised.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeGuard, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.config.catalogue import Catalogue
from monitor.config.durations import parse_duration, parse_size, validate_cron
from monitor.config.model import (
    DEFAULT_RETRY_SCHEDULE,
    ChannelConfig,
    Config,
    ConfigError,
    MonitorSettings,
    Option,
    Secret,
    SourceConfig,
    TokenConfig,
)
from monitor.config.options import CHANNEL_KEYS, MONITOR_KEYS, SOURCE_KEYS, TOKEN_KEYS
from monitor.config.timing import Digest, QuietHours
from monitor.core.budget import QuotaWarning
from monitor.core.records import ChangeType, EventType

# What a channel may subscribe to: every event but the sample `notify-test` sends.
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType if t is not EventType.TEST)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

TOP_KEYS = ("monitor", "sources", "tokens", "channels")
# MONITOR_KEYS, SOURCE_KEYS, TOKEN_KEYS and CHANNEL_KEYS (the common keys) come from the
# documented table in monitor/config/options.py.
SECRET_SUFFIXES = ("_env", "_file")
# The ID of the shipped units' LoadCredential= for /etc/model-monitor/credentials.
CREDENTIALS_ID = "credentials"

# Prefixes of well-known credential formats: such values are never echoed, even where a
# non-secret was expected (a token pasted into token_env is still a token).
_SECRET_PREFIXES = ("sk-", "sk_", "whsec_", "xox", "ghp_", "gho_", "github_pat_", "glpat-", "eyJ")
_MISSING: Any = object()
_T = TypeVar("_T")
_D = TypeVar("_D")  # a getter's default: returned as it is when the key is missing or wrong


def load_config(
    path: Path | str, catalogue: Catalogue, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config at `path`; raise ConfigError listing every problem.

    `catalogue` names the flavors and channel types there are (the installed ones:
    `monitor.runtime.catalogue.CATALOGUE`). `environ` (default os.environ) supplies
    `*_env` secrets and $CREDENTIALS_DIRECTORY; tests pass a plain dict.
    """
    path = Path(path)
    loader = _Loader(
        file=str(path),
        base_dir=path.absolute().parent,
        environ=os.environ if environ is None else environ,
        catalogue=catalogue,
    )
    document = _read_toml(path)
    config = loader.build(document, path.absolute())
    if loader.problems:
        raise ConfigError([loader.scrub(p) for p in loader.problems])
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse the file, turning every way of failing into a one-line ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: no such config file; create one with `model-monitor init {path}`"]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory; point --config at the TOML file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text; save the file as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_error(path, exc)]) from None


def _syntax_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    # tomllib puts the position only in the message ("... (at line 3, column 9)") before 3.14.
    message = str(exc)
    where = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    position = f"line {where[1]}, column {where[2]}" if where else "at the end of the file"
    return (
        f"{path}: {position}: TOML syntax error: {reason}; fix the syntax there "
        '(strings need "quotes", lists [brackets], each entry a [[table]])'
    )


def looks_secret(value: str) -> bool:
    """A guess whether a string is a credential; used only to decide what not to echo."""
    if value.startswith(_SECRET_PREFIXES):
        return True
    if len(value) >= 32 and not re.search(r"[\s/]", value):
        return bool(re.search(r"\d", value) and re.search(r"[A-Za-z]", value))
    return False


def _show(value: Any) -> str:
    """Echo a user value in a message: quoted, shortened, and never if it looks secret."""
    if isinstance(value, str):
        if looks_secret(value):
            return "(a value that looks like a secret, not shown)"
        text = value if len(value) <= 80 else value[:77] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _kind(value: Any) -> str:
    """How TOML calls the type of a value, for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _closest(key: str, valid: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(key: str, valid: Iterable[str]) -> str:
    """` (did you mean "x"?)` when a valid choice is close to what was written, else ""."""
    close = _closest(key, valid)
    return f' (did you mean "{close}"?)' if close else ""


def _secret_forms(key: str) -> tuple[str, str, str]:
    return (key, f"{key}_env", f"{key}_file")


@dataclass
class _Loader:
    """The state of one load: where messages point, the environment, what went wrong."""

    file: str
    base_dir: Path
    environ: Mapping[str, str]
    catalogue: Catalogue
    problems: list[str] = field(default_factory=list)
    seen_secrets: set[str] = field(default_factory=set)

    def problem(self, where: str, key: str | None, message: str) -> None:
        parts = [self.file, where, key, message]
        self.problems.append(": ".join(p for p in parts if p))

    def scrub(self, message: str) -> str:
        """Last line of defence: no secret we have seen may survive into a message."""
        for secret in sorted(self.seen_secrets, key=len, reverse=True):
            if len(secret) >= 6:
                message = message.replace(secret, "***")
        return message

    # -- the document ------------------------------------------------------------------

    def build(self, doc: dict[str, Any], path: Path) -> Config:
        for key in doc:
            if key not in TOP_KEYS:
                self.problem("", None, self._unknown_top_key(key))
        monitor = self._monitor(doc.get("monitor", {}))
        sources = self._entries(doc, "sources", self._source)
        channels = self._entries(doc, "channels", self._channel)
        source_names = self._names(doc, "sources")
        channel_names = self._names(doc, "channels")
        tokens = self._entries(doc, "tokens", lambda t: self._token(t, source_names, channel_names))
        return Config(
            path=path,
            monitor=monitor,
            sources=tuple(s for s in sources if s is not None),
            tokens=tuple(t for t in tokens if t is not None),
            channels=tuple(c for c in channels if c is not None),
        )

    def _unknown_top_key(self, key: str) -> str:
        if key in MONITOR_KEYS:
            return f'"{key}" is a [monitor] setting; move it below the [monitor] header'
        return (
            f'unknown table or key "{key}"{_suggest(key, TOP_KEYS)} '
            "(valid: [monitor], [[sources]], [[tokens]], [[channels]])"
        )

    def _entries(self, doc: dict[str, Any], name: str, build: Any) -> list[Any]:
        """Run `build` on each [[name]] entry, after checking names are valid and unique."""
        raw = doc.get(name, [])
        if isinstance(raw, dict):
            advice = f"write [[{name}]] (double brackets) once per entry"
            self.problem(f"[{name}]", None, f"must be an array of tables; {advice}")
            return []
        if not isinstance(raw, list):
            self.problem("", name, f"expected [[{name}]] tables, got {_kind(raw)}")
            return []
        results: list[Any] = []
        first_seen: dict[str, int] = {}
        for index, entry in enumerate(raw):
            table = _Table(self, name, index, entry)
            if table.data is None:
                continue
            table.check_name(first_seen)
            results.append(build(table))
        return results

    @staticmethod
    def _names(doc: dict[str, Any], name: str) -> set[str]:
        """Names written in a table, valid or not: a reference to a broken entry is not
        reported twice."""
        raw = doc.get(name, [])
        if not isinstance(raw, list):
            return set()
        return {e["name"] for e in raw if isinstance(e, dict) and isinstance(e.get("name"), str)}

    # -- [monitor] -----------------------------------------------------------------------

    def _monitor(self, raw: Any) -> MonitorSettings:
        if not isinstance(raw, dict):
            self.problem("", "monitor", f"expected a [monitor] table, got {_kind(raw)}")
            return MonitorSettings()
        table = _Table(self, "monitor", None, raw)
        table.check_keys(MONITOR_KEYS, secrets=("database", "listen_password"))
        defaults = MonitorSettings()
        database = table.secret("database", required=False)
        cron = table.cron("cron")
        interval = table.duration("interval", defaults.interval)
        if cron is not None and table.has("interval"):
            table.problem("cron", "set either interval or cron, not both; remove one")
        listen = table.address("listen")
        username, password = self._listen_auth(table, listen)
        return MonitorSettings(
            database=self._database_url(table, database),
            interval=None if cron is not None else interval,
            cron=cron,
            jitter=table.duration("jitter", defaults.jitter, allow_zero=True),
            timeout=table.duration("timeout", defaults.timeout),
            concurrency=table.integer("concurrency", defaults.concurrency, minimum=1),
            max_response_bytes=table.size("max_response_bytes", defaults.max_response_bytes),
            confirm_checks=table.integer("confirm_checks", defaults.confirm_checks, minimum=1),
            failure_threshold=table.integer(
                "failure_threshold", defaults.failure_threshold, minimum=1
            ),
            mass_change_share=table.share("mass_change_share", defaults.mass_change_share),
            refetch_delay=table.duration("refetch_delay", defaults.refetch_delay, allow_zero=True),
            retry_schedule=table.durations("retry_schedule", DEFAULT_RETRY_SCHEDULE),
            templates=table.existing_path("templates"),
            delivery_lease=table.duration("delivery_lease", defaults.delivery_lease),
            retention=table.duration("retention", None),
            listen=listen,
            listen_username=username,
            listen_password=password,
            budget_interval=table.duration(
                "budget_interval", defaults.budget_interval, allow_zero=True
            ),
            prices_interval=table.duration(
                "prices_interval", defaults.prices_interval, allow_zero=True
            ),
            expiry_warning=table.warnings("expiry_warning", defaults.expiry_warning),
            quota_warning=table.quota_warning("quota_warning") or defaults.quota_warning,
        )

    @staticmethod
    def _listen_auth(table: _Table, listen: str | None) -> tuple[str | None, Secret | None]:
        """Basic auth for the listener: both halves or neither, and only with `listen`."""
        username = table.string("listen_username", None)
        password = table.secret("listen_password", required=False)
        password_given = any(table.has(f) for f in _secret_forms("listen_password"))
        if username is not None and (username == "" or re.search(r"[:\x00-\x1f\x7f]", username)):
            table.problem(
                "listen_username",
                "must be a non-empty name without ':' or control characters "
                "(basic auth splits the user name from the password at the first ':')",
            )
            username = None
        elif username is not None and not password_given:
            table.problem(
                "listen_username",
                'needs a password; add listen_password_env = "VARIABLE_NAME" '
                '(or listen_password_file = "path")',
            )
        if password_given and not table.has("listen_username"):
            table.problem(
                table.present_form("listen_password"),
                'needs a user name; add listen_username = "..." (basic auth sends both)',
            )
        if (password_given or table.has("listen_username")) and not table.has("listen"):
            key = "listen_username" if table.has("listen_username") else "listen_password"
            table.problem(
                table.present_form(key),
                'has no effect without listen; add listen = "127.0.0.1:9464" or remove it',
            )
        if username is None or password is None or listen is None:
            return None, None
        return username, password

    @staticmethod
    def _database_url(table: _Table, database: Secret | None) -> str | None:
        if database is None:
            return None
        url = database.reveal()
        # The URL may carry a password: describe the problem, never echo the value.
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
            table.problem(
                table.present_form("database"),
                "is not a database URL; expected e.g. sqlite:////var/lib/model-monitor/monitor.db "
                "(four slashes for an absolute path) or postgresql+psycopg://user@host/dbname",
            )
        return url

    # -- [[sources]] ---------------------------------------------------------------------

    def _source(self, table: _Table) -> SourceConfig:
        flavors = self.catalogue.flavors
        table.check_keys(SOURCE_KEYS)
        flavor = table.string("flavor", "new-api")
        if flavor is not None and flavor not in flavors:
            table.problem(
                "flavor",
                f"unknown flavor {_show(flavor)}{_suggest(flavor, flavors)} "
                f"(valid: {', '.join(sorted(flavors)) or 'none registered'})",
            )
        verify_tls = table.boolean("verify_tls", True)
        ca_bundle = table.existing_path("ca_bundle")
        if ca_bundle is not None and verify_tls is False:
            table.problem("ca_bundle", "has no effect with verify_tls = false; remove one of them")
        return SourceConfig(
            name=table.name,
            base_url=table.url("base_url"),
            flavor=flavor or "new-api",
            ca_bundle=ca_bundle,
            verify_tls=bool(verify_tls),
            timeout=table.duration("timeout", None),
            explain_auth=table.boolean("explain_auth", True) is not False,
            ignore_fields=table.globs("ignore_fields"),
            thresholds=table.thresholds("thresholds"),
            budget_interval=table.duration("budget_interval", None, allow_zero=True),
            prices_interval=table.duration("prices_interval", None, allow_zero=True),
            budget_rate_limit=table.integer("budget_rate_limit", 18, minimum=1),
            **self._probing(table, flavor),
        )

    def _probing(self, table: _Table, flavor: str | None) -> dict[str, Any]:
        probe = table.boolean("probe", False) is True
        if probe and flavor is not None and flavor not in self.catalogue.probing:
            table.problem(
                "probe",
                f"the {flavor} flavor cannot be probed (probes go to "
                f"{', '.join(sorted(self.catalogue.probing))}); remove probe",
            )
        defaults = SourceConfig(name="", base_url="")
        return {
            "probe": probe,
            "probe_interval": table.duration("probe_interval", defaults.probe_interval),
            "probe_delay": table.duration("probe_delay", defaults.probe_delay, allow_zero=True),
            "probe_recheck": table.duration(
                "probe_recheck", defaults.probe_recheck, allow_zero=True
            ),
            "probe_budget": table.integer("probe_budget", defaults.probe_budget, minimum=1),
            "probe_per_cycle": table.integer(
                "probe_per_cycle", defaults.probe_per_cycle, minimum=1
            ),
            "probe_models": table.globs("probe_models"),
        }

    # -- [[tokens]] ----------------------------------------------------------------------

    def _token(self, table: _Table, sources: set[str], channels: set[str]) -> TokenConfig:
        table.check_keys(TOKEN_KEYS, secrets=("token",))
        source = table.string("source", None, required='source = "<name of a [[sources]] entry>"')
        if source is not None and source not in sources:
            table.problem(
                "source",
                f"no [[sources]] entry is named {_show(source)}{_suggest(source, sources)}; "
                "add that source or fix the name",
            )
        wanted = table.strings("channels", None)
        for name in wanted or ():
            if name not in channels:
                table.problem(
                    "channels",
                    f"no [[channels]] entry is named {_show(name)}{_suggest(name, channels)}; "
                    "add that channel, fix the name, or remove channels to use every channel",
                )
        secret = table.secret("token", required=True)
        group = table.string("group", None)
        if group == "":
            table.problem("group", 'is empty; write the new-api group, e.g. group = "vip"')
        return TokenConfig(
            name=table.name,
            source=source or "",
            secret=secret or Secret(""),
            channels=None if wanted is None else tuple(dict.fromkeys(wanted)),
            group=group or None,
            expiry_warning=table.warnings("expiry_warning", None),
            quota_warning=table.quota_warning("quota_warning"),
            probe=table.boolean("probe", True) is not False,
        )

    # -- [[channels]] --------------------------------------------------------------------

    def _channel(self, table: _Table) -> ChannelConfig:
        channels = self.catalogue.channels
        valid = ", ".join(sorted(channels))
        kind = table.string("type", None, required=f'type = "webhook" (one of: {valid})')
        options: Mapping[str, Option] | None = None
        if kind is not None:
            if kind in channels:
                options = channels[kind].OPTIONS
            else:
                table.problem(
                    "type",
                    f"unknown channel type {_show(kind)}{_suggest(kind, channels)} "
                    f"(valid: {valid})",
                )
        if options is not None:
            own = [k for k in options if k not in CHANNEL_KEYS]
            secrets = [k for k in own if options[k].kind == "secret"]
            table.check_keys((*CHANNEL_KEYS, *own), secrets=secrets, context=f'type "{kind}"')
        else:  # type unknown: its keys are unknown too, so only the common ones are checked
            table.check_keys(CHANNEL_KEYS, strict=False)
        events = table.members("events", EVENT_TYPES, "event", "event")
        kinds = [str(kind) for kind in ChangeType]
        changes = table.members("changes", kinds, "change type", "change")
        defaults = ChannelConfig(name="", type="")
        values = self._options(table, options or {})
        if kind is not None and kind in channels:
            for key, message in channels[kind].check_options(values):
                table.problem(key, message)
        return ChannelConfig(
            name=table.name,
            type=kind or "",
            events=tuple(dict.fromkeys(events)) if events else defaults.events,
            models=table.globs("models"),
            exclude_models=table.globs("exclude_models"),
            changes=tuple(dict.fromkeys(changes)) if changes else None,
            options=values,
            digest=table.parsed("digest", Digest.parse),
            quiet_hours=table.parsed("quiet_hours", QuietHours.parse),
            timezone=table.time_zone("timezone", defaults.timezone),
        )

    @staticmethod
    def _options(table: _Table, options: Mapping[str, Option]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, option in options.items():
            if key in CHANNEL_KEYS:
                continue
            values[key] = table.option(key, option)
        return values


def _is_file(path: Path) -> bool:
    """Like Path.is_file, but a directory we may not enter is "not there", not a crash."""
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _percent(raw: Any) -> float | None:
    """ "1%" -> 0.01; 0.01 -> 0.01; anything else (or negative) -> None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            raw = float(raw.strip()[:-1]) / 100
        except ValueError:
            return None
    if isinstance(raw, int | float) and 0 <= raw < 100:
        return float(raw)
    return None


class _Table:
    """One TOML table being read: typed getters that record problems instead of raising.

    Every getter returns a usable value (the default when the key is absent or broken)
    so the walk goes on and finds the next problem.
    """

    def __init__(self, loader: _Loader, section: str, index: int | None, data: Any) -> None:
        self.loader = loader
        self.section = section
        self.index = index
        self.data: dict[str, Any] | None = data if isinstance(data, dict) else None
        raw_name = self.data.get("name") if self.data is not None else None
        self.name: str = raw_name if isinstance(raw_name, str) else ""
        if index is None:
            self.where = f"[{section}]"
        else:
            self.where = f"{section}[{index}]"
            if self.name and NAME_PATTERN.fullmatch(self.name):
                self.where += f' "{self.name}"'
        if self.data is None:
            loader.problem(self.where, None, f"expected a table, got {_kind(data)}")

    def problem(self, key: str | None, message: str) -> None:
        self.loader.problem(self.where, key, message)

    def has(self, key: str) -> bool:
        return self.data is not None and key in self.data

    def _get(self, key: str) -> Any:
        return _MISSING if self.data is None else self.data.get(key, _MISSING)

    # -- structure -----------------------------------------------------------------------

    def check_name(self, first_seen: dict[str, int]) -> None:
        """Names identify entries everywhere (CLI, database, payloads): strict and unique."""
        name = self._get("name")
        singular = self.section.rstrip("s")
        if name is _MISSING:
            self.problem("name", f'missing; add name = "my-{singular}"')
        elif not isinstance(name, str):
            self.problem("name", f"expected a string, got {_kind(name)}")
        elif not NAME_PATTERN.fullmatch(name):
            self.problem(
                "name",
                f"{_show(name)} is not a valid name; use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit",
            )
        elif name in first_seen:
            self.problem(
                "name",
                f'duplicate name "{name}" (also {self.section}[{first_seen[name]}]); '
                f"names must be unique within [[{self.section}]]",
            )
        else:
            first_seen[name] = self.index or 0

    def check_keys(
        self,
        keys: Iterable[str],
        *,
        secrets: Iterable[str] = (),
        context: str = "",
        strict: bool = True,
    ) -> None:
        """Report every key not in `keys` (plus the _env/_file forms of `secrets`).

        With strict=False only near-misses of the known keys are reported: used when the
        channel type is unknown, so its own keys cannot be judged.
        """
        if self.data is None:
            return
        valid = list(keys) + [f for s in secrets for f in _secret_forms(s)[1:]]
        for key in self.data:
            if key in valid:
                continue
            close = _closest(key, valid)
            if not strict and not close:
                continue
            scope = f" for {context}" if context else ""
            # The value is never echoed: an unknown key may well hold a secret.
            if close:
                self.problem(key, f'unknown key{scope}; did you mean "{close}"?')
            else:
                self.problem(key, f"unknown key{scope}; remove it (valid: {', '.join(valid)})")

    # -- scalar getters ------------------------------------------------------------------

    def _typed(
        self,
        key: str,
        default: _D,
        required: str | None,
        ok: Callable[[object], TypeGuard[_T]],
        expected: str,
    ) -> _T | _D:
        value = self._get(key)
        if value is _MISSING:
            if required:
                self.problem(key, f"missing; add {required}")
            return default
        if not ok(value):
            self.problem(key, f"expected {expected}, got {_kind(value)}")
            return default
        return value

    def string(self, key: str, default: str | None, required: str | None = None) -> str | None:
        value = self._typed(key, default, required, _is_str, "a string")
        if value == "" and (required or default):
            self.problem(key, "must not be empty")
            return default
        return value

    def parsed(self, key: str, parse: Callable[[str], object]) -> str | None:
        """A string that `parse` must accept (it raises ValueError saying how to fix it)."""
        value = self.string(key, None)
        if value is None:
            return None
        try:
            parse(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return None
        return value

    def time_zone(self, key: str, default: str) -> str:
        value = self.string(key, default) or default
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(
                key, f'{_show(value)} is not an IANA time zone; write e.g. "Europe/Berlin"'
            )
            return default
        return value

    def boolean(self, key: str, default: bool | None) -> bool | None:
        return self._typed(key, default, None, _is_bool, "true or false (without quotes)")

    def integer(self, key: str, default: int, *, minimum: int) -> int:
        value = self._typed(key, default, None, _is_int, "an integer (without quotes)")
        if value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def number(self, key: str, default: _D, required: str | None = None) -> float | _D:
        value = self._typed(key, default, required, _is_number, "a number")
        return float(value) if _is_number(value) else value

    def share(self, key: str, default: float) -> float:
        """A fraction in (0, 1]: 0.5 means half."""
        value = self.number(key, default)
        if not 0 < value <= 1:
            self.problem(key, f"must be greater than 0 and at most 1 (0.5 means half), got {value}")
            return default
        return value

    def duration(self, key: str, default: float | None, *, allow_zero: bool = False) -> Any:
        value = self._get(key)
        if value is _MISSING:
            return default
        try:
            return parse_duration(value, allow_zero=allow_zero)
        except ValueError as exc:
            self.problem(key, f'{_reason(value, exc)}; write e.g. {key} = "30s"')
            return default

    def durations(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            expected = 'a list of durations like ["5s", "5m", "1h"]'
            self.problem(key, f"expected {expected}, got {_kind(value)}")
            return default
        result: list[float] = []
        for i, item in enumerate(value):
            try:
                result.append(parse_duration(item, allow_zero=True))
            except ValueError as exc:
                self.problem(f"{key}[{i}]", f'{_reason(item, exc)}; write e.g. "5m"')
        return tuple(result)

    def warnings(self, key: str, default: _D) -> tuple[float, ...] | _D:
        """Durations before an expiry, each > 0: ["7d", "1d"]; [] warns never."""
        if not self.has(key):
            return default
        found = self.durations(key, ())
        if any(seconds <= 0 for seconds in found):
            self.problem(key, 'must be durations greater than 0, e.g. ["7d", "1d"]')
            return default
        return tuple(sorted(set(found), reverse=True))

    def quota_warning(self, key: str) -> QuotaWarning | None:
        """ "10%" of the granted quota, or an amount in US dollars (5, "2.50")."""
        value = self._get(key)
        if value is _MISSING:
            return None
        text = str(value).strip() if isinstance(value, str | int | float) else ""
        if isinstance(value, bool):
            text = ""
        percent = text.endswith("%")
        try:
            amount = Decimal(text.removesuffix("%").strip().removeprefix("$"))
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0 or (percent and amount > 100):
            self.problem(
                key,
                f"{_show(value)} is not a share of the granted quota or an amount; write e.g. "
                f'{key} = "10%" or {key} = 5 (US dollars)',
            )
            return None
        return QuotaWarning(percent=amount) if percent else QuotaWarning(None, amount)

    def size(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is _MISSING:
            return default
        try:
            return parse_size(value)
        except ValueError as exc:
            self.problem(key, f'{_reason(value, exc)}; write e.g. {key} = "32MiB"')
            return default

    def cron(self, key: str) -> str | None:
        value = self._get(key)
        if value is _MISSING:
            return None
        try:
            return validate_cron(value)
        except ValueError as exc:
            self.problem(key, _reason(value, exc))
            return "* * * * *"  # placeholder so interval logic stays consistent

    def strings(self, key: str, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            got = _kind(value) if not isinstance(value, list) else "a list with non-strings"
            self.problem(key, f'expected a list of strings like ["a", "b"], got {got}')
            return default
        return tuple(value)

    def address(self, key: str) -> str | None:
        """ "host:port" to listen on; the host may be an IPv6 literal in brackets."""
        value = self.string(key, None)
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.problem(key, f'{_show(value)} is not host:port; write e.g. "127.0.0.1:9464"')
            return None
        return value

    def thresholds(self, key: str) -> tuple[tuple[str, float], ...]:
        """`{ "pricing.*" = "1%", context_window = 0.05 }`: glob -> smallest relative change."""
        value = self._get(key)
        if value is _MISSING:
            return ()
        if not isinstance(value, dict):
            self.problem(key, f'expected a table like {{ "pricing.*" = "1%" }}, got {_kind(value)}')
            return ()
        found = []
        for pattern, raw in value.items():
            share = _percent(raw)
            if share is None:
                self.problem(key, f'{_show(pattern)}: expected a percentage like "1%" or 0.01')
                continue
            found.append((pattern, share))
        return tuple(found)

    def members(
        self, key: str, valid: Sequence[str], noun: str, each: str
    ) -> tuple[str, ...] | None:
        """A list of some of `valid` (None when the key is missing); an unknown `noun` and
        an empty list are problems: "remove the key" is how to mean all of them."""
        chosen = self.strings(key, None)
        for name in chosen or ():
            if name not in valid:
                self.problem(
                    key,
                    f"unknown {noun} {_show(name)}{_suggest(name, valid)} "
                    f"(valid: {', '.join(valid)})",
                )
        if chosen == ():
            self.problem(key, f"is empty; remove the key to receive every {each}")
        return chosen

    def globs(self, key: str) -> tuple[str, ...]:
        """Model id patterns (fnmatch style: *, ?, [abc])."""
        patterns = self.strings(key, ()) or ()
        if "" in patterns:
            self.problem(key, 'contains an empty pattern; use e.g. "gpt-*"')
        return tuple(p for p in patterns if p)

    def url(self, key: str) -> str:
        value = self.string(key, None, required=f'{key} = "https://gateway.example.com/v1"')
        if value is None:
            return ""
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            self.problem(key, f'{_show(value)} is not a valid URL; write e.g. "https://host/v1"')
            return value
        if parts.username or parts.password:
            # Never echo: the URL carries credentials.
            self.problem(key, "must not contain a user name or password; put the key in a token")
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(key, f'{_show(value)} is not an http(s) URL; write e.g. "https://host/v1"')
        elif parts.query or parts.fragment:
            self.problem(key, f"{_show(value)} must be a base URL without ?query or #fragment")
        return value.strip().rstrip("/")

    def existing_path(self, key: str) -> str | None:
        """A path that must exist; relative paths are relative to the config file."""
        value = self.string(key, None)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.loader.base_dir / path
        if not path.exists():
            self.problem(key, f"{path} does not exist; fix the path (relative to the config file)")
        return str(path)

    # -- secrets -------------------------------------------------------------------------

    def present_form(self, key: str) -> str:
        """Which of key, key_env, key_file is set (for messages about the resolved value)."""
        return next((f for f in _secret_forms(key) if self.has(f)), key)

    def secret(self, key: str, *, required: bool) -> Secret | None:
        """Resolve one secret from exactly one of `key`, `key_env`, `key_file`."""
        forms = [f for f in _secret_forms(key) if self.has(f)]
        for form in forms:  # collect early: whatever goes wrong, these get scrubbed
            raw = self._get(form)
            if isinstance(raw, str) and (form == key or looks_secret(raw)):
                self.loader.seen_secrets.add(raw)
        if len(forms) > 1:
            self.problem(key, f"set only one of {', '.join(forms)}")
            return None
        if not forms:
            if required:
                self.problem(
                    key,
                    f'missing; add {key}_env = "VARIABLE_NAME" (read from the environment), '
                    f'{key}_file = "path" (e.g. a systemd credential) or {key} = "..."',
                )
            return None
        form = forms[0]
        raw = self._get(form)
        if not isinstance(raw, str):
            self.problem(form, f"expected a string, got {_kind(raw)}")
            return None
        value: str | None
        if form == key:
            value = raw
        elif form.endswith("_env"):
            value = self._secret_from_env(form, raw)
        else:
            value = self._secret_from_file(form, raw)
        if value is None:
            return None
        self.loader.seen_secrets.add(value)
        return self._checked_secret(form, value)

    def _checked_secret(self, form: str, value: str) -> Secret | None:
        if value == "":
            self.problem(form, "the secret is empty")
            return None
        if re.search(r"[\x00-\x1f\x7f]", value):
            # A newline inside a token would corrupt HTTP headers.
            self.problem(form, "the secret contains a newline or control character; remove it")
            return None
        return Secret(value)

    def _secret_from_env(self, form: str, name: str) -> str | None:
        if not ENV_NAME_PATTERN.fullmatch(name) or looks_secret(name):
            self.problem(
                form,
                "is not an environment variable name (not shown, in case it is the secret "
                f'itself); {form} takes the NAME of a variable, e.g. {form} = "MY_TOKEN"',
            )
            return None
        value = self.loader.environ.get(name)
        if value is None:
            key = form.removesuffix("_env")
            self.problem(
                form,
                f'environment variable "{name}" is not set; export it (or set it in the '
                f"service's environment) or use {key}_file",
            )
        elif value == "":
            self.problem(form, f'environment variable "{name}" is empty; give it the secret')
            return None
        return value

    def _secret_from_file(self, form: str, raw: str) -> str | None:
        shown = "(a path that looks like a secret, not shown)" if looks_secret(raw) else raw
        candidates = self._secret_paths(raw)
        path = next((p for p in candidates if _is_file(p)), None)
        if path is None:
            directory = next((p for p in candidates if _is_dir(p)), None)
            if directory is not None and shown == raw:
                self.problem(
                    form,
                    f"{directory} is a directory, not a file; point {form} at the file "
                    "holding the secret",
                )
                return None
            looked = " or ".join(str(p) for p in candidates) if shown == raw else shown
            self.problem(form, f"no such file: {looked}; fix the path or create the file")
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.problem(form, f"{path} is not UTF-8 text")
            return None
        except OSError as exc:
            self.problem(form, f"cannot read {path}: {exc.strerror}; check its permissions")
            return None
        # Editors and `echo` add one trailing newline; anything more is part of the value.
        return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text

    def _secret_paths(self, raw: str) -> list[Path]:
        """Relative paths: systemd's $CREDENTIALS_DIRECTORY first, then the config's dir.

        In $CREDENTIALS_DIRECTORY a NAME is looked up as NAME (a LoadCredential=NAME:FILE
        line of its own), then as credentials_NAME: the shipped units load the whole
        directory with LoadCredential=credentials:/etc/model-monitor/credentials, and
        systemd names each file of a loaded directory ID_FILENAME (a file in a
        subdirectory, ID_SUBDIR_FILENAME).
        """
        path = Path(raw).expanduser()
        if path.is_absolute():
            return [path]
        candidates = []
        credentials = self.loader.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            candidates.append(Path(credentials) / path)
            if path.parts and ".." not in path.parts:
                flat = "_".join((CREDENTIALS_ID, *path.parts))
                candidates.append(Path(credentials) / flat)
        candidates.append(self.loader.base_dir / path)
        return candidates

    # -- channel options -----------------------------------------------------------------

    def option(self, key: str, option: Option) -> Any:
        """Read one type-specific channel key as its Option says, applying the default."""
        required = f"{key} = ... ({option.help})" if option.required and option.help else None
        if option.required and not required:
            required = f"{key} = ..."
        kind = option.kind
        if kind == "secret":
            return self.secret(key, required=option.required) or option.default
        if kind == "duration":
            value = self.duration(key, _MISSING)
        elif kind == "str":
            value = self.string(key, _MISSING)
        elif kind == "int":
            value = self._typed(key, _MISSING, None, _is_int, "an integer (without quotes)")
        elif kind == "float":
            value = self.number(key, _MISSING)
        elif kind == "bool":
            value = self.boolean(key, _MISSING)
        elif kind == "list[str]":
            value = self.strings(key, _MISSING)
        else:  # pragma: no cover - a channel declared a kind this loader does not know
            raise TypeError(f"channel option {key!r} has unknown kind {kind!r}")
        if value is _MISSING or value is None:
            if option.required and not self.has(key):
                self.problem(key, f"missing; add {required}")
            default = option.default
            return tuple(default) if isinstance(default, list) else default
        return value


def _reason(value: Any, exc: ValueError) -> str:
    """A parser's complaint, unless it would echo something that looks like a secret."""
    if isinstance(value, str) and looks_secret(value):
        return "invalid value (not shown: it looks like a secret)"
    return str(exc)


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


def _is_bool(value: object) -> TypeGuard[bool]:
    return isinstance(value, bool)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
