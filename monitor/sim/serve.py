"""`model-monitor sim`: the gateway simulator on its own, driven by a file you edit.

To try a config, the daemon and the status pages without a real gateway. The state
(the wire format, the models lists, the tokens, any faults, the prices and how calls
to each model are answered) lives in a small TOML file; the simulator reads it again
whenever it is saved, so changing what a token may use, expiring it, breaking the
gateway or a model is an edit away. A file that does not parse,
or names something unknown, is reported on stderr and the previous state is kept.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config.durations import parse_duration
from monitor.core.budget import QUOTA_PER_USD
from monitor.sim.calls import VERDICTS
from monitor.sim.gateway import Fault, GatewaySimulator, make_model
from monitor.sim.wire import WIRE_FORMATS


class StateError(ValueError):
    """The state file says something the simulator cannot do; the message names where."""


# kind -> (constructor, the keys it takes besides kind/token)
FAULTS: dict[str, tuple[Callable[..., Fault], tuple[str, ...]]] = {
    "html": (lambda status=502: Fault.html(status), ("status",)),
    "http": (
        lambda status=500, message="": Fault.http(status, message=message),
        ("status", "message"),
    ),
    "panic": (Fault.panic, ()),
    "overloaded": (Fault.overloaded, ()),
    "rate_limited": (lambda: Fault.rate_limited(), ()),
    "success_false": (
        lambda message="获取用户分组失败": Fault.success_false(message),
        ("message",),
    ),
    "truncated": (lambda after=64: Fault.truncated(after), ("after",)),
    "invalid_utf8": (Fault.invalid_utf8, ()),
    "slow": (lambda seconds=30.0: Fault.slow(seconds), ("seconds",)),
    "disconnect": (Fault.disconnect, ()),
}


@dataclass(frozen=True)
class SimToken:
    name: str
    value: str
    group: str = "default"
    models: tuple[dict[str, Any], ...] | None = None
    expired: bool = False
    # Its account, for budgets (new-api's usage route): dollars granted and spent, and how
    # long until it expires from when the file is applied (None: as the simulator has it).
    quota: float | None = None
    used: float | None = None
    expires_in: float | None = None


@dataclass(frozen=True)
class SimState:
    flavor: str = "new-api"
    groups: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    tokens: tuple[SimToken, ...] = ()
    faults: tuple[tuple[Fault, str | None], ...] = ()  # (fault, token name or None: all)
    # new-api's /api/pricing: model -> model_ratio, group -> ratio (empty: the default list)
    model_ratios: Mapping[str, float | str] = field(default_factory=dict)
    group_ratios: Mapping[str, float | str] = field(default_factory=dict)
    # model -> how its calls are answered for every token (`GatewaySimulator.set_verdict`)
    verdicts: Mapping[str, str] = field(default_factory=dict)


STARTER_MODELS = (
    ("gpt-4o", ["openai"], "openai"),
    ("gpt-4o-mini", ["openai"], "openai"),
    ("claude-sonnet-4-5", ["anthropic", "openai"], "claude"),
    ("gemini-2.5-pro", ["gemini", "openai"], "google gemini"),
    ("text-embedding-3-small", ["embeddings"], "openai"),
)


def starter_state_text(token_count: int, flavor: str = "new-api") -> str:
    """A commented state file with `token_count` tokens of fresh random values."""
    models = "\n".join(
        f'  {{ id = "{i}", types = {json.dumps(t)}, owned_by = "{o}" }},'
        for i, t, o in STARTER_MODELS
    )
    tokens = "\n".join(
        f'[[tokens]]\nname = "team-{n}"\nvalue = "sk-sim-{secrets.token_hex(12)}"\n'
        'group = "default"\n# expired = true          # answer 401, like an expired token\n'
        '# models = ["gpt-4o"]     # its own allow-list instead of its group\'s\n'
        "# quota = 100             # dollars granted (new-api's usage route)\n"
        "# used = 95               # dollars spent: below 10% left warns token.quota_low\n"
        '# expires_in = "5d"       # from when the file is saved: within 7 days warns\n'
        for n in range(1, token_count + 1)
    )
    kinds = " | ".join(FAULTS)
    verdicts = " | ".join(sorted(VERDICTS))
    return f"""\
# The state of `model-monitor sim`. Save this file and the simulator applies it within a
# second; a mistake is reported on its stderr and the previous state kept.

# The API the simulator speaks: {" | ".join(WIRE_FORMATS)}
flavor = "{flavor}"

# Model lists by group. A model is an id, or a table with id, types (endpoint types)
# and owned_by.
[groups]
default = [
{models}
]

{tokens}
# Faults apply to every models request (of one token, with token = "team-1") until
# removed from this file. kind: {kinds}
# [[faults]]
# kind = "html"
# status = 502

# new-api's prices (/api/pricing): a model's ratio (1.25 is $2.50 per 1M input tokens)
# and groups' ratios. Without them every listed model is priced at 1.25.
# [model_ratios]
# gpt-4o = 1.25
# [group_ratios]
# default = 1

# How calls to a model (POST /v1/chat/completions, /v1/embeddings, /v1/messages: what a
# probe sends) are answered, for every token. Without a verdict, a model the token lists
# answers ok and any other no_channel. Quote ids with dots: "gpt-4.1" = "unpriced".
# verdict: {verdicts}
# [verdicts]
# gpt-4o-mini = "no_channel"
"""


def parse_state(text: str, where: str = "state file") -> SimState:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StateError(f"{where}: not valid TOML: {exc}") from None
    flavor = data.get("flavor", "new-api")
    if flavor not in WIRE_FORMATS:
        raise StateError(f"{where}: flavor: one of {', '.join(WIRE_FORMATS)}, not {flavor!r}")
    groups_data = data.get("groups", {})
    if not isinstance(groups_data, dict):
        raise StateError(f"{where}: [groups] must be a table of model lists")
    groups = {
        name: _models(value, f"{where}: groups.{name}") for name, value in groups_data.items()
    }
    tokens = tuple(
        _token(entry, f"{where}: tokens[{i}]", groups)
        for i, entry in enumerate(_tables(data, "tokens", where))
    )
    names = {t.name for t in tokens}
    faults = tuple(
        _fault(entry, f"{where}: faults[{i}]", names)
        for i, entry in enumerate(_tables(data, "faults", where))
    )
    ratios = {}
    for key in ("model_ratios", "group_ratios"):
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(
            isinstance(v, int | float | str) and not isinstance(v, bool) for v in table.values()
        ):
            raise StateError(f"{where}: [{key}] maps names to numbers, e.g. gpt-4o = 1.25")
        ratios[key] = table
    verdicts = data.get("verdicts", {})
    if not isinstance(verdicts, dict) or not all(
        isinstance(v, str) and v in VERDICTS for v in verdicts.values()
    ):
        raise StateError(
            f"{where}: [verdicts] maps model ids to one of {', '.join(sorted(VERDICTS))}, "
            'e.g. gpt-4o = "no_channel" (quote an id with dots: "gpt-4.1" = "ok")'
        )
    return SimState(
        flavor,
        groups,
        tokens,
        faults,
        ratios["model_ratios"],
        ratios["group_ratios"],
        verdicts,
    )


def _tables(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise StateError(f"{where}: {key} must be written as [[{key}]] tables")
    return value


def _models(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise StateError(f"{where}: must be a list of models")
    models = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            models.append(make_model(item))
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            types = item.get("types", ["openai"])
            owned_by = item.get("owned_by", "openai")
            if not isinstance(types, list) or not isinstance(owned_by, str):
                raise StateError(f"{where}[{i}]: types is a list of strings, owned_by a string")
            models.append(make_model(item["id"], types, owned_by=owned_by))
        else:
            raise StateError(f"{where}[{i}]: a model is an id or a table with an id")
    return tuple(models)


def _token(entry: Mapping[str, Any], where: str, groups: Mapping[str, Any]) -> SimToken:
    name, value = entry.get("name"), entry.get("value")
    if not isinstance(name, str) or not isinstance(value, str) or not value.strip():
        raise StateError(f"{where}: needs name and value (the token's secret)")
    group = entry.get("group", "default")
    if group not in groups:
        raise StateError(f"{where}: group {group!r} is not in [groups]")
    models = entry.get("models")
    account: dict[str, float | None] = {}
    for key in ("quota", "used"):
        amount = entry.get(key)
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
            raise StateError(f"{where}: {key} is a number of dollars, e.g. {key} = 100")
        account[key] = None if amount is None else float(amount)
    expires_in = entry.get("expires_in")
    try:
        account["expires_in"] = None if expires_in is None else parse_duration(expires_in)
    except ValueError as exc:
        raise StateError(f'{where}: expires_in: {exc}; write e.g. expires_in = "5d"') from None
    return SimToken(
        name,
        value,
        group,
        None if models is None else _models(models, f"{where}.models"),
        bool(entry.get("expired", False)),
        **account,
    )


def _fault(entry: Mapping[str, Any], where: str, tokens: set[str]) -> tuple[Fault, str | None]:
    kind = entry.get("kind")
    if kind not in FAULTS:
        raise StateError(f"{where}: kind: one of {', '.join(FAULTS)}, not {kind!r}")
    build, keys = FAULTS[kind]
    unknown = sorted(set(entry) - {"kind", "token", *keys})
    if unknown:
        raise StateError(
            f"{where}: {kind} takes {', '.join(keys) or 'no options'}, not {unknown[0]}"
        )
    token = entry.get("token")
    if token is not None and token not in tokens:
        raise StateError(f"{where}: token {token!r} is not one of the [[tokens]]")
    try:
        fault = build(**{k: entry[k] for k in keys if k in entry})
    except (TypeError, ValueError) as exc:
        raise StateError(f"{where}: {exc}") from None
    return fault, token


def apply(sim: GatewaySimulator, state: SimState) -> None:
    """Make the running simulator serve `state` (models, tokens, faults, prices, verdicts)."""
    sim.flavor = state.flavor
    for name, models in state.groups.items():
        sim.set_group(name, models)
    values = {t.name: t.value for t in state.tokens}
    for token in state.tokens:
        sim.add_token(token.value, token.models, group=token.group)
        if token.expired:
            sim.expire_token(token.value)
        if token.quota is not None or token.used is not None:
            sim.set_usage(
                token.value,
                granted=None if token.quota is None else round(token.quota * int(QUOTA_PER_USD)),
                used=None if token.used is None else round(token.used * int(QUOTA_PER_USD)),
            )
        if token.expires_in is not None:
            sim.set_usage(token.value, expires_at=int(time.time() + token.expires_in))
    if state.model_ratios:
        sim.set_pricing(
            [{"model_name": m, "model_ratio": r} for m, r in state.model_ratios.items()],
            dict(state.group_ratios) or None,
        )
    sim.clear_faults()
    for fault, token_name in state.faults:
        sim.inject(fault, values[token_name] if token_name else None, times=None)
    sim.clear_verdicts()  # a verdict removed from the file is gone
    for model, verdict in state.verdicts.items():
        sim.set_verdict(model, verdict)


def monitor_config(sim: GatewaySimulator, state: SimState, database: str | None) -> str:
    """A model-monitor config that polls the simulator (tokens inline: they are fake)."""
    lines = [
        "# Polls `model-monitor sim`. Its tokens are fake, so they are written inline.",
        "[monitor]",
    ]
    if database:
        lines.append(f'database = "{database}"')
    lines += ['interval = "30s"', 'jitter = "0s"', 'listen = "127.0.0.1:9464"', ""]
    lines += [
        "[[sources]]",
        'name = "sim"',
        f'base_url = "{sim.base_url}"',
        f'flavor = "{state.flavor}"',
        "",
    ]
    for token in state.tokens:
        lines += [
            "[[tokens]]",
            f'name = "{token.name}"',
            'source = "sim"',
            f'token = "{token.value}"',
            "",
        ]
    lines += ["[[channels]]", 'name = "terminal"', 'type = "stdout"', ""]
    return "\n".join(lines)


def serve(
    state_path: Path,
    *,
    host: str,
    port: int,
    tokens: int,
    flavor: str,
    config_out: Path | None,
    out: Any = sys.stdout,
    stop: threading.Event | None = None,
) -> None:
    """Run until `stop` is set (or Ctrl-C), re-reading `state_path` when it changes."""
    if not state_path.exists():
        state_path.write_text(starter_state_text(tokens, flavor), encoding="utf-8")
    state = parse_state(state_path.read_text(encoding="utf-8"), str(state_path))
    sim = GatewaySimulator(flavor=state.flavor, host=host, port=port)
    stop = stop or threading.Event()
    with sim:
        apply(sim, state)
        text = monitor_config(sim, state, None)
        if config_out is not None:
            config_out.write_text(text, encoding="utf-8")
        print(f"simulated {state.flavor} gateway: {sim.base_url}", file=out, flush=True)
        print(f"state: {state_path} (edit and save it to change the gateway)", file=out)
        if config_out is not None:
            print(f"config for model-monitor: {config_out}", file=out)
            print(f"  model-monitor --config {config_out} check", file=out)
        print("tokens: " + ", ".join(t.name for t in state.tokens), file=out, flush=True)
        seen = os.stat(state_path).st_mtime_ns
        while not stop.wait(0.25):
            try:
                mtime = os.stat(state_path).st_mtime_ns
            except OSError:
                continue
            if mtime == seen:
                continue
            seen = mtime
            try:
                new = parse_state(state_path.read_text(encoding="utf-8"), str(state_path))
            except (StateError, OSError, UnicodeDecodeError) as exc:
                print(f"error: {exc}; keeping the previous state", file=sys.stderr, flush=True)
                continue
            if new.flavor != state.flavor and config_out is not None:
                print("note: the flavor changed; update the config's flavor too", file=out)
            apply(sim, new)
            state = new
            print(
                f"state applied: {len(new.tokens)} token(s), {len(new.faults)} fault(s)",
                file=out,
                flush=True,
            )
