"""Connections that obey the exchange deadline: urllib3 pools for polling, requests
sessions for delivery, and capped reads of replies.

Every connection registers its socket with the deadline of the exchange in progress
(`monitor.transport.deadline.within`): when it is created, before a request is sent and
before the answer is read, so a reused keep-alive connection is covered as well as a new
one, and a TLS handshake as well as a body.

Polling goes through `POOLS`: one urllib3 pool manager per proxy and TLS setting, shared
by every token of a source (keep-alive, no per-request machinery), with the proxy of an
origin resolved from the environment once, not on every request (requests re-reads the
whole environment per request, which costs more the more variables there are).
"""

from __future__ import annotations

import socket
import threading
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3 import BaseHTTPResponse, HTTPResponse, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import make_headers

from monitor import DISTRIBUTION, __version__
from monitor.core.retry_after import retry_after
from monitor.transport.deadline import current

# Who we are, on every request of ours (polls, lookups, deliveries).
USER_AGENT = f"{DISTRIBUTION}/{__version__}"
# Sent with every request of ours to a gateway (models lists, usage lookups, probes),
# before a flavor's own headers.
GET_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}


def _watch(sock: socket.socket | None) -> None:
    deadline = current()
    if deadline is not None:
        deadline.watch(sock)


def watch_new(sock: socket.socket) -> None:
    """Put a socket just connected under the current deadline, TLS handshake included."""
    deadline = current()
    if deadline is not None:
        deadline.watch_new(sock)


class _Watched(HTTPConnection):
    """Mixin for both urllib3 connection classes: register the socket at each step."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch_new(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)

    # urllib3's own HTTPConnection narrows http.client's getresponse to urllib3's
    # HTTPResponse, behind an ignore of this same code.
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        _watch(self.sock)
        return super().getresponse()


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


POOL_CLASSES = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class Pools:
    """Pool managers for polling, by (proxy, TLS verification, size), and each origin's
    proxy.

    Proxies follow the environment as requests reads it (`HTTPS_PROXY`, `HTTP_PROXY`,
    `ALL_PROXY`, `NO_PROXY`, lower case too), read once per origin for the life of the
    process: a daemon picks up a changed proxy setting when it is restarted.
    """

    def __init__(self) -> None:
        self._managers: dict[tuple[str | None, bool | str, int], PoolManager] = {}
        self._proxies: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def manager(self, url: str, verify: bool | str = True, maxsize: int = 16) -> PoolManager:
        """The pool manager to send a request for `url` through; `maxsize` connections are
        kept per host (the number of tokens polled at once)."""
        proxy = self.proxy_for(url)
        key = (proxy, verify, maxsize)
        manager = self._managers.get(key)
        if manager is None:
            with self._lock:
                manager = self._managers.get(key)
                if manager is None:
                    manager = self._managers[key] = self._build(proxy, verify, maxsize)
        return manager

    def get(
        self,
        url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        verify: bool | str = True,
        maxsize: int = 16,
    ) -> BaseHTTPResponse:
        """A streamed GET as polling makes it: no retries, no redirects followed (a
        redirect usually means a wrong base_url, and following it would decide where
        the token goes next), the body left to read (and inflate) by the caller, who
        releases the response."""
        return self._open("GET", url, headers, None, timeout, self.manager(url, verify, maxsize))

    def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        timeout: float,
        verify: bool | str = True,
    ) -> BaseHTTPResponse:
        """A streamed POST as probes make it: the same rules as `get`. Never retried: a
        second call is a second charge."""
        return self._open("POST", url, headers, body, timeout, self.manager(url, verify))

    @staticmethod
    def _open(
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
        manager: PoolManager,
    ) -> BaseHTTPResponse:
        return manager.urlopen(
            method,
            url,
            body=body,
            headers=headers,
            timeout=Timeout(connect=timeout, read=timeout),
            retries=False,
            redirect=False,
            preload_content=False,
            decode_content=True,
        )

    def proxy_for(self, url: str) -> str | None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            from requests.utils import get_environ_proxies, select_proxy  # requests' rules

            self._proxies[origin] = select_proxy(url, get_environ_proxies(url))
        return self._proxies[origin]

    def clear(self) -> None:
        """Forget managers and resolved proxies (tests that change the environment)."""
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()
            self._proxies.clear()

    def _build(self, proxy: str | None, verify: bool | str, maxsize: int) -> PoolManager:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH  # the CAs requests would trust

        tls: dict[str, Any] = (
            {"cert_reqs": "CERT_NONE"}
            if verify is False
            else {
                "cert_reqs": "CERT_REQUIRED",
                "ca_certs": verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH,
            }
        )
        kwargs: dict[str, Any] = {"num_pools": 64, "maxsize": maxsize, **tls}
        manager: PoolManager
        if proxy is None:
            manager = PoolManager(**kwargs)
        elif proxy.lower().startswith("socks"):
            from urllib3.contrib.socks import SOCKSProxyManager  # needs PySocks

            manager = SOCKSProxyManager(proxy, **kwargs)
        else:
            from requests.utils import get_auth_from_url

            username, password = get_auth_from_url(proxy)
            headers = make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
            manager = ProxyManager(proxy, proxy_headers=headers, **kwargs)
        manager.pool_classes_by_scheme = POOL_CLASSES
        return manager


POOLS = Pools()


REPLY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """A streamed response read to its end (capped) and handed back to its pool."""

    status: int
    body: bytes
    retry_after: float | None  # a 429's wait, from retry-after-ms or Retry-After


def read_reply(response: BaseHTTPResponse, limit: int = REPLY_LIMIT) -> Reply:
    """Read at most `limit` bytes of the body (`read_capped`) and release the connection,
    whatever happens."""
    try:
        status = response.status
        body = read_capped(response, limit)
        wait = retry_after(dict(response.headers)) if status == 429 else None
    finally:
        response.close()
        response.release_conn()
    return Reply(status, body, wait)


def read_capped(response: BaseHTTPResponse, limit: int = REPLY_LIMIT) -> bytes:
    """At most `limit` bytes of a streamed response's body, decompressed with a bound.

    Used for replies that are only quoted or checked (delivery targets, lookups): the
    raw bytes are read up to the limit, and a gzip or deflate body is inflated to at
    most `limit` bytes, so a small compressed reply cannot grow into gigabytes. Takes
    urllib3's response (requests' `Response.raw`).
    """
    raw = response.read(limit, decode_content=False) or b""
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
