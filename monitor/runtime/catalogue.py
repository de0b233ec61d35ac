"""The installed plugins, as the config loader is to know them.

The loader sits below sources and delivery and cannot import their registries; this is
where the two meet (`monitor.config.catalogue`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from monitor.config.catalogue import Catalogue, ChannelKind
from monitor.config.load import load_config
from monitor.config.model import Config
from monitor.sources.registry import FLAVORS


class _Channels(Mapping[str, ChannelKind]):
    """The channel registry, imported when a config first names a channel: the channel
    modules load Jinja2, requests and smtplib, which a config without [[channels]]
    (and `config check` of one) does without."""

    def _registry(self) -> Mapping[str, ChannelKind]:
        from monitor.delivery.registry import CHANNELS

        return CHANNELS

    def __getitem__(self, kind: str) -> ChannelKind:
        return self._registry()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())


# `auto` may be probed: it probes as the flavor it detects, if that one can be.
PROBING = frozenset(name for name, flavor in FLAVORS.items() if flavor.probe_auth) | {"auto"}
CATALOGUE = Catalogue(flavors=FLAVORS, channels=_Channels(), probing=PROBING)


def load(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """`load_config` with every installed flavor and channel type."""
    return load_config(path, CATALOGUE, environ)
