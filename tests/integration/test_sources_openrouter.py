"""The openrouter flavor over loopback: the simulator's OpenRouter, image models behind
output_modalities=all, and price changes through the pipeline into a database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import FetchOk, ModelRecord
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import SIM_SETTINGS
from monitor.sources.fetch import fetch_models
from monitor.store.database import open_database

TOKEN = "sk-or-v1-0123456789abcdef"


def or_model(model_id: str, prompt: str = "0.000003", **extra: Any) -> dict[str, Any]:
    extra.setdefault("display_name", model_id.upper())
    extra.setdefault("context_window", 200000)
    extra.setdefault("max_output_tokens", 64000)
    extra.setdefault("input_modalities", ["text", "image"])
    extra.setdefault("supported_parameters", ["tools", "max_tokens", "temperature"])
    return make_model(
        model_id, None, "x", pricing={"prompt": prompt, "completion": "0.000015"}, **extra
    )


SIM_MODELS = [
    or_model("anthropic/claude-sonnet-4", created=1747930371),
    or_model("openai/gpt-4o", prompt="0.0000025", created=1715367049),
    # outputs images: listed only with output_modalities=all
    or_model(
        "google/gemini-2.5-flash-image",
        prompt="0.0000003",
        output_modalities=["image", "text"],
        expiration_date="2026-12-31",
        created=1759870431,
    ),
    or_model("acme/image-only", output_modalities=["image"], created=1700000000),
]


@pytest.fixture
def openrouter() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="openrouter", seed=3) as sim:
        sim.set_group("default", SIM_MODELS)
        yield sim


def fetch(sim: GatewaySimulator, flavor: str = "openrouter") -> FetchOk:
    source = SourceConfig(name="or", base_url=sim.base_url, flavor=flavor)
    token = TokenConfig("t", "or", Secret(TOKEN))
    result = fetch_models(source, token, MonitorSettings(**SIM_SETTINGS))  # type: ignore[arg-type]
    assert isinstance(result, FetchOk), result
    return result


def test_fetch_from_the_simulator(openrouter: GatewaySimulator) -> None:
    result = fetch(openrouter)
    assert result.flavor == "openrouter"
    assert sorted(result.models) == sorted(m["id"] for m in SIM_MODELS)
    assert result.models["google/gemini-2.5-flash-image"] == ModelRecord.build(
        "google/gemini-2.5-flash-image",
        None,
        {
            "display_name": "GOOGLE/GEMINI-2.5-FLASH-IMAGE",
            "context_window": 200000,
            "max_output_tokens": 64000,
            "top_provider.context_length": 200000,
            "top_provider.is_moderated": False,
            "pricing.prompt": "0.0000003",
            "pricing.completion": "0.000015",
            "pricing.request": "0",
            "pricing.image": "0",
            "pricing.web_search": "0",
            "pricing.internal_reasoning": "0",
            "input_modalities": ["image", "text"],
            "output_modalities": ["image", "text"],
            "supported_parameters": ["max_tokens", "temperature", "tools"],
            "expiration_date": "2026-12-31",
        },
    )


def test_image_models_need_output_modalities_all(openrouter: GatewaySimulator) -> None:
    # What a client gets without the parameter: text-output models only.
    plain = requests.get(f"{openrouter.base_url}/models", timeout=5).json()
    assert {m["id"] for m in plain["data"]} == {
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o",
        "google/gemini-2.5-flash-image",
    }
    assert "acme/image-only" in fetch(openrouter).models
    # auto on a host that does not name OpenRouter asks again with the parameter.
    assert "acme/image-only" in fetch(openrouter, "auto").models


def config_for(sim: GatewaySimulator, thresholds: tuple[tuple[str, float], ...]) -> Config:
    return Config(
        path=None,
        monitor=MonitorSettings(**{**SIM_SETTINGS, "confirm_checks": 1}),  # type: ignore[arg-type]
        sources=(
            SourceConfig(
                name="or", base_url=sim.base_url, flavor="openrouter", thresholds=thresholds
            ),
        ),
        tokens=(TokenConfig("a", "or", Secret(TOKEN)),),
        channels=(),
    )


def test_pipeline_reports_additions_and_price_changes(
    openrouter: GatewaySimulator, db_url: str
) -> None:
    db = open_database(db_url)
    try:
        checker = Checker(config_for(openrouter, (("pricing.*", 0.01),)), db)
        (baseline,) = checker.check()
        assert baseline.tokens[0].baseline
        # gpt-4o's prompt price goes up 20%, a new image model appears.
        moved = [or_model("openai/gpt-4o", "0.000003", created=1715367049)]
        added = or_model("black-forest-labs/flux-2", output_modalities=["image"], created=1)
        openrouter.set_group("default", [*SIM_MODELS[:1], *moved, *SIM_MODELS[2:], added])
        (report,) = checker.check()
        (event,) = report.events
        payload = event.to_payload()
        assert [(c["type"], c["model"]) for c in payload["changes"]] == [
            ("added", "black-forest-labs/flux-2"),
            ("price_changed", "openai/gpt-4o"),
        ]
        # In the unit of every price change: USD per 1M tokens, as new-api's are.
        price = payload["changes"][1]
        assert price["group"] is None and price["unit"].startswith("USD per 1M tokens")
        assert (price["before"]["input"], price["after"]["input"]) == ("2.5", "3")
        assert price["before"]["output"] == price["after"]["output"]
        assert payload["changes"][0]["after"]["output_modalities"] == ["image"]

        # A 0.5% move is below the source's threshold: nothing to tell.
        nudged = [or_model("openai/gpt-4o", "0.000003015", created=1715367049)]
        openrouter.set_group("default", [*SIM_MODELS[:1], *nudged, *SIM_MODELS[2:], added])
        for _ in range(2):
            (quiet,) = checker.check()
            assert not quiet.changed
            assert quiet.events == ()
    finally:
        db.close()


def test_without_a_threshold_the_same_small_move_is_reported(
    openrouter: GatewaySimulator, db_url: str
) -> None:
    db = open_database(db_url)
    try:
        checker = Checker(config_for(openrouter, ()), db)
        checker.check()
        nudged = [or_model("openai/gpt-4o", "0.0000025125", created=1715367049)]
        openrouter.set_group("default", [*SIM_MODELS[:1], *nudged, *SIM_MODELS[2:]])
        (report,) = checker.check()
        (change,) = report.tokens[0].changes
        payload = change.to_json()
        assert (payload["before"]["input"], payload["after"]["input"]) == ("2.5", "2.5125")
    finally:
        db.close()
