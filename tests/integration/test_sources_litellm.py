"""The litellm flavor over loopback: the simulator's LiteLLM proxy, "No connected db."
as an auth failure, and checks through the pipeline into a database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import ErrorKind, FetchError, FetchOk, FetchResult, ModelRecord
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import SIM_SETTINGS
from monitor.sources.fetch import fetch_models
from monitor.store.database import open_database

KEY = "sk-litellm-virtual-0123456789"
SIM_MODELS = [
    make_model("gpt-4o", mode="chat", context_window=128000, max_output_tokens=16384),
    make_model("text-embedding-3-small", mode="embedding", context_window=8191),
    make_model("my-local-llama"),
]


@pytest.fixture
def litellm() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="litellm", seed=4) as sim:
        sim.set_group("default", SIM_MODELS)
        sim.add_token(KEY)
        yield sim


def source_of(sim: GatewaySimulator, flavor: str = "litellm") -> SourceConfig:
    return SourceConfig(name="proxy", base_url=sim.base_url, flavor=flavor)


def fetch(sim: GatewaySimulator, flavor: str = "litellm", key: str = KEY) -> FetchResult:
    token = TokenConfig("t", "proxy", Secret(key))
    return fetch_models(source_of(sim, flavor), token, MonitorSettings(**SIM_SETTINGS))  # type: ignore[arg-type]


def test_fetch_from_the_simulator(litellm: GatewaySimulator) -> None:
    result = fetch(litellm)
    assert isinstance(result, FetchOk)
    assert result.flavor == "litellm"
    assert dict(result.models) == {
        "gpt-4o": ModelRecord.build(
            "gpt-4o", None, {"mode": "chat", "context_window": 128000, "max_output_tokens": 16384}
        ),
        "text-embedding-3-small": ModelRecord.build(
            "text-embedding-3-small", None, {"mode": "embedding", "context_window": 8191}
        ),
        "my-local-llama": ModelRecord("my-local-llama"),
    }
    auto = fetch(litellm, "auto")
    assert isinstance(auto, FetchOk)
    assert auto.models == result.models


def test_wrong_key_on_a_proxy_with_a_database_is_auth(litellm: GatewaySimulator) -> None:
    result = fetch(litellm, key="sk-wrong-key-000000000000")
    assert isinstance(result, FetchError)
    assert (result.kind, result.status) == (ErrorKind.AUTH, 401)
    assert "sk-wrong-key-000000000000" not in result.message


@pytest.mark.parametrize("flavor", ["litellm", "auto"])
def test_no_connected_db_is_an_auth_failure(litellm: GatewaySimulator, flavor: str) -> None:
    litellm.wire.connected_db = False  # type: ignore[attr-defined]
    result = fetch(litellm, flavor, key="sk-wrong-key-000000000000")
    assert isinstance(result, FetchError)
    assert result.status == 400
    assert result.kind is ErrorKind.AUTH
    assert result.kind.immediate  # reported at once, like a 401
    assert "No connected db." in result.message
    # The right key still works.
    assert isinstance(fetch(litellm, flavor), FetchOk)


def test_pipeline_reports_an_added_model_and_a_limit_change(
    litellm: GatewaySimulator, db_url: str
) -> None:
    config = Config(
        path=None,
        monitor=MonitorSettings(**{**SIM_SETTINGS, "confirm_checks": 1}),  # type: ignore[arg-type]
        sources=(source_of(litellm),),
        tokens=(TokenConfig("a", "proxy", Secret(KEY)),),
        channels=(),
    )
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        checker.check()
        litellm.set_group(
            "default",
            [
                make_model("gpt-4o", mode="chat", context_window=200000, max_output_tokens=16384),
                *SIM_MODELS[1:],
                make_model("claude-sonnet-4", mode="chat", context_window=200000),
            ],
        )
        (report,) = checker.check()
        (event,) = report.events
        changes = event.to_payload()["changes"]
        assert [(c["type"], c["model"]) for c in changes] == [
            ("added", "claude-sonnet-4"),
            ("field_changed", "gpt-4o"),
        ]
        assert changes[0]["after"] == {"mode": "chat", "context_window": 200000}
        assert changes[1]["field"] == "context_window"
        assert changes[1]["percent"] == 56.25
    finally:
        db.close()
