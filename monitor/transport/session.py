"""requests sessions whose connections obey the exchange deadline, and capped reads.

Every connection these sessions open registers its socket with the deadline of the
exchange in progress (`monitor.transport.deadline.within`): when it is created, before
a request is sent and before the answer is read, so a reused keep-alive connection is
covered as well as a new one, and a TLS handshake as well as a body.
"""

from __future__ import annotations

import socket
import zlib
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from monitor.transport.deadline import current


def _watch(sock: socket.socket | None) -> None:
    deadline = current()
    if deadline is not None:
        deadline.watch(sock)


def watch_new(sock: socket.socket) -> None:
    """Put a socket just connected under the current deadline, TLS handshake included."""
    deadline = current()
    if deadline is not None:
        deadline.watch_new(sock)


class _Watched:
    """Mixin for urllib3 connections: register the socket at each step."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        watch_new(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        _watch(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with pools of watched connections (direct and through proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def new_session(user_agent: str) -> requests.Session:
    """A session whose every connection obeys the current exchange deadline."""
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


REPLY_LIMIT = 64 * 1024


def read_capped(response: requests.Response, limit: int = REPLY_LIMIT) -> bytes:
    """At most `limit` bytes of a streamed response's body, decompressed with a bound.

    Used for replies that are only quoted or checked (delivery targets, lookups): the
    raw bytes are read up to the limit, and a gzip or deflate body is inflated to at
    most `limit` bytes, so a small compressed reply cannot grow into gigabytes.
    """
    raw = response.raw.read(limit, decode_content=False) or b""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # wbits 47: gzip or zlib header, detected; raw deflate as a fallback.
        for wbits in (47, -15):
            try:
                return zlib.decompressobj(wbits).decompress(raw, limit)
            except zlib.error:
                continue
        return b""
    if encoding not in ("", "identity"):
        return b""  # an encoding we did not ask for: not worth decoding
    return raw
