"""`flavor = "auto"` over loopback: against the simulator in every OpenAI-style format it
detects, the same records as the flavor named explicitly."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from monitor.config import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import FetchOk
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import SIM_SETTINGS
from monitor.sources import registry
from monitor.sources.auto import AutoFlavor
from monitor.sources.base import Flavor
from monitor.sources.fetch import fetch_models
from monitor.sources.interning import RecordTable

TOKEN = "sk-auto-sim-0123456789abcdef"
SIM_MODELS = [
    make_model(
        "gpt-4o",
        ("openai", "openai-response"),
        "openai",
        display_name="GPT-4o",
        context_window=128000,
        max_output_tokens=16384,
        mode="chat",
        pricing={"prompt": "0.0000025", "completion": "0.00001"},
    ),
    make_model(
        "text-embedding-3-small",
        ("embeddings",),
        "openai",
        context_window=8191,
        mode="embedding",
        output_modalities=["embeddings"],
    ),
    make_model("llama3.2:latest", ("openai",), "custom", created=1732612800),
]


@pytest.mark.parametrize(
    "name", ["new-api", "one-api", "openai", "openrouter", "litellm", "ollama"]
)
def test_auto_against_the_simulator(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[AutoFlavor] = []

    class Watched(AutoFlavor):
        def __init__(self, flavors: Mapping[str, type[Flavor]], records: RecordTable) -> None:
            super().__init__(flavors, records)
            made.append(self)

    monkeypatch.setitem(registry.FLAVORS, "auto", Watched)
    with GatewaySimulator(flavor=name, seed=7) as sim:
        sim.set_group("default", SIM_MODELS)
        sim.add_token(TOKEN)
        settings = MonitorSettings(**SIM_SETTINGS)  # type: ignore[arg-type]
        token = TokenConfig("t", "s", Secret(TOKEN))
        results = {
            flavor: fetch_models(
                SourceConfig(name="s", base_url=sim.base_url, flavor=flavor), token, settings
            )
            for flavor in ("auto", name)
        }
    auto, explicit = results["auto"], results[name]
    assert isinstance(auto, FetchOk), auto
    assert isinstance(explicit, FetchOk), explicit
    (flavor,) = made
    assert flavor.detected == name
    assert auto.models == explicit.models
    assert len(auto.models) == len(SIM_MODELS)
    # FetchOk.flavor names the detected flavor once http.py reads AutoFlavor.detected.
    assert auto.flavor == name
