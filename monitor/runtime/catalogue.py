"""The installed plugins, as the config loader is to know them.

The loader sits below sources and delivery and cannot import their registries; this is
where the two meet (`monitor.config.catalogue`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monitor.config.catalogue import Catalogue
from monitor.config.load import load_config
from monitor.config.model import Config
from monitor.delivery.registry import CHANNELS
from monitor.sources.registry import FLAVORS

CATALOGUE = Catalogue(flavors=FLAVORS, channels=CHANNELS)


def load(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """`load_config` with every installed flavor and channel type."""
    return load_config(path, CATALOGUE, environ)
