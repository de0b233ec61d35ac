"""Flavors by name. Adding a flavor: one module, one line here, one test file."""

from __future__ import annotations

from monitor.sources.base import Flavor
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor

FLAVORS: dict[str, type[Flavor]] = {
    "new-api": NewApiFlavor,
    "one-api": OneApiFlavor,
    "openai": OpenAIFlavor,
}
