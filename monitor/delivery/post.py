"""Posting to an HTTP destination and what its answer means, for every HTTP channel.

One POST is one exchange under one deadline (the channel's `timeout`, by wall clock:
a receiver dripping its answer is cut off), and only the first REPLY_LIMIT bytes of
the answer are read, inflated with a bound.

2xx is success. 408, 425, 429 and 5xx are worth retrying (honoring Retry-After);
410 Gone disables the channel (Standard Webhooks' meaning); every other status,
redirects included (they are never followed), will not get better by itself and
goes to `dead` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.poolmanager import PoolManager

from monitor.core.retry_after import retry_after
from monitor.delivery.base import SendResult
from monitor.transport.connections import POOL_CLASSES, USER_AGENT, read_capped
from monitor.transport.deadline import within

RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most the first REPLY_LIMIT bytes, inflated


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose pools (direct and through proxies) hold connections that
    obey the exchange deadline (`monitor.transport.connections`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = POOL_CLASSES
        return manager


def delivery_session() -> requests.Session:
    """A session whose every connection obeys the current exchange deadline."""
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept-Encoding"] = "identity"  # replies are read only to quote them
    return session


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Reply | SendResult:
    """POST `body` within `timeout` seconds: the reply, or a failed SendResult."""
    with within(timeout) as deadline:
        try:
            response = session.post(
                url,
                data=body,
                headers=dict(headers),
                timeout=(deadline.remaining(), deadline.remaining()),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            timed_out = deadline.expired or isinstance(exc, requests.Timeout)
            reason = f"timed out after {timeout:g}s" if timed_out else describe(exc)
            return SendResult(ok=False, error=reason)
        with response:
            try:
                reply_body = read_capped(response.raw)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                reply_body = b""  # the status is the answer; the body only adds detail
        return Reply(response.status_code, response.headers, reply_body)


def classify(reply: Reply) -> SendResult:
    status = reply.status
    if 200 <= status < 300:
        return SendResult.success(status)
    reason = f"HTTP {status}"
    snippet = _snippet(reply.body)
    if snippet:
        reason += f": {snippet}"
    if status in RETRYABLE or status >= 500:
        return SendResult(
            ok=False, status=status, error=reason, retry_after=retry_after(reply.headers)
        )
    if 300 <= status < 400:
        reason += " (redirects are not followed: point the channel at the final URL)"
    return SendResult(ok=False, status=status, error=reason, permanent=True, disable=status == 410)


def describe(exc: requests.RequestException) -> str:
    """A short reason for a transport failure, without the URL (it may be a secret)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return " ".join(text.split())
