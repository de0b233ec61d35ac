"""One check of one token through the real fetcher, with the settings tests usually want."""

from __future__ import annotations

from typing import Any

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import FetchError, FetchResult
from monitor.sources.caches import ParseCaches
from monitor.sources.fetch import fetch_models


def fetch(
    base_url: str,
    *,
    flavor: str,
    token: str,
    source: str = "gw",
    token_name: str = "team-a",
    source_timeout: float | None = None,
    caches: ParseCaches | None = None,
    **settings: Any,
) -> FetchResult:
    """`settings` are MonitorSettings fields (timeout, max_response_bytes); by default a
    5 s timeout and a 1 MB cap. `caches` carry parsed pages from one call to the next."""
    config = SourceConfig(name=source, base_url=base_url, flavor=flavor, timeout=source_timeout)
    merged: dict[str, Any] = {"timeout": 5.0, "max_response_bytes": 1_000_000, **settings}
    return fetch_models(
        config, TokenConfig(token_name, source, Secret(token)), MonitorSettings(**merged), caches
    )


def failed(result: FetchResult) -> FetchError:
    """The result, which must be a failure."""
    assert isinstance(result, FetchError), result
    return result
