"""Explaining a 401 from new-api: expired, or out of quota?

Since 2026-04 new-api answers every refused token with the same "Invalid token", but its
`GET /api/usage/token/` still answers for expired and exhausted tokens. It is rate
limited (20 calls in 20 minutes per IP), so the pipeline asks once per failing spell,
and only after a 401.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from monitor.config import MonitorSettings, SourceConfig, TokenConfig
from monitor.core.clock import utcnow
from monitor.transport.connections import GET_HEADERS, POOLS, read_capped
from monitor.transport.deadline import within

log = logging.getLogger("monitor.sources")

USAGE_PATH = "/api/usage/token/"
_BODY_LIMIT = 64 * 1024


def site_root(base_url: str) -> str:
    """`https://gw.example/v1` -> `https://gw.example`: the usage route is not under /v1."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def explain_auth_failure(
    source: SourceConfig,
    token: TokenConfig,
    settings: MonitorSettings,
    now: datetime | None = None,
) -> str | None:
    """A short, secret-free reason for a refused token, or None when the gateway won't say.

    Best effort: the lookup has a deadline of its own, and any failure (a stall, a
    broken body, a reply of the wrong shape) costs the explanation, never the alert.
    """
    timeout = min(source.timeout or settings.timeout, 10.0)
    try:
        with within(timeout) as deadline:
            url = site_root(source.base_url) + USAGE_PATH
            verify = source.ca_bundle or source.verify_tls
            headers = {**GET_HEADERS, "Authorization": f"Bearer {token.secret.reveal()}"}
            response = POOLS.get(url, headers, timeout=deadline.remaining(), verify=verify)
            try:
                status = response.status
                body = read_capped(response, _BODY_LIMIT) if status == 200 else b""
            finally:
                response.close()
                response.release_conn()
            if deadline.expired:
                return None
        if status != 200:
            return None
        data = json.loads(body).get("data")
        return describe_usage(data, now or utcnow()) if isinstance(data, dict) else None
    except Exception as exc:  # the explanation is optional; its failure is not the token's
        log.debug("usage lookup for token %s failed: %s", token.name, type(exc).__name__)
        return None


def describe_usage(data: dict[str, Any], now: datetime) -> str | None:
    expires_at = data.get("expires_at")
    if isinstance(expires_at, int | float) and expires_at > 0:
        when = datetime.fromtimestamp(expires_at, UTC)
        if when <= now:
            return f"the token expired at {when.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    available = data.get("total_available")
    unlimited = data.get("unlimited_quota") is True
    if not unlimited and isinstance(available, int | float) and available <= 0:
        return "the token has no quota left"
    return None
