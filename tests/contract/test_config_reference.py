"""docs/config.md is generated from the key table, and the table says what the loader does.

The reference is rendered from monitor/config/options.py (the loader accepts exactly those
keys), each channel class's OPTIONS and the flavor registry; the checked-in file must be
that rendering. Each default the table states is checked against the loader: a config
that sets the key to its documented default loads to the same values as one without it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.reference import COMMAND, render
from monitor.config import load, options
from monitor.config.load import load_config
from monitor.config.model import ChannelConfig, Config, MonitorSettings, SourceConfig, TokenConfig
from monitor.runtime.catalogue import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
TOKEN = "sk-reference-0123456789abcdef"
ENV = {"DOCS_TOKEN": TOKEN}

# A config every key is added to, one at a time: one entry of each kind.
MINIMAL = {
    "monitor": {},
    "sources": {"name": "gw", "base_url": "https://gw.example/v1"},
    "tokens": {"name": "team-a", "source": "gw", "token_env": "DOCS_TOKEN"},
    "channels": {"name": "console", "type": "stdout"},
}
TABLES = {
    "monitor": options.MONITOR,
    "sources": options.SOURCES,
    "tokens": options.TOKENS,
    "channels": options.CHANNELS,
}
# Attributes of the loaded values that are named differently from their key.
ATTRIBUTE = {("tokens", "token"): "secret"}
# What a secret key needs beside it to load.
COMPANIONS: dict[str, dict[str, Any]] = {
    "listen_password": {"listen": "127.0.0.1:9464", "listen_username": "ops"},
}
SECRET_VALUES = {"database": "sqlite:////tmp/reference.db"}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def secret_base(key: str) -> str:
    return key.removesuffix("_env").removesuffix("_file")


def write(tmp_path: Path, extra: Mapping[str, Mapping[str, Any]]) -> Path:
    """MINIMAL with `extra` keys added to its tables."""
    lines = []
    for table, keys in MINIMAL.items():
        added = extra.get(table, {})
        replaced = {secret_base(k) for k in added}  # token_file replaces token_env
        merged = {k: v for k, v in keys.items() if secret_base(k) not in replaced} | added
        lines.append("[monitor]" if table == "monitor" else f"[[{table}]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in merged.items()]
        lines.append("")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    return path


def loaded(tmp_path: Path, extra: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    return load_config(write(tmp_path, extra or {}), CATALOGUE, ENV)


def entry(config: Config, table: str) -> Any:
    return {
        "monitor": config.monitor,
        "sources": config.sources[0],
        "tokens": config.tokens[0],
        "channels": config.channels[0],
    }[table]


def test_docs_config_md_is_the_generated_reference() -> None:
    checked_in = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert checked_in == render(), (
        f"docs/config.md is out of date; regenerate it with `{COMMAND}` and commit the result"
    )


def test_the_loader_accepts_exactly_the_keys_of_the_table() -> None:
    accepted = (load.MONITOR_KEYS, load.SOURCE_KEYS, load.TOKEN_KEYS, load.CHANNEL_KEYS)
    assert accepted == tuple(options.names(keys) for keys in TABLES.values())


@pytest.mark.parametrize(
    ("table", "settings", "extra"),
    [
        ("monitor", MonitorSettings, set()),
        ("sources", SourceConfig, set()),
        ("tokens", TokenConfig, set()),
        ("channels", ChannelConfig, {"options"}),  # each type's own keys: its OPTIONS
    ],
)
def test_every_setting_of_the_loaded_config_has_a_documented_key(
    table: str, settings: type, extra: set[str]
) -> None:
    documented = {ATTRIBUTE.get((table, k.name), k.name) for k in TABLES[table]}
    # Fields set by the constructor only (a channel's parsed `window`) are no settings.
    fields = {f.name for f in dataclasses.fields(settings) if f.init}
    assert fields - extra == documented


KEYS = [pytest.param(t, k, id=f"{t}.{k.name}") for t, keys in TABLES.items() for k in keys]


@pytest.mark.parametrize(("table", "key"), KEYS)
def test_each_documented_default_is_what_the_loader_applies(
    table: str, key: options.Key, tmp_path: Path
) -> None:
    attribute = ATTRIBUTE.get((table, key.name), key.name)
    unset = getattr(entry(loaded(tmp_path), table), attribute)
    if key.required:
        return  # no default: leaving it out is an error (tests/test_config.py)
    if key.default is None:
        assert unset in (None, (), {}), "a key documented without a default value has none"
        return
    given = getattr(entry(loaded(tmp_path, {table: {key.name: key.default}}), table), attribute)
    assert given == unset, f"{table}.{key.name} = {toml_value(key.default)} is not the default"


SECRETS = [
    pytest.param(t, k, id=f"{t}.{k.name}") for t, keys in TABLES.items() for k in keys if k.secret
]


@pytest.mark.parametrize(("table", "key"), SECRETS)
def test_keys_documented_as_secrets_take_the_env_and_file_forms(
    table: str, key: options.Key, tmp_path: Path
) -> None:
    value = SECRET_VALUES.get(key.name, "s3cret-value")
    (tmp_path / "secret.txt").write_text(value + "\n")
    companions = COMPANIONS.get(key.name, {})
    attribute = ATTRIBUTE.get((table, key.name), key.name)
    for form, given in ((f"{key.name}_env", "DOCS_VALUE"), (f"{key.name}_file", "secret.txt")):
        path = write(tmp_path, {table: {**companions, form: given}})
        config = load_config(path, CATALOGUE, {**ENV, "DOCS_VALUE": value})
        found = getattr(entry(config, table), attribute)
        assert (found if isinstance(found, str) else found.reveal()) == value, form
