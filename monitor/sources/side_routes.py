"""The gateway's routes beside the models list (usage, billing, pricing): one GET with
the caller's deadline, a size cap and a JSON body, or a `FetchError` saying why not.

No message carries the token: it goes out in a header and is never quoted back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from monitor.config import SourceConfig, TokenConfig
from monitor.core.records import ErrorKind, FetchError
from monitor.transport.connections import GET_HEADERS, POOLS, read_reply
from monitor.transport.deadline import Deadline, within

T = TypeVar("T")

# Where a flavor publishes prices (`Flavor.price_route`): new-api's pricing page, or the
# LiteLLM proxy's model info (monitor.sources.pricing).
PriceRoute = Literal["pricing", "model_info"]
# How a probe sends the token (`Flavor.probe_auth`, monitor.sources.probes).
ProbeAuth = Literal["bearer", "x-api-key"]

_BODY_LIMIT = 4 * 1024 * 1024  # a price list of a few thousand models


class Refused(Exception):
    """Ends a read early with the failure to report; raised by `get_json`."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


def site_root(base_url: str) -> str:
    """`https://gw.example/v1` -> `https://gw.example`: the usage route is not under /v1."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def get_json(url: str, source: SourceConfig, token: TokenConfig | None, deadline: Deadline) -> Any:
    """The decoded JSON of a 200 answer (decimals as Decimal); Refused with a FetchError
    for any other status or a deadline that passed. With `token`, as a Bearer token."""
    verify = source.ca_bundle or source.verify_tls
    headers = dict(GET_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token.secret.reveal()}"
    response = POOLS.get(url, headers, timeout=deadline.remaining(), verify=verify)
    reply = read_reply(response, _BODY_LIMIT)
    status, body, wait = reply.status, reply.body, reply.retry_after
    if deadline.expired:
        raise Refused(FetchError(ErrorKind.TIMEOUT, "the route did not answer in time"))
    if status != 200:
        kind = {401: ErrorKind.AUTH, 403: ErrorKind.FORBIDDEN, 429: ErrorKind.RATE_LIMITED}.get(
            status, ErrorKind.SERVER if status >= 500 else ErrorKind.CLIENT_ERROR
        )
        raise Refused(FetchError(kind, f"HTTP {status} from {urlsplit(url).path}", status, wait))
    return json.loads(body, parse_float=Decimal)


def guarded(
    timeout: float,
    read: Callable[[Deadline], T],
    *,
    invalid: tuple[type[BaseException], ...],
    unreadable: str,
    silent: str,
) -> T | FetchError:
    """`read` within `timeout`, or the `FetchError` that says why not: its own refusal, an
    answer of the wrong shape (`invalid`: "{unreadable} (why)"), or a stall or a reset
    ("{silent} (exception type)"). Whatever fails, only this read fails."""
    deadline = None
    try:
        with within(timeout) as deadline:
            return read(deadline)
    except Refused as refused:
        return refused.error
    except invalid as exc:
        return FetchError(ErrorKind.INVALID_RESPONSE, f"{unreadable} ({exc})")
    except Exception as exc:
        expired = deadline is not None and deadline.expired
        timed_out = expired or "timed out" in str(exc).lower()
        kind = ErrorKind.TIMEOUT if timed_out else ErrorKind.NETWORK
        return FetchError(kind, f"{silent} ({type(exc).__name__})")
