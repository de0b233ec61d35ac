"""The config loader: TOML in, frozen Config out, every problem reported at once.

These tests write real files under tmp_path and pass a fake environ, so they never
depend on (or leak into) the environment of the machine running them.
"""

from __future__ import annotations

import os
import re
import stat
import traceback
from pathlib import Path
from typing import ClassVar

import pytest

from monitor.config import (
    ChannelConfig,
    Config,
    ConfigError,
    MonitorSettings,
    Option,
    Secret,
    SourceConfig,
    TokenConfig,
    config_candidates,
    default_config_path,
    default_database_path,
    default_database_url,
    discovery,
    find_config,
    format_duration,
    parse_duration,
    parse_size,
    starter_config,
    validate_cron,
    write_starter_config,
)
from monitor.config.load import CHANNEL_KEYS, MONITOR_KEYS, SOURCE_KEYS, TOKEN_KEYS
from monitor.config.model import DEFAULT_RETRY_SCHEDULE
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.registry import CHANNELS
from monitor.runtime.catalogue import load as load_config
from monitor.sources.registry import FLAVORS

REPO = Path(__file__).resolve().parents[2]
CANARY = "sk-canary-7f3a9b2c4d5e6f708192a3b4c5d6e7f8"

MINIMAL = """
[[sources]]
name = "aiberm"
base_url = "https://aiberm.com/v1/"

[[tokens]]
name = "team-a"
source = "aiberm"
token_env = "TEAM_A"

[[channels]]
name = "console"
type = "stdout"
"""


class FakeChannel(Channel):
    """A channel type declaring one option of every kind, to test option handling."""

    OPTIONS: ClassVar = {
        "host": Option("str", required=True, help="server name"),
        "port": Option("int", default=587),
        "ratio": Option("float", default=0.5),
        "tls": Option("bool", default=True),
        "wait": Option("duration", default=10.0),
        "to": Option("list[str]", default=["ops@example.com"]),
        "password": Option("secret"),
        "api_key": Option("secret", required=True),
    }

    def send(self, message: Message) -> SendResult:
        return SendResult.success()


@pytest.fixture(autouse=True)
def registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three flavors the loader's tests rely on, whether or not they are registered
    yet, and a fake channel type with every option kind."""
    for name in ("new-api", "one-api", "openai"):
        if name not in FLAVORS:
            monkeypatch.setitem(FLAVORS, name, object)
    monkeypatch.setitem(CHANNELS, "fake", FakeChannel)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), {"TEAM_A": "sk-a"} if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    # Every problem names the file it is about.
    for problem in info.value.problems:
        assert problem.startswith(str(tmp_path / "config.toml")), problem
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def one_problem(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    found = problems(tmp_path, text, env)
    assert len(found) == 1, found
    return found[0]


# -- valid configs ---------------------------------------------------------------------


def test_minimal_config_round_trips_into_dataclasses(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config == Config(
        path=tmp_path / "config.toml",
        monitor=MonitorSettings(),
        sources=(SourceConfig(name="aiberm", base_url="https://aiberm.com/v1"),),
        tokens=(TokenConfig(name="team-a", source="aiberm", secret=Secret("sk-a")),),
        channels=(ChannelConfig(name="console", type="stdout"),),
    )
    assert config.tokens[0].channels is None  # absent: every channel
    assert config.channels_for(config.tokens[0]) == config.channels


def test_every_monitor_key(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [monitor]
        database = "postgresql+psycopg://mm@db/mm"
        interval = "1h30m"
        jitter = 0
        timeout = 15
        concurrency = 4
        max_response_bytes = "512KiB"
        confirm_checks = 3
        failure_threshold = 5
        mass_change_share = 1
        refetch_delay = "500ms"
        retry_schedule = ["5s", "1m", 0]
        """,
    )
    assert config.monitor == MonitorSettings(
        database="postgresql+psycopg://mm@db/mm",
        interval=5400.0,
        cron=None,
        jitter=0.0,
        timeout=15.0,
        concurrency=4,
        max_response_bytes=512 * 1024,
        confirm_checks=3,
        failure_threshold=5,
        mass_change_share=1.0,
        refetch_delay=0.5,
        retry_schedule=(5.0, 60.0, 0.0),
    )
    assert config.sources == config.tokens == config.channels == ()


def test_monitor_defaults(tmp_path: Path) -> None:
    monitor = load(tmp_path, "[monitor]\n").monitor
    assert monitor.interval == 600.0
    assert monitor.cron is None
    assert monitor.database is None  # the CLI falls back to default_database_url()
    assert monitor.retry_schedule == DEFAULT_RETRY_SCHEDULE


def test_cron_replaces_interval(tmp_path: Path) -> None:
    monitor = load(tmp_path, '[monitor]\ncron = "*/10  *  * * mon-fri"\n').monitor
    assert monitor.cron == "*/10 * * * mon-fri"
    assert monitor.interval is None


def test_sources_tokens_and_channels_in_full(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = load(
        tmp_path,
        """
        [[sources]]
        name = "internal"
        base_url = "http://10.0.0.5:3000/v1"
        flavor = "one-api"
        ca_bundle = "ca.pem"
        timeout = "1m"

        [[sources]]
        name = "lab"
        base_url = "https://lab.example.com"
        flavor = "openai"
        verify_tls = false

        [[tokens]]
        name = "team-a"
        source = "internal"
        token_env = "TEAM_A"
        channels = ["hook", "hook"]

        [[tokens]]
        name = "quiet"
        source = "lab"
        token = "sk-lab"
        channels = []

        [[channels]]
        name = "hook"
        type = "webhook"
        url = "https://hooks.example.com/x"
        events = ["token.failing", "token.recovered"]
        models = ["gpt-*", "claude-*"]
        exclude_models = ["*-preview"]
        """,
    )
    assert config.sources == (
        SourceConfig(
            name="internal",
            base_url="http://10.0.0.5:3000/v1",
            flavor="one-api",
            ca_bundle=str(tmp_path / "ca.pem"),
            verify_tls=True,
            timeout=60.0,
        ),
        SourceConfig(
            name="lab", base_url="https://lab.example.com", flavor="openai", verify_tls=False
        ),
    )
    assert config.tokens[0].channels == ("hook",)
    assert config.tokens[1].channels == ()
    assert config.channels_for(config.tokens[1]) == ()
    assert config.channels == (
        ChannelConfig(
            name="hook",
            type="webhook",
            events=("token.failing", "token.recovered"),
            models=("gpt-*", "claude-*"),
            exclude_models=("*-preview",),
            options={
                "url": Secret("https://hooks.example.com/x"),
                "secret": None,
                "timeout": 10.0,
            },
        ),
    )


def test_channel_options_of_every_kind(tmp_path: Path) -> None:
    base = 'name = "f"\ntype = "fake"\nhost = "smtp.example.com"\napi_key_env = "KEY"\n'
    env = {"TEAM_A": "sk-a", "KEY": "key-1"}
    defaults = load(tmp_path, "[[channels]]\n" + base, env).channels[0].options
    assert defaults == {
        "host": "smtp.example.com",
        "port": 587,
        "ratio": 0.5,
        "tls": True,
        "wait": 10.0,
        "to": ("ops@example.com",),
        "password": None,
        "api_key": Secret("key-1"),
    }
    text = (
        "[[channels]]\n" + base + 'port = 465\nratio = 1\ntls = false\nwait = "2m"\n'
        'to = ["a@example.com", "b@example.com"]\npassword = "pw-123"\n'
    )
    options = load(tmp_path, text, env).channels[0].options
    assert options["port"] == 465
    assert options["ratio"] == 1.0
    assert options["tls"] is False
    assert options["wait"] == 120.0
    assert options["to"] == ("a@example.com", "b@example.com")
    assert options["password"] == Secret("pw-123")


def test_channel_option_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        [[channels]]
        name = "f"
        type = "fake"
        port = "587"
        ratio = "half"
        tls = "yes"
        wait = "soon"
        to = "a@example.com"
        """,
        {},
    )
    where = 'channels[0] "f"'
    expected = {
        "host": "missing; add host = ... (server name)",
        "port": "expected an integer",
        "ratio": "expected a number",
        "tls": "expected true or false",
        "wait": "is not a duration",
        "to": "expected a list of strings",
        "api_key": "missing; add api_key_env",
    }
    for key, text in expected.items():
        assert any(f"{where}: {key}: " in p and text in p for p in found), (key, found)
    assert len(found) == len(expected), found


# -- durations, sizes, cron ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1h 30m 15s", 5415),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("90", 90),
        (45, 45),
        (2.5, 2.5),
        ("10M", 600),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10 minutes", "5x", "1h-5m", "h", "1e3s"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [True, None, [1], {"s": 1}, float("nan"), float("inf")])
def test_parse_duration_rejects_wrong_types(value: object) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_duration(value)


def test_parse_duration_zero_and_negative() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration("0s")
    assert parse_duration("0s", allow_zero=True) == 0
    for negative in (-5, "-5s", -0.5):
        with pytest.raises(ValueError, match="negative"):
            parse_duration(negative, allow_zero=True)


def test_parse_duration_refuses_more_than_a_century() -> None:
    assert parse_duration("36500d") == 36500 * 86400
    for too_long in ("36501d", "99999999999d", 1e300):
        with pytest.raises(ValueError, match="at most 36500d"):
            parse_duration(too_long)


def test_format_duration() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(90061) == "1d1h1m1s"
    assert format_duration(0) == "0s"
    assert format_duration(0.5) == "0.5s"
    for seconds in (30, 600, 7200, 86400, 5415):
        assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1000, 1000),
        ("32MB", 32_000_000),
        ("32MiB", 32 * 1024**2),
        ("512KiB", 512 * 1024),
        ("512 kB", 512_000),
        ("1GiB", 1024**3),
        ("2048", 2048),
        ("100B", 100),
        ("1.5MiB", int(1.5 * 1024**2)),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12 parsecs", "MB", "-1MB", 0, -5, True, 1.5, "0B"])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError, match=r"expected|is not|at least"):
        parse_size(text)


@pytest.mark.parametrize(
    "expr",
    ["*/10 * * * *", "0 9 * * 1-5", "0,30 8-18/2 1 jan-jun sun", "59 23 31 12 7", "0 0 * * SAT"],
)
def test_validate_cron_accepts(expr: str) -> None:
    assert validate_cron(expr) == expr


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("*/10 * * *", "has 4 fields; expected 5"),
        ("* * * * * *", "has 6 fields"),
        ("60 * * * *", "minute field"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day of month field"),
        ("* * * 13 *", "month field"),
        ("* * * * 8", "day of week field"),
        ("*/0 * * * *", "step"),
        ("30-10 * * * *", "runs backwards"),
        ("x * * * *", "is not a number"),
        ("@hourly", "has 1 fields"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30 feb *", "never fires"),
    ],
)
def test_validate_cron_rejects(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_cron(expr)


# -- errors: each names the file, the table and the key --------------------------------


def test_unknown_keys_suggest_the_closest_valid_key(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('token_env = "TEAM_A"', 'token_env = "TEAM_A"\ntokn_env = "X"')
        .replace('type = "stdout"', 'type = "stdout"\nevnts = ["token.failing"]')
        .replace('name = "aiberm"', 'name = "aiberm"\nflavour = "new-api"', 1)
    )
    text = '[monitor]\nintervall = "5m"\nsomething = 1\n' + text
    found = problems(tmp_path, text)
    assert len(found) == 5, found
    file = str(tmp_path / "config.toml")
    assert f'{file}: [monitor]: intervall: unknown key; did you mean "interval"?' in found
    assert any("[monitor]: something: unknown key; remove it (valid: database," in p for p in found)
    assert f'{file}: sources[0] "aiberm": flavour: unknown key; did you mean "flavor"?' in found
    assert f'{file}: tokens[0] "team-a": tokn_env: unknown key; did you mean "token_env"?' in found
    assert (
        f'{file}: channels[0] "console": evnts: unknown key for type "stdout"; '
        'did you mean "events"?' in found
    )


def test_unknown_channel_option_names_the_type(tmp_path: Path) -> None:
    text = '[[channels]]\nname = "h"\ntype = "webhook"\nurll = "https://x"\nurl = "https://x"\n'
    problem = one_problem(tmp_path, text)
    assert 'channels[0] "h": urll: unknown key for type "webhook"; did you mean "url"?' in problem


def test_unknown_top_level_tables_and_misplaced_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, 'interval = "5m"\n[[source]]\nname = "x"\n')
    misplaced = '"interval" is a [monitor] setting; move it below the [monitor] header'
    assert any(misplaced in p for p in found)
    assert any('unknown table or key "source" (did you mean "sources"?)' in p for p in found)


def test_single_brackets_for_an_array_table(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, '[sources]\nname = "x"\nbase_url = "https://x"\n')
    assert "[sources]: must be an array of tables; write [[sources]] (double brackets)" in problem


@pytest.mark.parametrize(
    ("snippet", "where", "message"),
    [
        ("concurrency = 0", "[monitor]: concurrency", "must be at least 1, got 0"),
        (
            'concurrency = "4"',
            "[monitor]: concurrency",
            "expected an integer (without quotes), got a string",
        ),
        ("concurrency = true", "[monitor]: concurrency", "expected an integer"),
        ("confirm_checks = 0", "[monitor]: confirm_checks", "must be at least 1"),
        ("failure_threshold = -1", "[monitor]: failure_threshold", "must be at least 1"),
        ("mass_change_share = 0", "[monitor]: mass_change_share", "greater than 0 and at most 1"),
        ("mass_change_share = 1.5", "[monitor]: mass_change_share", "at most 1"),
        ('mass_change_share = "half"', "[monitor]: mass_change_share", "expected a number"),
        ('interval = "0s"', "[monitor]: interval", "must be greater than zero"),
        ('interval = "10 minutes"', "[monitor]: interval", '"10 minutes" is not a duration'),
        ('timeout = "-5s"', "[monitor]: timeout", "must not be negative"),
        ('jitter = "-1s"', "[monitor]: jitter", "must not be negative"),
        ('refetch_delay = "soon"', "[monitor]: refetch_delay", "is not a duration"),
        ('retry_schedule = "5m"', "[monitor]: retry_schedule", "expected a list of durations"),
        ('retry_schedule = ["5s", "x"]', "[monitor]: retry_schedule[1]", "is not a duration"),
        ('max_response_bytes = "12 parsecs"', "[monitor]: max_response_bytes", "is not a byte"),
        ('cron = "* * *"', "[monitor]: cron", "has 3 fields; expected 5"),
        ('cron = "*/5 * * * *"\ninterval = "5m"', "[monitor]: cron", "set either interval or cron"),
        ('database = "monitor.db"', "[monitor]: database", "is not a database URL"),
        ("database = 5", "[monitor]: database", "expected a string, got an integer"),
    ],
)
def test_monitor_errors(tmp_path: Path, snippet: str, where: str, message: str) -> None:
    problem = one_problem(tmp_path, "[monitor]\n" + snippet + "\n")
    assert f": {where}: " in problem
    assert message in problem


def test_monitor_must_be_a_table(tmp_path: Path) -> None:
    assert "monitor: expected a [monitor] table, got an integer" in one_problem(
        tmp_path, "monitor = 5\n"
    )


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (('base_url = "https://aiberm.com/v1/"', ""), "base_url", "missing; add base_url ="),
        (('"https://aiberm.com/v1/"', '"ftp://aiberm.com"'), "base_url", "is not an http(s) URL"),
        (('"https://aiberm.com/v1/"', '"aiberm.com/v1"'), "base_url", "is not an http(s) URL"),
        (('"https://aiberm.com/v1/"', '"https://a.com/v1?x=1"'), "base_url", "without ?query"),
        (('"https://aiberm.com/v1/"', '"http://[::1"'), "base_url", "is not a valid URL"),
        (('"https://aiberm.com/v1/"', '"https://a.com:99999"'), "base_url", "not a valid URL"),
        (("base_url =", 'flavor = "newapi"\nbase_url ='), "flavor", 'did you mean "new-api"?'),
        (("base_url =", 'flavor = "vllm"\nbase_url ='), "flavor", "(valid: "),
        (("base_url =", "verify_tls = 1\nbase_url ="), "verify_tls", "expected true or false"),
        (("base_url =", 'ca_bundle = "nope.pem"\nbase_url ='), "ca_bundle", "does not exist"),
        (("base_url =", 'timeout = "0s"\nbase_url ='), "timeout", "greater than zero"),
    ],
)
def test_source_errors(tmp_path: Path, change: tuple[str, str], key: str, message: str) -> None:
    problem = one_problem(tmp_path, MINIMAL.replace(*change, 1))
    assert f': sources[0] "aiberm": {key}: ' in problem
    assert message in problem


def test_ca_bundle_with_verify_tls_off_is_contradictory(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    text = MINIMAL.replace("base_url =", 'ca_bundle = "ca.pem"\nverify_tls = false\nbase_url =')
    assert "ca_bundle: has no effect with verify_tls = false" in one_problem(tmp_path, text)


def test_credentials_in_base_url_are_refused_and_not_echoed(tmp_path: Path) -> None:
    text = MINIMAL.replace("https://aiberm.com", "https://user:hunter2pw@aiberm.com")
    problem = one_problem(tmp_path, text)
    assert "base_url: must not contain a user name or password" in problem
    assert "hunter2pw" not in problem


def test_token_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL
        + """
        [[tokens]]
        name = "team-b"
        source = "aibrem"
        token_env = "TEAM_A"
        channels = ["consol", "ops"]

        [[tokens]]
        name = "team-c"
        token_env = "TEAM_A"
        channels = "console"
        """,
    )
    assert len(found) == 5, found
    joined = "\n".join(found)
    assert (
        'tokens[1] "team-b": source: no [[sources]] entry is named "aibrem" (did you mean '
        '"aiberm"?); add that source or fix the name'
    ) in joined
    assert (
        'tokens[1] "team-b": channels: no [[channels]] entry is named "consol" (did you mean '
        '"console"?)'
    ) in joined
    assert 'tokens[1] "team-b": channels: no [[channels]] entry is named "ops"; ' in joined
    assert 'tokens[2] "team-c": source: missing; add source = ' in joined
    assert (
        'tokens[2] "team-c": channels: expected a list of strings like ["a", "b"], got a string'
    ) in joined


def test_channel_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        [[channels]]
        name = "a"
        type = "stdot"
        evnts = ["x"]
        whatever = 1

        [[channels]]
        name = "b"
        events = ["models.change", "token.failing"]
        models = ["gpt-*", ""]

        [[channels]]
        name = "c"
        type = "stdout"
        events = []
        exclude_models = "gpt-*"
        """,
    )
    joined = "\n".join(found)
    assert 'channels[0] "a": type: unknown channel type "stdot" (did you mean "stdout"?) ' in joined
    # The type is unknown so its own keys cannot be judged; near-misses are still caught.
    assert 'channels[0] "a": evnts: unknown key; did you mean "events"?' in joined
    assert "whatever" not in joined
    assert 'channels[1] "b": type: missing; add type = "webhook" (one of: ' in joined
    assert (
        'channels[1] "b": events: unknown event "models.change" (did you mean "models.changed"?)'
    ) in joined
    assert 'channels[1] "b": models: contains an empty pattern' in joined
    assert 'channels[2] "c": events: is empty; remove the key to receive every event' in joined
    assert 'channels[2] "c": exclude_models: expected a list of strings' in joined
    assert len(found) == 7, found


def test_names_must_be_valid_and_unique(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL
        + """
        [[sources]]
        name = "aiberm"
        base_url = "https://b.example.com"

        [[tokens]]
        name = "team a"
        source = "aiberm"
        token_env = "TEAM_A"

        [[tokens]]
        source = "aiberm"
        token_env = "TEAM_A"

        [[tokens]]
        name = ""
        source = "aiberm"
        token_env = "TEAM_A"

        [[channels]]
        name = 7
        type = "stdout"

        [[channels]]
        name = "console"
        type = "stdout"
        """,
    )
    joined = "\n".join(found)
    assert (
        'sources[1] "aiberm": name: duplicate name "aiberm" (also sources[0]); names must '
        "be unique within [[sources]]"
    ) in joined
    assert 'tokens[1]: name: "team a" is not a valid name; use letters, digits' in joined
    assert 'tokens[2]: name: missing; add name = "my-token"' in joined
    assert 'tokens[3]: name: "" is not a valid name' in joined
    assert "channels[1]: name: expected a string, got an integer" in joined
    assert 'channels[2] "console": name: duplicate name "console" (also channels[0])' in joined
    assert len(found) == 6, found


def test_entries_must_be_tables(tmp_path: Path) -> None:
    found = problems(tmp_path, 'sources = ["aiberm"]\ntokens = 5\n')
    assert any("sources[0]: expected a table, got a string" in p for p in found)
    assert any("tokens: expected [[tokens]] tables, got an integer" in p for p in found)


def test_many_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = """
    [monitor]
    interval = "soon"
    concurency = 2

    [[sources]]
    name = "aiberm"
    base_url = "ftp://aiberm.com"
    flavor = "nope"

    [[tokens]]
    name = "team-a"
    source = "missing"
    token_env = "UNSET"

    [[channels]]
    name = "hook"
    type = "webhook"
    """
    found = problems(tmp_path, text, {})
    keys = {tuple(p.split(": ")[1:3]) for p in found}
    assert keys == {
        ("[monitor]", "interval"),
        ("[monitor]", "concurency"),
        ('sources[0] "aiberm"', "flavor"),
        ('sources[0] "aiberm"', "base_url"),
        ('channels[0] "hook"', "url"),
        ('tokens[0] "team-a"', "source"),
        ('tokens[0] "team-a"', "token_env"),
    }, found
    assert len(found) == 7, found


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, '[monitor]\ninterval = "10m"\njitter = 30s\n')
    assert problem.startswith(f"{tmp_path / 'config.toml'}: line 3, column 12: TOML syntax error")
    assert "(at line" not in problem


def test_toml_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "[monitor")
    assert "TOML syntax error" in problem


def test_missing_file_directory_and_encoding(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, {})
    assert info.value.problems == [
        f"{missing}: no such config file; create one with `model-monitor init {missing}`"
    ]
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, {})
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b"[monitor]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.toml:2: not UTF-8 text"):
        load_config(binary, {})


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read the config file: Permission denied"):
        load_config(path, {})


# -- secrets: literal, env, file, $CREDENTIALS_DIRECTORY --------------------------------


def token_config(tmp_path: Path, form: str, env: dict[str, str] | None = None) -> Secret:
    text = MINIMAL.replace('token_env = "TEAM_A"', form)
    return load(tmp_path, text, env or {}).tokens[0].secret


def test_secret_forms(tmp_path: Path) -> None:
    assert token_config(tmp_path, 'token = "sk-literal"').reveal() == "sk-literal"
    assert token_config(tmp_path, 'token_env = "T"', {"T": "sk-env"}).reveal() == "sk-env"
    (tmp_path / "tok").write_text("sk-file\n")
    assert token_config(tmp_path, 'token_file = "tok"').reveal() == "sk-file"
    assert token_config(tmp_path, f'token_file = "{tmp_path / "tok"}"').reveal() == "sk-file"


def test_secret_file_strips_exactly_one_trailing_newline(tmp_path: Path) -> None:
    for content, expected in [("a1b2\n", "a1b2"), ("a1b2\r\n", "a1b2"), ("a1b2", "a1b2")]:
        (tmp_path / "tok").write_text(content, newline="")
        assert token_config(tmp_path, 'token_file = "tok"').reveal() == expected
    (tmp_path / "tok").write_text("a1b2\n\n")
    assert "control character" in one_problem(
        tmp_path, MINIMAL.replace('token_env = "TEAM_A"', 'token_file = "tok"')
    )


def test_secret_file_prefers_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "tok").write_text("from-credentials\n")
    (tmp_path / "tok").write_text("next-to-config\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert token_config(tmp_path, 'token_file = "tok"', env).reveal() == "from-credentials"
    # Not in $CREDENTIALS_DIRECTORY: fall back to the config's directory.
    (credentials / "tok").unlink()
    assert token_config(tmp_path, 'token_file = "tok"', env).reveal() == "next-to-config"
    (tmp_path / "tok").unlink()
    problem = one_problem(
        tmp_path, MINIMAL.replace('token_env = "TEAM_A"', 'token_file = "tok"'), env
    )
    looked = f"{credentials / 'tok'} or {credentials / 'credentials_tok'} or {tmp_path / 'tok'}"
    assert f"token_file: no such file: {looked}" in problem


def test_secret_file_found_in_a_credentials_directory_loaded_whole(tmp_path: Path) -> None:
    """LoadCredential=credentials:/etc/model-monitor/credentials hands each file of that
    directory over as credentials_FILENAME (a subdirectory's as credentials_DIR_FILENAME)."""
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "credentials_tok").write_text("from-the-directory\n")
    (credentials / "credentials_gw_tok").write_text("from-a-subdirectory\n")
    (tmp_path / "tok").write_text("next-to-config\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert token_config(tmp_path, 'token_file = "tok"', env).reveal() == "from-the-directory"
    assert token_config(tmp_path, 'token_file = "gw/tok"', env).reveal() == "from-a-subdirectory"
    # A LoadCredential= line of its own for the name wins over the directory's copy.
    (credentials / "tok").write_text("own-line\n")
    assert token_config(tmp_path, 'token_file = "tok"', env).reveal() == "own-line"


def test_secret_errors(tmp_path: Path) -> None:
    cases = {
        'token_env = "UNSET"': 'token_env: environment variable "UNSET" is not set; export it',
        'token_env = "EMPTY"': 'token_env: environment variable "EMPTY" is empty',
        'token_env = "NL"': "token_env: the secret contains a newline or control character",
        'token_env = "not a name"': "token_env: is not an environment variable name",
        "token_env = 5": "token_env: expected a string, got an integer",
        'token_file = "nope"': f"token_file: no such file: {tmp_path / 'nope'}",
        'token_file = "."': f"token_file: {tmp_path} is a directory, not a file",
        'token = ""': "token: the secret is empty",
        'token = "a"\ntoken_env = "B"': "token: set only one of token, token_env",
        "": "token: missing; add token_env = ",
    }
    env = {"EMPTY": "", "NL": "sk-a\nsk-b"}
    for form, message in cases.items():
        problem = one_problem(tmp_path, MINIMAL.replace('token_env = "TEAM_A"', form), env)
        assert f'tokens[0] "team-a": {message}' in problem, (form, problem)


def test_channel_and_database_secrets_have_env_and_file_forms(tmp_path: Path) -> None:
    (tmp_path / "hook-url").write_text("https://hooks.example.com/abc\n")
    text = """
    [monitor]
    database_env = "DB_URL"

    [[channels]]
    name = "hook"
    type = "webhook"
    url_file = "hook-url"
    secret_env = "HOOK_SECRET"
    """
    env = {"DB_URL": "postgresql+psycopg://mm:pw@db/mm", "HOOK_SECRET": "whsec_abc"}
    config = load(tmp_path, text, env)
    assert config.monitor.database == "postgresql+psycopg://mm:pw@db/mm"
    options = config.channels[0].options
    assert options["url"] == Secret("https://hooks.example.com/abc")
    assert options["secret"] == Secret("whsec_abc")
    assert "hooks.example.com" not in repr(config.channels)
    found = problems(tmp_path, text.replace("secret_env", "secret = 'x'\nsecret_env"), {})
    assert any('channels[0] "hook": secret: set only one of secret, secret_env' in p for p in found)
    unset = '[monitor]: database_env: environment variable "DB_URL" is not set'
    assert any(unset in p for p in found)


# -- the canary: secrets never leak ----------------------------------------------------


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text
        assert CANARY[3:] not in text  # not even the part after the well-known prefix


def test_canary_never_appears_in_a_loaded_config(tmp_path: Path) -> None:
    (tmp_path / "canary").write_text(CANARY + "\n")
    env = {"CANARY": CANARY}
    for form in (f'token = "{CANARY}"', 'token_env = "CANARY"', 'token_file = "canary"'):
        config = load(tmp_path, MINIMAL.replace('token_env = "TEAM_A"', form), env)
        assert config.tokens[0].secret.reveal() == CANARY
        assert_no_canary(repr(config), str(config), repr(config.tokens), str(config.tokens[0]))


@pytest.mark.parametrize(
    "broken",
    [
        f'token = "{CANARY}"\ntoken_env = "CANARY"',  # two forms at once
        f'token_env = "{CANARY}"',  # the secret pasted where a variable name belongs
        f'token_file = "{CANARY}"',  # ... or where a path belongs
        f'token_env = "TEAM_A"\ntokn = "{CANARY}"',  # an unknown key holding it
        f'token_env = "TEAM_A"\nchannels = "{CANARY}"',  # wrong type
        f'token_env = "TEAM_A"\nchannels = ["{CANARY}"]',  # wrong reference
        'token_env = "CANARY_NL"',  # a resolved secret with a problem
        'token_file = "canary_nl"',
        f'token = "{CANARY}\\n"',
    ],
)
def test_canary_never_appears_in_errors(tmp_path: Path, broken: str) -> None:
    (tmp_path / "canary_nl").write_text(CANARY + "\n\n")
    env = {"CANARY": CANARY, "CANARY_NL": CANARY + "\n", "TEAM_A": "sk-a"}
    text = (
        MINIMAL.replace('token_env = "TEAM_A"', broken)
        + f'\n[monitor]\ninterval = "{CANARY}"\ndatabase = "{CANARY}"\n'
        + f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{CANARY}"\n'
        + f'events = ["{CANARY}"]\n'
        + f'[[sources]]\nname = "b"\nbase_url = "https://u:{CANARY}@h"\nflavor = "{CANARY}"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env)
    assert len(info.value.problems) >= 5
    assert_no_canary(
        str(info.value),
        repr(info.value),
        "".join(traceback.format_exception(info.value)),
        *info.value.problems,
    )


def test_canary_never_appears_in_a_syntax_error(tmp_path: Path) -> None:
    text = MINIMAL.replace('token_env = "TEAM_A"', f'token = "{CANARY}\nname = 1')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), {})
    assert "TOML syntax error" in str(info.value)
    assert_no_canary(str(info.value), "".join(traceback.format_exception(info.value)))


# -- discovery -------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fake filesystem layout: every candidate directory, none with a config yet."""
    layout = {name: tmp_path / name for name in ("cli", "env", "sysd1", "sysd2", "home", "etc")}
    for path in layout.values():
        path.mkdir()
    monkeypatch.setattr(discovery, "SYSTEM_CONFIG", layout["etc"] / "config.toml")
    return layout


def test_find_config_lookup_order(dirs: dict[str, Path]) -> None:
    home = dirs["home"]
    environ = {
        "HOME": str(home),
        "CONFIGURATION_DIRECTORY": f"{dirs['sysd1']}:{dirs['sysd2']}",
    }
    with pytest.raises(ConfigError) as info:
        find_config(None, environ)
    message = str(info.value)
    for place in (
        dirs["sysd1"] / "config.toml",
        dirs["sysd2"] / "config.toml",
        home / ".config/model-monitor/config.toml",
        dirs["etc"] / "config.toml",
    ):
        assert str(place) in message
    assert "model-monitor init" in message

    (dirs["etc"] / "config.toml").touch()
    assert find_config(None, environ) == dirs["etc"] / "config.toml"
    xdg_default = home / ".config/model-monitor/config.toml"
    xdg_default.parent.mkdir(parents=True)
    xdg_default.touch()
    assert find_config(None, environ) == xdg_default
    xdg = dirs["home"] / "xdg"
    (xdg / "model-monitor").mkdir(parents=True)
    (xdg / "model-monitor/config.toml").touch()
    assert find_config(None, {**environ, "XDG_CONFIG_HOME": str(xdg)}) == (
        xdg / "model-monitor/config.toml"
    )
    # The first of several configuration directories that holds a config.toml.
    (dirs["sysd2"] / "config.toml").touch()
    assert find_config(None, environ) == dirs["sysd2"] / "config.toml"
    (dirs["sysd1"] / "config.toml").touch()
    assert find_config(None, environ) == dirs["sysd1"] / "config.toml"
    # Explicit choices win, and are returned even when missing (load_config says so).
    env_path = dirs["env"] / "mm.toml"
    environ["MODEL_MONITOR_CONFIG"] = str(env_path)
    assert find_config(None, environ) == env_path
    assert find_config(str(dirs["cli"] / "x.toml"), environ) == dirs["cli"] / "x.toml"


def test_xdg_relative_or_empty_values_are_ignored(dirs: dict[str, Path]) -> None:
    home = dirs["home"]
    for xdg in ("", "relative/dir"):
        places = config_candidates(None, {"HOME": str(home), "XDG_CONFIG_HOME": xdg})
        assert places == [
            ("$XDG_CONFIG_HOME", home / ".config/model-monitor/config.toml"),
            ("system", dirs["etc"] / "config.toml"),
        ]


def test_default_config_path(tmp_path: Path) -> None:
    assert default_config_path({"HOME": str(tmp_path)}) == (
        tmp_path / ".config/model-monitor/config.toml"
    )
    assert default_config_path({"MODEL_MONITOR_CONFIG": "/x/y.toml"}) == Path("/x/y.toml")


def test_default_database_url(tmp_path: Path) -> None:
    assert default_database_url({"STATE_DIRECTORY": "/var/lib/model-monitor:/var/lib/other"}) == (
        "sqlite:////var/lib/model-monitor/monitor.db"
    )
    assert default_database_url({"XDG_STATE_HOME": "/xdg/state", "HOME": str(tmp_path)}) == (
        "sqlite:////xdg/state/model-monitor/monitor.db"
    )
    assert default_database_url({"HOME": str(tmp_path)}) == (
        f"sqlite:///{tmp_path}/.local/state/model-monitor/monitor.db"
    )
    assert default_database_path({"HOME": str(tmp_path)}).is_absolute()
    assert not (tmp_path / ".local").exists()  # nothing created


# -- shipped configs -------------------------------------------------------------------

STARTER_ENV = {"MODEL_MONITOR_TOKEN_TEAM_A": "sk-a", "MODEL_MONITOR_TOKEN_TEAM_B": "sk-b"}
EXAMPLE_ENV = {
    "AIBERM_TEAM_A": "sk-a",
    "AIBERM_TEAM_B": "sk-b",
    "OPENAI_API_KEY": "sk-o",
    "AUDIT_HOOK_URL": "https://hooks.example.com/mm",
    "AUDIT_HOOK_SECRET": "whsec_c2VjcmV0",
}


def test_starter_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    write_starter_config(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == starter_config()
    config = load_config(path, STARTER_ENV)
    assert [t.name for t in config.tokens] == ["team-a", "team-b"]
    assert [c.type for c in config.channels] == ["stdout"]
    assert config.sources[0].flavor == "new-api"
    with pytest.raises(ConfigError, match="already exists; not overwriting it"):
        write_starter_config(path)


def test_starter_config_webhook_block_loads_when_uncommented(tmp_path: Path) -> None:
    text = starter_config()
    block = text[text.index("# [[channels]]") :]
    uncommented = text.replace(block, re.sub(r"(?m)^# ", "", block))
    hook = {"OPS_WEBHOOK_URL": "https://x.example.com", "OPS_WEBHOOK_SECRET": "whsec_c2VjcmV0"}
    env = {**STARTER_ENV, **hook}
    config = load_config(write(tmp_path, uncommented), env)
    assert [c.type for c in config.channels] == ["stdout", "webhook"]


def test_starter_config_reports_unset_variables(tmp_path: Path) -> None:
    found = problems(tmp_path, starter_config(), {})
    assert len(found) == 2
    assert '"MODEL_MONITOR_TOKEN_TEAM_A" is not set' in found[0]


def test_example_config_loads() -> None:
    config = load_config(REPO / "config.example.toml", EXAMPLE_ENV)
    assert {s.name for s in config.sources} == {"aiberm", "openai"}
    assert config.channel("audit-hook").options["url"] == Secret("https://hooks.example.com/mm")
    assert config.tokens[0].channels == ("console", "audit-hook")


def test_example_config_documents_every_key() -> None:
    text = (REPO / "config.example.toml").read_text()
    keys = {*MONITOR_KEYS, *SOURCE_KEYS, *TOKEN_KEYS, *CHANNEL_KEYS}
    keys |= {"database_env", "database_file", "token_env", "token_file"}
    documented = set(re.findall(r"(?m)^#? ?([a-z_]+) = ", text))
    assert keys <= documented, keys - documented
    for cls in CHANNELS.values():
        for key, option in cls.OPTIONS.items():
            forms = {key, f"{key}_env", f"{key}_file"} if option.kind == "secret" else {key}
            assert cls is FakeChannel or forms & documented, (cls, key)
    for name, cls in CHANNELS.items():
        if cls is not FakeChannel:
            assert f'type = "{name}"' in text, name


# -- budget and expiry ------------------------------------------------------------------------

BUDGET_CONFIG = """
[monitor]
budget_interval = "0s"
expiry_warning = ["1d", "14d", "3d"]
quota_warning = 5

[[sources]]
name = "gw"
base_url = "https://gw.example/v1"
budget_interval = "2h"
budget_rate_limit = 10

[[tokens]]
name = "team-a"
source = "gw"
token_env = "TEAM_A"
group = "vip"
quota_warning = "25%"

[[tokens]]
name = "team-b"
source = "gw"
token_env = "TEAM_A"
expiry_warning = []
"""


def test_budget_settings_and_token_overrides(tmp_path: Path) -> None:
    config = load(tmp_path, BUDGET_CONFIG)
    source = config.source("gw")
    assert (config.monitor.budget_interval, config.budget_interval(source)) == (0.0, 7200.0)
    assert source.budget_rate_limit == 10
    a, b = config.tokens
    assert a.group == "vip" and b.group is None
    policy_a, policy_b = config.budget_policy(a), config.budget_policy(b)
    assert policy_a.expiry == (14 * 86400.0, 3 * 86400.0, 86400.0)  # sorted, nearest last
    assert str(policy_a.quota.percent) == "25" and policy_a.quota.amount is None
    assert policy_b.expiry == () and str(policy_b.quota.amount) == "5"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('quota_warning = "ten percent"', "quota_warning"),
        ('quota_warning = "150%"', "quota_warning"),
        ("quota_warning = -1", "quota_warning"),
        ("quota_warning = true", "quota_warning"),
        ('expiry_warning = ["0s"]', "greater than 0"),
        ('expiry_warning = "7d"', "list of durations"),
        ('budget_interval = "soon"', "budget_interval"),
    ],
)
def test_budget_mistakes_name_the_key(tmp_path: Path, line: str, message: str) -> None:
    monitor = BUDGET_CONFIG[: BUDGET_CONFIG.index("[[sources]]")]
    text = BUDGET_CONFIG.replace(monitor, f"\n[monitor]\n{line}\n\n")
    found = problems(tmp_path, text)
    assert any("[monitor]" in p and message in p for p in found), found


def test_a_channel_may_take_only_some_change_types(tmp_path: Path) -> None:
    text = MINIMAL.replace('type = "stdout"', 'type = "stdout"\nchanges = ["price_changed"]')
    assert load(tmp_path, text).channels[0].changes == ("price_changed",)
    wrong = MINIMAL.replace('type = "stdout"', 'type = "stdout"\nchanges = ["price_change"]')
    (problem,) = problems(tmp_path, wrong)
    assert 'channels[0] "console": changes:' in problem and "price_changed" in problem


# -- probes ----------------------------------------------------------------------------------

PROBE_CONFIG = """
[[sources]]
name = "gw"
base_url = "https://gw.example/v1"
{source}

[[tokens]]
name = "team-a"
source = "gw"
token_env = "TEAM_A"
{token}
"""


def test_probes_are_off_by_default_and_every_key_is_read(tmp_path: Path) -> None:
    config = load(tmp_path, PROBE_CONFIG.format(source="", token=""))
    source, (token,) = config.source("gw"), config.tokens
    assert not source.probe and token.probe
    assert (source.probe_interval, source.probe_delay, source.probe_recheck) == (
        86400.0,
        60.0,
        3600.0,
    )
    assert (source.probe_budget, source.probe_per_cycle, source.probe_models) == (50, 20, ())
    text = PROBE_CONFIG.format(
        source='probe = true\nprobe_interval = "12h"\nprobe_delay = "0s"\nprobe_recheck = "5m"\n'
        'probe_budget = 10\nprobe_per_cycle = 3\nprobe_models = ["gpt-image-*"]',
        token="probe = false",
    )
    config = load(tmp_path, text)
    source, (token,) = config.source("gw"), config.tokens
    assert source.probe and not token.probe
    assert (source.probe_interval, source.probe_delay, source.probe_recheck) == (43200.0, 0, 300.0)
    assert (source.probe_budget, source.probe_per_cycle, source.probe_models) == (
        10,
        3,
        ("gpt-image-*",),
    )


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("probe = 1", "probe", "true or false"),
        ("probe_budget = 0", "probe_budget", "at least 1"),
        ('probe_per_cycle = "many"', "probe_per_cycle", "integer"),
        ('probe_interval = "0s"', "probe_interval", "0"),
        ('probe_delay = "soon"', "probe_delay", "duration"),
        ('probe_models = [""]', "probe_models", "empty pattern"),
        ('probe = true\nflavor = "gemini"', "probe", "cannot be probed"),
    ],
)
def test_probe_mistakes_name_the_table_and_key(
    tmp_path: Path, line: str, key: str, message: str
) -> None:
    found = one_problem(tmp_path, PROBE_CONFIG.format(source=line, token=""))
    assert f'sources[0] "gw": {key}: ' in found and message in found, found
