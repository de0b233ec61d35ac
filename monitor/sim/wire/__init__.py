"""The wire formats the gateway simulator speaks, one module each, by flavor name.

Adding a provider: a `WireFormat` subclass in its own module and one entry here; the
simulator, its faults and its request log work with it unchanged.
"""

from typing import Any

from monitor.sim.wire.anthropic import AnthropicWire
from monitor.sim.wire.base import (
    CREATED,
    EXTRA_KEYS,
    Caller,
    ModelSet,
    WireFormat,
    WireRequest,
    WireResponse,
    make_model,
)
from monitor.sim.wire.gemini import GeminiWire
from monitor.sim.wire.litellm import LiteLLMWire
from monitor.sim.wire.new_api import NewApiWire
from monitor.sim.wire.ollama import OllamaWire
from monitor.sim.wire.one_api import OneApiWire
from monitor.sim.wire.openai import OpenAIWire
from monitor.sim.wire.openrouter import OpenRouterWire

WIRE_FORMATS: dict[str, type[WireFormat[Any]]] = {
    wire.name: wire
    for wire in (
        NewApiWire,
        OneApiWire,
        OpenAIWire,
        AnthropicWire,
        GeminiWire,
        OpenRouterWire,
        LiteLLMWire,
        OllamaWire,
    )
}

__all__ = [
    "CREATED",
    "EXTRA_KEYS",
    "WIRE_FORMATS",
    "AnthropicWire",
    "Caller",
    "GeminiWire",
    "LiteLLMWire",
    "ModelSet",
    "NewApiWire",
    "OllamaWire",
    "OneApiWire",
    "OpenAIWire",
    "OpenRouterWire",
    "WireFormat",
    "WireRequest",
    "WireResponse",
    "make_model",
]
