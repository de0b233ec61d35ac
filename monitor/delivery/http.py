"""What an HTTP answer means for a delivery, shared by every HTTP-based channel.

2xx is success. 408, 425, 429 and 5xx are worth retrying (honoring Retry-After);
410 Gone disables the channel (Standard Webhooks' meaning); every other status,
redirects included (they are never followed), will not get better by itself and
goes to `dead` at once.
"""

from __future__ import annotations

import requests

from monitor import __version__
from monitor.delivery.base import SendResult
from monitor.retry_after import retry_after

USER_AGENT = f"model-monitor/{__version__}"
RETRYABLE = frozenset({408, 425, 429})


def classify(response: requests.Response) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        return SendResult.success(status)
    reason = f"HTTP {status}"
    snippet = _snippet(response)
    if snippet:
        reason += f": {snippet}"
    if status in RETRYABLE or status >= 500:
        return SendResult(
            ok=False, status=status, error=reason, retry_after=retry_after(response.headers)
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


def _snippet(response: requests.Response, limit: int = 200) -> str:
    try:
        text = response.content[:limit].decode("utf-8", "replace")
    except requests.RequestException:
        return ""
    return " ".join(text.split())
