"""Flavors by name. Adding a flavor: one module, one line here, one test file, and its case in
the contract tests (docs/architecture.md, "Adding a flavor")."""

from __future__ import annotations

from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.auto import AutoFlavor
from monitor.sources.base import Flavor
from monitor.sources.gemini import GeminiFlavor
from monitor.sources.litellm import LiteLLMFlavor
from monitor.sources.ollama import OllamaFlavor
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor
from monitor.sources.openrouter import OpenRouterFlavor

FLAVORS: dict[str, type[Flavor]] = {
    "anthropic": AnthropicFlavor,
    "auto": AutoFlavor,
    "gemini": GeminiFlavor,
    "litellm": LiteLLMFlavor,
    "new-api": NewApiFlavor,
    "ollama": OllamaFlavor,
    "one-api": OneApiFlavor,
    "openai": OpenAIFlavor,
    "openrouter": OpenRouterFlavor,
}


def reading(flavor: str, detected: str | None) -> type[Flavor] | None:
    """The flavor a source's answers are read as: its own, or for `auto` the one its last
    successful check was detected as (None: not detected yet, or not registered)."""
    return FLAVORS.get((detected or "") if flavor == "auto" else flavor)
