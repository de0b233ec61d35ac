"""What a config may name that the config layer does not define: flavors and channel types.

The loader checks `flavor = ...` and `[[channels]] type = ...` and each channel type's own
options against a catalogue it is handed, instead of importing the sources and delivery
registries, which sit above it (docs/architecture.md). The catalogue of the installed
plugins is `monitor.runtime.catalogue.CATALOGUE`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.config.model import Option


class ChannelKind(Protocol):
    """What the loader needs of a channel type: its options and their extra checks."""

    OPTIONS: Mapping[str, Option]

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems with option values beyond their type, as (key, how to fix) pairs."""
        ...


@dataclass(frozen=True)
class Catalogue:
    """The flavor names and channel types a config may use, and the flavors whose models
    can be probed (`probe = true`)."""

    flavors: Collection[str] = ()
    probing: Collection[str] = ()
    channels: Mapping[str, ChannelKind] = field(default_factory=dict)
